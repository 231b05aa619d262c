"""The verification step of a pass, on an in-memory registry with scripted sources: a
failure rolls back at once through the executor and holds; `on_failure: hold` holds only; a
person's hold is never measured nor lifted; a replica that may not write writes nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import replace

from mlflow_gitops.core.model import Check, Verify
from mlflow_gitops.core.tags import hold_tag, verify_tag
from mlflow_gitops.loop.reconciler import reconcile
from mlflow_gitops.loop.verification import Verifier
from mlflow_gitops.policy import verify as window

from tests.support.builders import desired, env, live
from tests.support.memory_registry import MemoryRegistry

CHECK = Check(source="monitoring", query='errors{version="{version}"}', max=0.05, line=12)


class Scripted:
    """A verification source answering a fixed value per version (None: down)."""

    def __init__(self, values: Mapping[str, float | None]) -> None:
        self.values = values
        self.asked: list[dict[str, str]] = []

    def measure(self, check: Check, values: Mapping[str, str]) -> tuple[float | None, str]:
        self.asked.append(dict(values))
        value = self.values.get(values["version"])
        return value, "" if value is not None else "source down: connection refused"


def _promoted(on_failure: str = "rollback", model_tags: dict[str, str] | None = None
              ) -> tuple[MemoryRegistry, object]:
    """v1 serves @champion; a commit moves it to v2 (with verify:), applied for real."""
    registry = MemoryRegistry.from_snapshot(live(
        {"fraud": {1: "None", 2: "None"}}, aliases={"fraud": {"champion": 1}},
        model_tags={"fraud": model_tags or {}}))
    production = replace(env("production", "alias:champion", {"fraud": 2}), verify=Verify(
        duration_seconds=6, interval_seconds=1, on_failure=on_failure,  # type: ignore[arg-type]
        checks=(CHECK,)))
    state = desired(production)
    result = reconcile(state, {"default": registry})
    return registry, result


class Ledger:
    def __init__(self) -> None:
        self.entries: list[object] = []

    def record(self, entries: object) -> None:
        self.entries.extend(entries)  # type: ignore[call-overload]


def _step(registry: MemoryRegistry, result: object, sources: Scripted, later: float = 1.2,
          may_write: bool = True, ledger: Ledger | None = None
          ) -> tuple[object, list[tuple]]:  # type: ignore[type-arg]
    before = len(registry.calls)
    verifier = Verifier(sources, clock=lambda: time.time() + later,
                        ledger=ledger)  # type: ignore[arg-type]
    outcome = verifier.step(result, {"default": registry},  # type: ignore[arg-type]
                            lambda: may_write)
    return outcome, registry.calls[before:]


def test_a_failed_measurement_rolls_back_and_holds_in_the_same_pass() -> None:
    """Over the limit: hold first, then the replaced version returns through the executor."""
    registry, result = _promoted()
    assert registry.aliases["fraud"]["champion"] == 2
    ledger = Ledger()
    outcome, _ = _step(registry, result, Scripted({"2": 0.5}), ledger=ledger)
    assert [(e.action, e.reason, e.from_version, e.to_version)  # type: ignore[attr-defined]
            for e in ledger.entries] == [("verify_failed", "verification", 2, 2),
                                         ("set_alias", "rollback", 2, 1)]
    assert registry.aliases["fraud"]["champion"] == 1
    hold = json.loads(registry.model_tags["fraud"][hold_tag("production")])
    assert hold["by"] == window.HOLD_AUTHOR
    assert "= 0.5, above max 0.05" in hold["reason"] and "rolled back to v1" in hold["reason"]
    (row,) = outcome.rows  # type: ignore[attr-defined]
    assert (row.sync, row.live) == ("RolledBack", (1,))
    assert [c.change.reason for c in outcome.applied] == ["verification"]  # type: ignore[attr-defined]
    failed = json.loads(registry.tags[("fraud", 2)][verify_tag("production")])
    assert failed["outcome"] == "failed" and failed["replaced"] == 1
    restored = json.loads(registry.tags[("fraud", 1)][verify_tag("production")])
    assert restored["outcome"] == "skipped"


def test_a_healthy_round_is_verifying_with_its_window() -> None:
    """A passing measurement keeps the entry Verifying until the window's end."""
    registry, result = _promoted()
    outcome, _ = _step(registry, result, Scripted({"2": 0.01}))
    (row,) = outcome.rows  # type: ignore[attr-defined]
    assert row.sync == "Verifying" and row.until is not None and row.next_check is not None
    assert registry.aliases["fraud"]["champion"] == 2


def test_on_failure_hold_holds_and_changes_nothing_else() -> None:
    """`on_failure: hold`: the hold with the reason, the registry left as it is."""
    registry, result = _promoted(on_failure="hold")
    outcome, _ = _step(registry, result, Scripted({"2": 0.5}))
    assert registry.aliases["fraud"]["champion"] == 2
    assert "above max 0.05" in registry.model_tags["fraud"][hold_tag("production")]
    assert outcome.rows[0].sync == "Held"  # type: ignore[attr-defined]


def test_a_persons_hold_is_never_measured_nor_lifted() -> None:
    """A held entry is left alone: no measurement, no write, the hold stays."""
    person = json.dumps({"by": "ann", "at": "2026-12-05T10:00:00Z", "reason": "investigating"})
    registry, result = _promoted(model_tags={hold_tag("production"): person})
    sources = Scripted({"2": 0.5})
    _, writes = _step(registry, result, sources)
    assert sources.asked == [] and writes == []
    assert registry.model_tags["fraud"][hold_tag("production")] == person


def test_a_replica_that_may_not_write_neither_records_nor_rolls_back() -> None:
    """Only the leader with time left on its lease writes: a standby changes nothing."""
    registry, result = _promoted()
    _, writes = _step(registry, result, Scripted({"2": 0.5}), may_write=False)
    assert writes == [] and registry.aliases["fraud"]["champion"] == 2


def test_a_rollback_cut_short_after_the_hold_is_finished_by_the_next_pass() -> None:
    """Stopped between the hold and the rollback (the lease lost, or killed): the next pass
    (held, so the planner writes nothing) completes the return to the replaced version, and
    a later pass writes nothing more."""
    registry, result = _promoted()
    allowed = iter([True, True, True])  # window start, measurement, hold; then no more
    verifier = Verifier(Scripted({"2": 0.5}), clock=lambda: time.time() + 1.2)
    verifier.step(result, {"default": registry}, lambda: next(allowed, False))  # type: ignore[arg-type]
    assert registry.aliases["fraud"]["champion"] == 2
    assert window.HOLD_AUTHOR in registry.model_tags["fraud"][hold_tag("production")]
    state = desired(replace(env("production", "alias:champion", {"fraud": 2}),
                            verify=Verify(duration_seconds=6, interval_seconds=1,
                                          checks=(CHECK,))))
    again = reconcile(state, {"default": registry})
    assert again.plan.changes == ()  # held: the planner leaves it alone
    outcome, _ = _step(registry, again, Scripted({"2": 0.5}))
    assert registry.aliases["fraud"]["champion"] == 1
    assert outcome.rows[0].sync == "RolledBack"  # type: ignore[attr-defined]
    _, writes = _step(registry, reconcile(state, {"default": registry}), Scripted({"2": 0.5}))
    assert writes == []
