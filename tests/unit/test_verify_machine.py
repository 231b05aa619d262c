"""The verification window as pure values: measurements judged, rounds counted, failures
acting at once, the verdict at the end, and progress that survives a restart."""

from __future__ import annotations

from mlflow_gitops.core.model import Check, Verify
from mlflow_gitops.policy import verify as v
from mlflow_gitops.policy.evidence import Stint

ERRORS = Check(source="monitoring", query="errors", max=0.02, line=9)
LATENCY = Check(source="monitoring", query="latency", min=0.0, max=100.0, line=12)
VERIFY = Verify(duration_seconds=6, interval_seconds=1, failure_limit=1, checks=(ERRORS,))
STINT = Stint("production", "c0ffee", entered=1000.0)


def _window() -> v.Progress:
    return v.start(STINT, VERIFY, replaced=2)


def test_values_are_judged_against_the_bounds() -> None:
    """Outside fails with value and bound, inside passes, no value is inconclusive."""
    assert v.judge(ERRORS, 0.05).result == "fail"
    assert "0.05, above max 0.02" in v.judge(ERRORS, 0.05).detail
    assert v.judge(LATENCY, -1).detail.endswith("-1, below min 0")
    assert v.judge(ERRORS, 0.01).result == "pass"
    down = v.judge(ERRORS, None, "source down: connection refused")
    assert (down.result, down.detail) == ("inconclusive",
                                          "monitoring: errors: source down: connection refused")
    assert v.judge(ERRORS, float("nan")).result == "inconclusive"


def test_a_round_is_its_worst_measurement() -> None:
    """One failed check fails the round; an unmeasurable one makes it inconclusive."""
    ok, bad, none = v.judge(ERRORS, 0.0), v.judge(ERRORS, 1.0), v.judge(ERRORS, None)
    assert v.round_result([ok, none, bad]) is bad
    assert v.round_result([ok, none]) is none
    assert v.round_result([ok]) is ok


def test_the_window_starts_at_the_apply_and_measures_on_a_grid() -> None:
    """Measurements are due at start + k × interval, until the window ends."""
    window = _window()
    assert (window.started, window.ends, window.next_at) == (1000.0, 1006.0, 1001.0)
    assert not v.due(window, 1000.5) and v.due(window, 1001.0)
    after = v.advance(window, [v.judge(ERRORS, 0.0)], VERIFY, now=1001.2)
    assert (after.passed, after.next_at, after.outcome) == (1, 1002.0, "running")


def test_more_than_failure_limit_failures_fail_at_once() -> None:
    """The failure that exceeds the limit ends the window then, not at its end."""
    window = _window()
    once = v.advance(window, [v.judge(ERRORS, 0.5)], VERIFY, now=1001.0)
    assert once.outcome == "running" and once.failed == 1
    twice = v.advance(once, [v.judge(ERRORS, 0.7)], VERIFY, now=1002.0)
    assert twice.outcome == "failed" and twice.finished_at == 1002.0
    assert twice.failure == "monitoring: errors = 0.7, above max 0.02"
    assert "rolled back to v2" in v.failure_reason(twice, "rollback")
    assert "0.7, above max 0.02" in v.failure_reason(twice, "hold")


def test_a_healthy_window_is_verified_and_a_silent_one_is_not() -> None:
    """Passed rounds within the limit verify; no conclusive round leaves it unverified."""
    healthy, silent = _window(), _window()
    for k in range(1, 7):
        healthy = v.advance(healthy, [v.judge(ERRORS, 0.0)], VERIFY, now=1000.0 + k)
        silent = v.advance(silent, [v.judge(ERRORS, None, "source down")], VERIFY,
                           now=1000.0 + k)
    assert v.ended(healthy, 1006.0) and v.ended(silent, 1006.0)
    assert v.finish(healthy, 1006.0).outcome == "verified"
    assert v.finish(silent, 1006.0).outcome == "unverified"
    assert silent.inconclusive == 6 and silent.failed == 0


def test_progress_round_trips_through_its_tag_and_resumes_the_same_window() -> None:
    """A restart reads the window back: same start, same counts, the next slot due."""
    window = v.advance(_window(), [v.judge(ERRORS, 0.5)], VERIFY, now=1001.1)
    tags = {v.verify_tag("production"): window.to_json()}
    back = v.parse(tags, "production")
    assert back == window and v.belongs_to(back, STINT)
    assert not v.belongs_to(back, Stint("production", "later", entered=2000.0))
    # Away for three slots: one measurement when back, then the grid again (never a restart).
    later = v.advance(back, [v.judge(ERRORS, 0.0)], VERIFY, now=1004.4)
    assert (later.started, later.next_at, later.taken) == (1000.0, 1005.0, 2)


def test_a_tag_that_is_not_ours_is_no_progress() -> None:
    """A hand-written or broken value neither crashes nor counts."""
    for raw in ("yes", "[]", '{"started": "x"}', '{"commit": "a"}',
                '{"commit":"a","started":1,"ends":2,"interval":0,"replaced":null,"next_at":1}'):
        assert v.parse({v.verify_tag("production"): raw}, "production") is None


def test_the_replaced_version_is_the_one_that_left_with_the_promotion() -> None:
    """The move-out recorded nearest the promotion names where a rollback returns."""
    left = {1: 500.0, 2: 1000.4, 4: 1000.1}
    assert v.replaced_version(left, 1000.0, version=4) == 2
    assert v.replaced_version({1: 500.0}, 1000.0, version=3) is None


def test_verified_evidence_is_read_back_with_its_time() -> None:
    """`require_verified` reads the controller's own record, nothing else."""
    record = v.verified_record(_window(), at=1006.5)
    assert v.is_verified({v.verified_tag("staging"): record}, "staging") == 1006.5
    assert v.is_verified({v.verified_tag("staging"): "true"}, "staging") is None
    assert v.is_verified({}, "staging") is None


def test_require_verified_accepts_only_versions_verified_upstream() -> None:
    """A downstream environment takes a version verified in `from`, waits while it is still
    verifying there, and refuses one never verified."""
    from mlflow_gitops.core.model import Environment, LiveModel, LiveVersion, Promotion, Target
    from mlflow_gitops.policy.rules import FromFacts, PolicyFacts, evaluate

    env = Environment("production", "production.yaml", Target("stage", "Production"),
                      promotion=Promotion(from_env="staging", require_verified=True))
    live = LiveModel("fraud", {3: LiveVersion("fraud", 3, "Staging")})
    base = FromFacts("staging", "staging.yaml", "stage Staging", True, True, stint=STINT)

    def verdict(**kw: float) -> tuple[bool, float | None, str]:
        from dataclasses import replace
        facts = PolicyFacts(now=1003.0, version=3, source=replace(base, **kw))
        out = evaluate(env, "fraud", 3, live, facts)
        return out.allowed, out.waiting_until, out.message

    assert verdict(verified_at=1006.0)[0] is True
    assert verdict(verifying_until=1006.0)[:2] == (False, 1006.0)
    refused = verdict()
    assert refused[:2] == (False, None) and "not verified in staging" in refused[2]
