"""The self_heal:false record (planning.converged) through whole passes over an in-memory
registry: what a restart finds is exactly what was fully applied, per entry."""

from __future__ import annotations

import json

from mlflow_gitops.core.model import LiveModel
from mlflow_gitops.core.plan import Verdict
from mlflow_gitops.core.tags import converged_tag
from mlflow_gitops.loop.reconciler import reconcile
from mlflow_gitops.planning.converged import parse

from tests.support.builders import desired, env, live
from tests.support.memory_registry import MemoryRegistry

KEY = converged_tag("production")


def _prod(models: dict[str, int], commit: str, **sync: bool) -> object:
    return desired(env("production", "stage:Production", models, self_heal=False, **sync),
                   commit=commit)


def _recorded(registry: MemoryRegistry, model: str) -> int | None:
    record = parse(registry.model_tags.get(model, {}).get(KEY))
    return record.version if record else None


def test_first_pass_records_every_converged_entry_and_the_next_writes_nothing() -> None:
    """Each entry is recorded once it converged; a second pass makes zero write calls."""
    registry = MemoryRegistry.from_snapshot(live({"a": {1: "None"}, "b": {1: "Production"}}))
    result = reconcile(_prod({"a": 1, "b": 1}, "c1"), {"default": registry}, records=True)
    assert result.ok
    assert (_recorded(registry, "a"), _recorded(registry, "b")) == (1, 1)
    value = json.loads(registry.model_tags["a"][KEY])
    assert value == {"version": 1, "target": "stage:Production", "commit": "c1"}
    registry.calls.clear()
    assert reconcile(_prod({"a": 1, "b": 1}, "c1"), {"default": registry}, records=True).ok
    assert registry.calls == []


def test_a_half_applied_commit_is_finished_after_a_restart() -> None:
    """An entry whose change failed (the process died or the call failed) keeps its old
    record, so the next pass, in any process, still applies it; converged ones are kept."""
    registry = MemoryRegistry.from_snapshot(live({m: {1: "Production", 2: "None"}
                                                  for m in ("a", "b", "c")}))
    reconcile(_prod({"a": 1, "b": 1, "c": 1}, "c1"), {"default": registry}, records=True)
    registry.reject.add("b")
    reconcile(_prod({"a": 2, "b": 2, "c": 2}, "c2"), {"default": registry}, records=True)
    assert (_recorded(registry, "a"), _recorded(registry, "b"), _recorded(registry, "c")) == \
        (2, 1, 2)
    registry.reject.clear()
    registry.stages["a"] = {1: "Production", 2: "Archived"}  # a manual change meanwhile
    # A restart: nothing in memory, only the registry.
    result = reconcile(_prod({"a": 2, "b": 2, "c": 2}, "c2"), {"default": registry},
                       records=True)
    assert registry.stages["b"] == {1: "Archived", 2: "Production"}
    assert registry.stages["a"] == {1: "Production", 2: "Archived"}, "drift is not reverted"
    assert [d.model for d in result.plan.drift] == ["a"]
    assert _recorded(registry, "b") == 2


def test_the_lineage_tag_of_a_change_that_never_landed_does_not_count() -> None:
    """A lineage tag written just before a change that never happened (kill -9 between the
    two calls) is not a record: the entry is still applied."""
    registry = MemoryRegistry.from_snapshot(live(
        {"m": {1: "Production", 2: "None"}},
        tags={("m", 2): {"gitops.env.production": "c2"}}))
    registry.model_tags["m"] = {KEY: json.dumps({"version": 1, "target": "stage:Production"})}
    reconcile(_prod({"m": 2}, "c2"), {"default": registry}, records=True)
    assert registry.stages["m"] == {1: "Archived", 2: "Production"}
    assert _recorded(registry, "m") == 2


def test_a_waiting_promotion_is_applied_when_allowed_even_after_a_later_commit() -> None:
    """A promotion the policy holds back is not recorded, so after later commits and a
    restart it is still a change and is applied once the gate passes."""
    registry = MemoryRegistry.from_snapshot(live({"m": {1: "Production", 2: "None"},
                                                  "n": {1: "Production", 2: "None"}}))
    gated = env("production", "stage:Production", {"m": 1, "n": 1}, self_heal=False)
    reconcile(desired(gated, commit="c1"), {"default": registry}, records=True)
    allowed = {"now": False}

    def policy(*_: object) -> object:
        def check(e: object, model: str, version: int, lm: LiveModel) -> Verdict:
            return Verdict(allowed["now"] or model != "m", message="soak: 1h to go",
                           waiting_until=1.0)
        return check

    from dataclasses import replace

    from mlflow_gitops.core.model import Promotion

    with_gate = replace(gated, promotion=Promotion(min_soak_seconds=3600))
    step2 = desired(replace(with_gate, models=env("p", "stage:Production",
                                                  {"m": 2, "n": 1}).models), commit="c2")
    reconcile(step2, {"default": registry}, records=True, policy=policy)  # type: ignore[arg-type]
    assert registry.stages["m"][2] == "None" and _recorded(registry, "m") == 1
    step3 = desired(replace(with_gate, models=env("p", "stage:Production",
                                                  {"m": 2, "n": 2}).models), commit="c3")
    reconcile(step3, {"default": registry}, records=True, policy=policy)  # type: ignore[arg-type]
    assert registry.stages["n"][2] == "Production"
    allowed["now"] = True
    reconcile(step3, {"default": registry}, records=True, policy=policy)  # type: ignore[arg-type]
    assert registry.stages["m"] == {1: "Archived", 2: "Production"}
    assert _recorded(registry, "m") == 2


def test_a_model_that_left_the_file_loses_its_record() -> None:
    """Once a model is no longer listed (and any prune converged) its record is deleted, so
    listing it again later counts as a change."""
    registry = MemoryRegistry.from_snapshot(live({"m": {1: "None"}, "k": {1: "None"}}))
    reconcile(_prod({"m": 1, "k": 1}, "c1"), {"default": registry}, records=True)
    assert _recorded(registry, "m") == 1
    reconcile(_prod({"k": 1}, "c2"), {"default": registry}, records=True)
    assert KEY not in registry.model_tags["m"]
    registry.stages["m"] = {1: "Archived"}
    reconcile(_prod({"m": 1, "k": 1}, "c3"), {"default": registry}, records=True)
    assert registry.stages["m"] == {1: "Production"}


def test_a_changed_target_makes_every_entry_count_as_changed() -> None:
    """A record made for another target (stage Staging) is not this target's record."""
    registry = MemoryRegistry.from_snapshot(live({"m": {1: "Staging"}}))
    registry.model_tags["m"] = {KEY: json.dumps({"version": 1, "target": "stage:Staging"})}
    reconcile(_prod({"m": 1}, "c1"), {"default": registry}, records=True)
    assert registry.stages["m"] == {1: "Production"}


def test_hand_edited_records_are_ignored() -> None:
    """A record value that is not the controller's JSON is no record at all."""
    assert parse("3") is None and parse("{}") is None and parse('{"version": true, '
                                                                 '"target": "x"}') is None
    assert parse('{"version": 3, "target": "alias:champion"}') is not None
