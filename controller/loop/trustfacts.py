"""The facts phase's last read, for trust at apply: which changes into a guarded environment
the planner is going to judge, and what the TrustPort says about each (the commit that
brought it, signatures, approvals). Which changes those are follows from the desired state
and the snapshots alone (the planner asks the gate about every change it would make,
whatever earlier verdicts said), so a dry planning pass with a gate that only records is
run first, pure; then each recorded change is read once. Planning proper then judges
`PassFacts.trust` without a port (mlflow_gitops.policy.trustgate)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from mlflow_gitops.core.facts import PassFacts, TrustKey
from mlflow_gitops.core.model import DesiredState, Environment, LiveModel, frozen_map
from mlflow_gitops.core.plan import Verdict
from mlflow_gitops.core.ports import TrustPort
from mlflow_gitops.core.trust import EntryTrust, TrustRules
from mlflow_gitops.loop.routing import route, settle
from mlflow_gitops.planning import converged
from mlflow_gitops.planning.planner import plan
from mlflow_gitops.policy.trustgate import trust_key


@dataclass(frozen=True)
class TrustReads:
    """Trust at apply for the controller: the rules and where their facts are read."""

    rules: TrustRules
    port: TrustPort


def with_trust(desired: DesiredState, previous: DesiredState | None, facts: PassFacts,
               reads: TrustReads, records: bool) -> PassFacts:
    """`facts` with the trust facts of every change into a guarded environment this pass's
    planning will judge. `previous` and `records` as for reconcile."""
    if not any(reads.rules.guards(env.name) for env in desired.environments):
        return facts
    asked = changes_judged(desired, previous, facts, reads.rules, records)
    by_name = desired.by_name()
    read: dict[TrustKey, EntryTrust] = {}
    for key in sorted(asked):
        environment, entry, version, rollback = key
        read[key] = reads.port.entry_trust(by_name[environment], entry, version,
                                           desired.commit, approvals=not rollback)
    return replace(facts, trust=frozen_map(read))


def changes_judged(desired: DesiredState, previous: DesiredState | None, facts: PassFacts,
                   rules: TrustRules, records: bool) -> set[TrustKey]:
    """The guarded changes the planner asks the gate about in this pass (pure): routing
    and planning run on the facts with a gate that records and allows."""
    by_name = desired.by_name()
    asked: set[TrustKey] = set()

    def record(env: Environment, model: str, version: int, live: LiveModel) -> Verdict:
        if rules.guards(env.name):
            key = trust_key(by_name, env, model, version, live)
            if key is not None:
                asked.add(key)
        return Verdict(True)

    routing = route(desired, None if records else previous, facts.snapshots, record,
                    copy=False)
    routed = settle(routing, (), ())
    last_applied = converged.applied_state(routed.desired, routed.snapshots) if records \
        else routed.previous
    plan(routed.desired, routed.snapshots, previous=last_applied, check=record)
    return asked
