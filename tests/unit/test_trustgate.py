"""Trust at apply inside the plan: its facts are read before planning (loop.trustfacts: one
read per guarded change the planner judges, rollbacks without approvals, nothing for what
converged), the verdict on them is pure, a change whose facts were not read is refused, and
`plan`/`diff` (no port) say what apply checks."""

from __future__ import annotations

from mlflow_gitops.core.facts import PassFacts
from mlflow_gitops.core.model import DesiredState, Environment, LiveModel, Snapshot
from mlflow_gitops.core.plan import Plan, Verdict
from mlflow_gitops.core.trust import Approvals, EntryTrust, Signature, TrustRules
from mlflow_gitops.loop.trustfacts import TrustReads, changes_judged, with_trust
from mlflow_gitops.planning.planner import plan
from mlflow_gitops.policy.evidence import applied_tag
from mlflow_gitops.policy.trustgate import UNREAD, guarded, trust_key

from tests.support.builders import desired, env, live

RULES = TrustRules(frozenset({"production"}), signed_commits=True, reviews=2)
SHA = "1a2b3c4" + "0" * 33


class Port:
    """Answers `unsigned` or `signed and approved`; records every read."""

    def __init__(self, signed: bool) -> None:
        self.signed = signed
        self.reads: list[tuple[str, str, int, bool]] = []

    def entry_trust(self, environment: Environment, key: str, version: int, commit: str,
                    approvals: bool = True) -> EntryTrust:
        self.reads.append((environment.name, key, version, approvals))
        signature = Signature(SHA, "G", "k", "alice", "ssh", True) if self.signed \
            else Signature(SHA, "N")
        return EntryTrust(SHA, SHA, (signature,),
                          Approvals("#1", "ada", ("bob", "cyd")) if approvals else None)


def _world(tags: dict[tuple[str, int], dict[str, str]] | None = None,
           champion: int = 1) -> tuple[DesiredState, Snapshot]:
    state = desired(env("production", "alias:champion", {"m": 2}),
                    env("staging", "alias:challenger", {"m": 2}))
    snapshot = live({"m": {1: "None", 2: "None"}}, aliases={"m": {"champion": champion}},
                    tags=tags)
    return state, snapshot


def _plan(port: Port | None, tags: dict[tuple[str, int], dict[str, str]] | None = None
          ) -> Plan:
    state, snapshot = _world(tags)
    facts = PassFacts({"default": snapshot})
    if port is not None:
        facts = with_trust(state, None, facts, TrustReads(RULES, port), records=False)
    check = guarded(None, RULES, at_apply=port is not None)(state, facts)
    return plan(state, {"default": snapshot}, check=check)


def test_only_guarded_environments_are_checked_and_refusals_name_the_reason() -> None:
    """Production is refused for an unsigned commit; staging, unguarded, still moves."""
    port = Port(signed=False)
    result = _plan(port)
    assert [(c.environment, c.version) for c in result.changes] == [("staging", 2)]
    (error,) = result.errors
    assert (error.environment, error.kind) == ("production", "gate")
    assert error.message == "m v2 not promoted: unsigned commit 1a2b3c4"
    assert port.reads == [("production", "m", 2, True)]


def test_a_rollback_is_read_without_approvals() -> None:
    """A version production served before is judged on its signature alone."""
    port = Port(signed=True)
    served = {("m", 2): {applied_tag("production"): '{"commit": "c0ffee", "at": 1.0}'}}
    result = _plan(port, served)
    assert {c.environment for c in result.changes} == {"production", "staging"}
    assert port.reads == [("production", "m", 2, False)]


def test_without_a_port_plan_says_what_the_controller_will_check() -> None:
    """`plan`/`diff` let the change through with a note naming both rules."""
    result = _plan(None)
    (prod,) = [c for c in result.changes if c.environment == "production"]
    assert prod.note == ("at apply the controller checks a signature by an allowed key on "
                         "the commit and its merge and 2 approving reviews by people other "
                         "than the author")


def test_a_converged_guarded_entry_reads_nothing() -> None:
    """Production already serves v2: no trust read at all (the probe asks only about the
    changes the planner judges)."""
    port = Port(signed=False)
    state, snapshot = _world(champion=2)
    facts = with_trust(state, None, PassFacts({"default": snapshot}), TrustReads(RULES, port),
                       records=False)
    assert port.reads == [] and dict(facts.trust) == {}


def test_a_change_whose_facts_were_not_read_is_refused() -> None:
    """At apply, a guarded change missing from the pass's trust facts is never let through
    (fail closed), and the check itself reads no port."""
    state, snapshot = _world()
    check = guarded(None, RULES, at_apply=True)(state, PassFacts({"default": snapshot}))
    result = plan(state, {"default": snapshot}, check=check)
    assert [c.environment for c in result.changes] == ["staging"]
    (error,) = result.errors
    assert error.environment == "production" and UNREAD in error.message


def _asked_by_planning(state: DesiredState, snapshot: Snapshot) -> set[tuple[str, str, int, bool]]:
    """The guarded gate calls a planning pass makes with a gate that refuses everything."""
    asked = set()
    by_name = state.by_name()

    def refuse(env: Environment, model: str, version: int, live: LiveModel) -> Verdict:
        if RULES.guards(env.name):
            key = trust_key(by_name, env, model, version, live)
            assert key is not None
            asked.add(key)
        return Verdict(False, message="no")

    plan(state, {"default": snapshot}, check=refuse)
    return asked


def test_the_probe_finds_exactly_the_changes_planning_judges() -> None:
    """The set the probe reads equals the guarded gate calls of the real planning, whatever
    the verdicts (refusing everything asks about the same changes)."""
    served = {("m", 2): {applied_tag("production"): '{"commit": "c0ffee", "at": 1.0}'}}
    seen = []
    for tags, champion in ((None, 1), (None, 2), (served, 1)):
        state, snapshot = _world(tags, champion)
        probed = changes_judged(state, None, PassFacts({"default": snapshot}), RULES,
                                records=False)
        assert probed == _asked_by_planning(state, snapshot)
        seen.append(sorted(probed))
    assert seen == [[("production", "m", 2, False)], [], [("production", "m", 2, True)]]
