"""planning.proposals: which new version an environment proposes, over plain values."""

from __future__ import annotations

from dataclasses import replace

from mlflow_gitops.core.model import (
    DesiredState,
    Gate,
    LiveVersion,
    Promotion,
    Propose,
    frozen_map,
)
from mlflow_gitops.core.plan import GateResult, Verdict
from mlflow_gitops.core.ports import GateCheck
from mlflow_gitops.planning.proposals import decide

from tests.support.builders import desired, env, live

PASSED = {"validation_status": "passed"}
WHEN_PASSED = Propose(tags=frozen_map(PASSED))
GATED = Promotion(gates=(Gate(metric="accuracy", min=0.9),))


def _state(propose: Propose | None = WHEN_PASSED) -> DesiredState:
    return desired(replace(env("staging", "stage:Staging", {"fraud": 2}), propose=propose,
                           promotion=GATED))


def _snapshot(tags: dict[int, dict[str, str]], versions: int = 5) -> object:
    return live({"fraud": {v: ("Staging" if v == 2 else "None") for v in range(1, versions + 1)}},
                tags={("fraud", v): t for v, t in tags.items()})


def _allow(state: DesiredState) -> GateCheck | None:
    return None


def _refuse(versions: set[int], message: str = "metric accuracy 0.5 < min 0.9") -> object:
    def check_for(state: DesiredState) -> GateCheck:
        def check(environment, model, version, live_model):  # type: ignore[no-untyped-def]
            if version in versions:
                return Verdict(False, (GateResult("metric accuracy", False, "0.5", ">= 0.9"),),
                               message=message)
            return Verdict(True)
        return check
    return check_for


def _no_metrics(version: LiveVersion) -> None:
    return None


def test_the_newest_tagged_version_is_proposed() -> None:
    """Of several newer versions carrying the `when` tags, the newest wins."""
    snapshot = _snapshot({3: PASSED, 4: PASSED})
    decision = decide(_state(), "staging", "fraud", snapshot, _allow, _no_metrics)
    assert (decision.current, decision.candidate) == (2, 4)
    assert [s.version for s in decision.skipped] == [5]
    assert "tag validation_status is missing" in decision.skipped[0].reason


def test_a_version_the_policy_refuses_is_skipped_with_the_policy_reason() -> None:
    """A candidate failing a gate is skipped with the gate's words; the next one is taken."""
    snapshot = _snapshot({3: PASSED, 4: PASSED})
    decision = decide(_state(), "staging", "fraud", snapshot, _refuse({4}), _no_metrics)
    assert decision.candidate == 3
    assert decision.skipped[-1].version == 4
    assert "accuracy 0.5 < min 0.9" in decision.skipped[-1].reason


def test_nothing_is_proposed_when_no_newer_version_qualifies() -> None:
    """Versions older than the assigned one are never candidates; untagged ones are skipped."""
    snapshot = _snapshot({1: PASSED})
    decision = decide(_state(), "staging", "fraud", snapshot, _allow, _no_metrics)
    assert decision.candidate is None
    assert {s.version for s in decision.skipped} == {3, 4, 5}


def test_a_closed_proposal_is_not_made_again() -> None:
    """A version whose pull request was closed unmerged is skipped, saying so."""
    snapshot = _snapshot({3: PASSED, 4: PASSED})
    decision = decide(_state(), "staging", "fraud", snapshot, _allow, _no_metrics,
                      already_refused=frozenset({4}))
    assert decision.candidate == 3
    assert decision.skipped[-1].reason == "its proposal was closed without merging"


def test_metric_bounds_of_when_are_checked_on_the_source_run() -> None:
    """`when.metrics` bounds read the candidate's run metrics; unknown metrics skip it."""
    state = _state(Propose(tags=frozen_map(PASSED),
                           metrics=(Gate(metric="accuracy", min=0.9),)))
    snapshot = _snapshot({3: PASSED, 4: PASSED})
    scores = {3: 0.95, 4: 0.8}
    decision = decide(state, "staging", "fraud", snapshot, _allow,
                      lambda v: {"accuracy": scores[v.version]} if v.version in scores else None)
    assert decision.candidate == 3
    assert "accuracy 0.8 < 0.9" in decision.skipped[-1].reason


def test_an_environment_without_propose_proposes_nothing() -> None:
    """Only environments with a `propose:` block take part."""
    snapshot = _snapshot({3: PASSED})
    decision = decide(_state(None), "staging", "fraud", snapshot, _allow, _no_metrics)
    assert decision.candidate is None and decision.skipped == ()
