"""The executor: one write per change plus its lineage tag, isolated per model."""

from __future__ import annotations

from mlflow_gitops.loop.executor import execute
from mlflow_gitops.planning.planner import plan

from tests.support.builders import desired, env, live
from tests.support.memory_registry import MemoryRegistry


def test_each_change_writes_its_lineage_tag() -> None:
    """Every change writes the gitops.env.<environment> tag = the commit just before itself,
    and the promotion policy's evidence (policy/evidence.py) just after itself."""
    snapshot = live({"m": {1: "Production", 2: "None"}})
    registry = MemoryRegistry.from_snapshot(snapshot)
    result = execute(plan(desired(env("production", "stage:Production", {"m": 2}),
                                  commit="abc123"), {"default": snapshot}),
                     {"default": registry})
    assert result.ok
    assert [c[:4] for c in registry.calls] == [
        ("tag", "m", 2, "gitops.env.production"), ("transition", "m", 2, "Production"),
        ("tag", "m", 2, "gitops.applied.production"),
        ("tag", "m", 1, "gitops.env.production"), ("transition", "m", 1, "Archived"),
        ("tag", "m", 1, "gitops.left.production")]
    assert registry.calls[0][4] == registry.calls[3][4] == "abc123"


def test_a_failing_model_stops_only_its_own_changes() -> None:
    """A refused call skips the rest of that model's changes while other models converge."""
    snapshot = live({"a": {1: "Production", 2: "None"}, "b": {1: "Production", 2: "None"}})
    registry = MemoryRegistry.from_snapshot(snapshot)
    registry.reject.add("a")
    result = execute(plan(desired(env("production", "stage:Production", {"a": 2, "b": 2})),
                          {"default": snapshot}), {"default": registry})
    assert [(e.model, e.kind) for e in result.failed] == [("a", "apply")]
    assert "remaining changes of a skipped" in result.failed[0].message
    assert registry.stages == {"a": {1: "Production", 2: "None"},
                               "b": {1: "Archived", 2: "Production"}}


def test_losing_leadership_stops_all_writes_at_once() -> None:
    """When may_write turns false mid-pass, no further write is made."""
    snapshot = live({"a": {1: "None"}, "b": {1: "None"}})
    registry = MemoryRegistry.from_snapshot(snapshot)
    answers = iter([True, False, False])
    result = execute(plan(desired(env("staging", "stage:Staging", {"a": 1, "b": 1})),
                          {"default": snapshot}), {"default": registry},
                     may_write=lambda: next(answers))
    assert [c[:2] for c in registry.calls] == [("tag", "a"), ("transition", "a"), ("tag", "a")]
    assert "no longer the leader" in result.failed[0].message
    assert len(result.failed) == 1, "one error for the whole stop, not one per model"


def test_a_registry_that_stops_answering_cuts_its_models_short_at_once() -> None:
    """After the first transient failure the registry's remaining models are skipped with no
    further call, reported once; another registry's models still converge."""
    models = {f"m{i}": {1: "None"} for i in range(5)}
    dead = MemoryRegistry.from_snapshot(live(models))
    alive = MemoryRegistry.from_snapshot(live({"x": {1: "None"}}, registry="other"))
    dead.fail_on.update(models)
    state = desired(env("staging", "stage:Staging", dict.fromkeys(models, 1)),
                    env("prod", "stage:Staging", {"x": 1}, registry="other"))
    result = execute(plan(state, {"default": dead.snapshot(), "other": alive.snapshot()}),
                     {"default": dead, "other": alive})
    assert dead.calls == []
    assert [(e.model, e.kind) for e in result.failed] == [("m0", "registry")]
    assert "remaining 4 changes of 4 other models" in result.failed[0].message
    assert set(result.unreachable) == {"default"}
    assert alive.stages == {"x": {1: "Staging"}}
