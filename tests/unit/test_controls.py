"""Emergency holds and rejected versions in the pure planner (hold/reject)."""

from __future__ import annotations

from mlflow_gitops.core.model import LiveVersion, frozen_map
from mlflow_gitops.core.tags import REJECTED as REJECTED_TAG
from mlflow_gitops.core.tags import hold_tag
from mlflow_gitops.planning.planner import plan
from mlflow_gitops.policy.controls import (
    is_rejected,
    make_control,
    parse_control,
)

from tests.support.builders import desired, env, live

HOLD = make_control("ann", "bad predictions", 1_764_644_645.0).to_json()


def test_control_round_trips_through_its_json() -> None:
    """A control written as JSON reads back with who, when (UTC) and why."""
    control = parse_control(HOLD)
    assert (control.by, control.at, control.reason) == \
        ("ann", "2025-12-02T03:04:05Z", "bad predictions")
    assert control.describe() == "by ann at 2025-12-02T03:04:05Z: bad predictions"


def test_a_hand_written_tag_value_still_counts() -> None:
    """A tag that is not our JSON still holds or rejects, its value kept as the reason."""
    assert parse_control("yes").reason == "yes"
    assert is_rejected(LiveVersion("m", 1, tags=frozen_map({REJECTED_TAG: "[1]"}))) is not None
    assert is_rejected(LiveVersion("m", 1)) is None


def test_a_held_model_gets_no_changes_in_that_environment_only() -> None:
    """A hold on production stops its changes for that model; staging and other models plan."""
    state = desired(env("production", "stage:Production", {"m": 2, "other": 2}),
                    env("staging", "stage:Staging", {"m": 3}))
    snap = live({"m": {1: "Production", 2: "None", 3: "None"},
                 "other": {1: "Production", 2: "None"}},
                model_tags={"m": {hold_tag("production"): HOLD}})
    p = plan(state, {"default": snap})
    assert {(c.environment, c.model) for c in p.changes} == \
        {("staging", "m"), ("production", "other")}
    [error] = p.errors
    assert (error.environment, error.model, error.kind) == ("production", "m", "held")
    assert "by ann at 2025-12-02T03:04:05Z: bad predictions" in error.message
    assert "release m --env production" in error.message


def test_a_held_model_is_held_even_when_synced_and_never_pruned() -> None:
    """Held shows while live equals desired, and a held prune environment writes nothing."""
    snap = live({"m": {1: "Production"}}, model_tags={"m": {hold_tag("production"): HOLD}})
    p = plan(desired(env("production", "stage:Production", {"m": 1})), {"default": snap})
    assert p.changes == () and [e.kind for e in p.errors] == ["held"]
    pruned = plan(desired(env("production", "stage:Production", {}, prune=True)),
                  {"default": live({"m": {1: "Production"}},
                                   tags={("m", 1): {"gitops.env.production": "abc"}},
                                   model_tags={"m": {hold_tag("production"): HOLD}})})
    assert pruned.changes == ()


def test_a_hold_outranks_a_missing_version() -> None:
    """A held model whose desired version is missing is reported as held, not as an error."""
    snap = live({"m": {1: "Production"}}, model_tags={"m": {hold_tag("production"): HOLD}})
    p = plan(desired(env("production", "stage:Production", {"m": 9})), {"default": snap})
    assert [e.kind for e in p.errors] == ["held"]


def test_a_rejected_version_is_refused_with_its_reason_even_as_a_rollback() -> None:
    """A rejected desired version is refused (kind gate) although production served it."""
    rejected = make_control("bob", "leaks PII", 0.0).to_json()
    snap = live({"m": {1: "Archived", 2: "Production"}},
                tags={("m", 1): {REJECTED_TAG: rejected, "gitops.env.production": "old"}})
    p = plan(desired(env("production", "stage:Production", {"m": 1})), {"default": snap})
    assert p.changes == ()
    [error] = p.errors
    assert error.kind == "gate" and "m v1 is rejected by bob" in error.message
    assert "leaks PII" in error.message


def test_a_rejected_alias_target_is_refused_and_other_environments_proceed() -> None:
    """An alias is not moved to a rejected version; another environment still converges."""
    snap = live({"m": {1: "None", 2: "None"}}, {"m": {"champion": 1}},
                tags={("m", 2): {REJECTED_TAG: "{}"}})
    p = plan(desired(env("champion", "alias:champion", {"m": 2}),
                     env("staging", "stage:Staging", {"m": 1})), {"default": snap})
    assert [(c.environment, c.action) for c in p.changes] == [("staging", "promote")]
    assert [(e.environment, e.kind) for e in p.errors] == [("champion", "gate")]


def test_pr_comment_marks_held_waiting_and_refused_by_state_not_as_failures() -> None:
    """The markdown plan (the PR comment) names each state with its own marker and message."""
    from mlflow_gitops.core.plan import ModelError, Plan
    from mlflow_gitops.planning.render import render_markdown

    def error(kind: str, message: str) -> ModelError:
        return ModelError("default", "production", "m", kind, message,  # type: ignore[arg-type]
                          "environments/production.yaml", 6)

    text = render_markdown(Plan("abc", errors=(
        error("held", "m is held in production by ann"),
        error("waiting", "frozen; the window opens 2026-12-07 09:00 CET (08:00 UTC)"),
        error("gate", "m v1 is rejected by bob"),
        error("missing_version", "m v9 does not exist"))))
    assert "- :pause_button: **Held** `environments/production.yaml:6` m is held in " \
           "production by ann" in text
    assert "- :hourglass: **Waiting** `environments/production.yaml:6` frozen; the window " \
           "opens 2026-12-07 09:00 CET (08:00 UTC)" in text
    assert "- :no_entry: **Refused** `environments/production.yaml:6` m v1 is rejected" in text
    assert "- :x: **Error** `environments/production.yaml:6` m v9 does not exist" in text


def test_a_held_model_gets_no_write_call_of_any_kind_in_a_whole_pass() -> None:
    """A pass with records on (self_heal: false) makes no call for a held model, listed or
    just removed from the file, while an unheld one is applied and recorded."""
    from mlflow_gitops.core.tags import converged_tag
    from mlflow_gitops.loop.reconciler import reconcile

    from tests.support.memory_registry import MemoryRegistry

    registry = MemoryRegistry.from_snapshot(live(
        {"held": {1: "Production", 2: "None"}, "gone": {1: "Production"},
         "free": {1: "Production", 2: "None"}},
        tags={("gone", 1): {"gitops.env.production": "c0"}},
        model_tags={"held": {hold_tag("production"): HOLD},
                    "gone": {hold_tag("production"): HOLD,
                             converged_tag("production"): '{"version": 1, "target": '
                                                       '"stage:Production"}'}}))
    state = desired(env("production", "stage:Production", {"held": 2, "free": 2},
                        self_heal=False), commit="c1")
    reconcile(state, {"default": registry}, records=True)
    touched = {call[1] for call in registry.calls}
    assert touched == {"free"}
