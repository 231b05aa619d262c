"""The write gate between a new commit and a drift check running beside it: one write at a
time, and a model a newer commit took over is never written by a plan made before it."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager

from mlflow_gitops.core.plan import CopyRequest
from mlflow_gitops.loop.executor import copy_versions, execute, write_records
from mlflow_gitops.loop.gate import WriteGate
from mlflow_gitops.planning.converged import RecordWrite
from mlflow_gitops.planning.planner import plan

from tests.support.builders import desired, env, live
from tests.support.memory_registry import MemoryRegistry


def test_a_model_touched_by_a_newer_commit_is_not_written_by_an_older_plan() -> None:
    """After generation 2 applied model a, a plan of generation 1 may not write a (but may
    write b); a plan of generation 2 or later may write both."""
    gate = WriteGate()
    with gate.commit(2, [("default", "a")]):
        pass
    answers = []
    for generation, model in ((1, "a"), (1, "b"), (2, "a"), (3, "a")):
        with gate.model(generation, "default", model) as ok:
            answers.append(ok)
    assert answers == [False, True, True, True]


def test_forgetting_older_generations_keeps_newer_marks() -> None:
    """A pass of generation 2 starting drops the marks it can no longer be overtaken by, and
    keeps those of a newer commit."""
    gate = WriteGate()
    with gate.commit(2, [("default", "a")]):
        pass
    with gate.commit(3, [("default", "b")]):
        pass
    gate.forget_before(2)
    assert gate.touched_after(0) == {("default", "b")}


def test_a_commit_holds_every_other_write_until_it_is_done() -> None:
    """While a commit reads, plans and writes under the gate, a drift write waits for it."""
    gate = WriteGate()
    order: list[str] = []
    inside = threading.Event()

    def drift_write() -> None:
        inside.wait(5)
        with gate.model(1, "default", "a") as ok:
            order.append(f"drift ok={ok}")

    thread = threading.Thread(target=drift_write)
    thread.start()
    with gate.commit(2, [("default", "a")]):
        inside.set()
        thread.join(0.2)  # the drift write cannot get in meanwhile
        order.append("commit")
    thread.join(5)
    assert order == ["commit", "drift ok=False"]


def test_the_executor_leaves_a_superseded_model_alone_and_writes_the_others() -> None:
    """A guard saying no for model a: none of a's changes is written, nor counted as failed;
    b's are written as usual."""
    snapshot = live({"a": {1: "Production", 2: "None"}, "b": {1: "Production", 2: "None"}})
    registry = MemoryRegistry.from_snapshot(snapshot)
    gate = WriteGate()
    with gate.commit(2, [("default", "a")]):
        pass
    result = execute(plan(desired(env("production", "stage:Production", {"a": 2, "b": 2})),
                          {"default": snapshot}), {"default": registry},
                     guard=lambda registry, model: gate.model(1, registry, model))
    assert result.superseded == [("default", "a")]
    assert result.ok and not result.failed
    assert {c[1] for c in registry.calls} == {"b"}
    assert registry.stages["a"] == {1: "Production", 2: "None"}


def test_records_and_copies_of_a_superseded_model_are_left_to_a_later_pass() -> None:
    """A `self_heal: false` record and a copy into a model a newer commit took over are
    neither written nor failed; those of other models are written as usual."""
    snapshot = live({"a": {1: "Production"}, "b": {1: "Production"}})
    registry = MemoryRegistry.from_snapshot(snapshot)
    gate = WriteGate()
    with gate.commit(2, [("default", "a")]):
        pass

    def guard(registry: str, model: str) -> AbstractContextManager[bool]:
        return gate.model(1, registry, model)

    writes = [RecordWrite("default", "production", m, "gitops.converged.production", "{}",
                          "environments/production.yaml", 3) for m in ("a", "b")]
    assert write_records(writes, {"default": registry}, guard=guard) == []
    assert [c[1] for c in registry.calls] == ["b"]
    request = CopyRequest("production", "default", "a", "a", -1, "default", "b", 1, (),
                          "environments/production.yaml", 3, 1)
    made, failed = copy_versions([request], {"default": registry}, guard=guard)
    assert made == () and failed == ()
    assert [c[1] for c in registry.calls] == ["b"]
