"""The four delivery metrics (mlflow_gitops.planning.delivery) on scripted histories, against
figures computed by hand in each test's comments."""

from __future__ import annotations

from mlflow_gitops.core.ledger import Entry
from mlflow_gitops.planning.delivery import percentile, report, to_json

H = 3_600_000  # one hour in ms
DAY = 24 * H


def e(at_h: float, action: str, version: int, frm: int | None, to: int | None,
      reason: str = "merge", env: str = "production", name: str = "m",
      created_h: float | None = None) -> Entry:
    return Entry("default", env, name, action, version, frm, to,  # type: ignore[arg-type]
                 "c", "", int(at_h * H), reason,  # type: ignore[arg-type]
                 version_created_ms=None if created_h is None else int(created_h * H))


def test_percentile_interpolates_linearly() -> None:
    """p50 of 1..4 is 2.5, p90 is 3.7 (1 + 0.9*3 = rank 2.7 → 3 + 0.7), one value is itself."""
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert abs(percentile([1, 2, 3, 4], 90) - 3.7) < 1e-9  # type: ignore[operator]
    assert percentile([7.0], 90) == 7.0
    assert percentile([], 50) is None


def test_scripted_history_gives_the_hand_computed_figures() -> None:
    """Production: v1 (created 0h) live at 2h; v2 (created 3h) live at 7h, fails verification
    at 7.5h, rolled back to v1 at 8h; v3 (created 9h) live at 10h, replaced by v4 (created
    10h) at 18h. Staging: one deployment, lead 1h.

    Deployments: v1, v2, v3, v4 = 4 (the rollback is none). Lead times: 2h, 4h, 1h, 8h →
    sorted 1,2,4,8 h: median 3h = 10800 s; p90 rank 2.7 → 4 + 0.7*4 = 6.8h = 24480 s.
    Failed: v2 only → rate 1/4 = 0.25. Restore: v2 live 7h → v1 back at 8h = 3600 s."""
    history = [
        e(2, "set_alias", 1, None, 1, created_h=0),
        e(7, "set_alias", 2, 1, 2, created_h=3),
        e(7.5, "verify_failed", 2, 2, 2, reason="verification"),
        e(8, "set_alias", 1, 2, 1, reason="rollback", created_h=0),
        e(10, "set_alias", 3, 1, 3, created_h=9),
        e(18, "set_alias", 4, 3, 4, created_h=10),
        e(5, "promote", 7, None, 7, env="staging", created_h=4),
    ]
    rows = report(history, 0, 30 * H)
    data = to_json(rows)
    prod = next(r for r in data["environments"] if r["environment"] == "production")
    assert prod["deployments"] == 4
    assert prod["lead_time_seconds"] == {"median": 10800.0, "p90": 24480.0}
    assert prod["change_failure_rate"] == 0.25
    assert prod["time_to_restore_seconds"] == {"median": 3600.0}
    assert prod["models"][0]["model"] == "m" and prod["models"][0]["deployments"] == 4
    staging = next(r for r in data["environments"] if r["environment"] == "staging")
    assert staging["deployments"] == 1
    assert staging["lead_time_seconds"] == {"median": 3600.0, "p90": 3600.0}
    assert staging["change_failure_rate"] == 0.0
    assert staging["time_to_restore_seconds"] == {"median": None}


def test_the_window_counts_deployments_inside_it_and_reads_their_fate_after_it() -> None:
    """With the window ending at 7h the v2 deployment counts and its rollback at 8h (after
    the window) still makes it failed; v1 at 2h is before a window starting at 5h."""
    history = [e(2, "set_alias", 1, None, 1, created_h=0),
               e(7, "set_alias", 2, 1, 2, created_h=3),
               e(8, "set_alias", 1, 2, 1, reason="rollback")]
    (prod, _), = report(history, 5 * H, 7 * H)
    assert (prod.deployments, prod.change_failure_rate, prod.time_to_restore_median) == \
        (1, 1.0, 3600.0)


def test_a_fix_forward_restores_and_a_heal_does_not() -> None:
    """v2 fails verification at 1h; drift healed back to v2 at 2h is no restore; v3 at 5h is:
    restore 5h - 0h = 18000 s. Creation times from the registry fill the records' gaps."""
    history = [e(0, "set_alias", 2, None, 2),
               e(1, "verify_failed", 2, 2, 2, reason="verification"),
               e(2, "set_alias", 2, 9, 2, reason="heal"),
               e(5, "set_alias", 3, 2, 3)]
    (prod, models), = report(history, 0, DAY, created_ms={("m", 2): -H, ("m", 3): 4 * H})
    assert prod.deployments == 2 and prod.failures == 1
    assert prod.change_failure_rate == 0.5
    assert prod.time_to_restore_median == 18000.0
    assert (prod.lead_time_median, prod.lead_time_p90) == (3600.0, 3600.0)


def test_an_environment_without_deployments_is_listed_with_no_figures() -> None:
    """A named environment with no records shows 0 deployments and no rates (null in JSON)."""
    data = to_json(report([], 0, DAY, environments=["staging"]))
    assert data == {"environments": [{
        "environment": "staging", "deployments": 0,
        "lead_time_seconds": {"median": None, "p90": None}, "change_failure_rate": None,
        "time_to_restore_seconds": {"median": None}, "failures": 0, "models": []}]}
