"""Trust at apply inside the promotion policy: a PolicyFactory that adds the trust verdict
(mlflow_gitops.policy.trust) to every change into an environment the controller config
guards. Pure: the facts it judges were read before planning, into `PassFacts.trust`
(mlflow_gitops.loop.trustfacts asks for exactly the changes the planner judges).
Without `at_apply` (`plan`, `apply` and `diff` on a folder, which run before the merge or
without the forge) each such change says what the controller will check at apply instead."""

from __future__ import annotations

from collections.abc import Mapping

from mlflow_gitops.core.facts import PassFacts, TrustKey
from mlflow_gitops.core.model import DesiredState, Environment, LiveModel
from mlflow_gitops.core.plan import Verdict
from mlflow_gitops.core.ports import GateCheck, PolicyFactory
from mlflow_gitops.core.trust import EntryTrust, TrustRules
from mlflow_gitops.policy import evidence
from mlflow_gitops.policy.trust import combine, judge

#: What a guarded change is told when its facts were not read in this pass (never taken as
#: a pass: the next pass reads them).
UNREAD = "trust at apply: the facts about this change were not read in this pass"


def guarded(base: PolicyFactory | None, rules: TrustRules, at_apply: bool
            ) -> PolicyFactory:
    """`base`'s verdicts, with trust at apply added for the environments `rules` guard."""
    def factory(desired: DesiredState, facts: PassFacts) -> GateCheck | None:
        inner = base(desired, facts) if base is not None else None
        if not any(rules.guards(env.name) for env in desired.environments):
            return inner
        return _Check(desired, inner, rules, facts.trust if at_apply else None).check

    return factory


def trust_key(by_name: Mapping[str, Environment], env: Environment, model: str,
              version: int, live: LiveModel) -> TrustKey | None:
    """The change a gate call is about, as trust at apply knows it: the environment, the
    entry's key in its file (a `registered_name` entry is asked about by its model's name),
    the version the file assigns, and whether it is a rollback (the version served there
    before: it carries this environment's apply record). None: the file lists no such entry
    (a prune)."""
    raw = by_name.get(env.name, env)
    key = next((k for k, e in raw.models.items() if (e.registered_name or k) == model), model)
    entry = raw.models.get(key)
    if entry is None:
        return None
    rollback = evidence.read(live.versions.get(version), env.name) is not None
    return env.name, key, entry.version, rollback


class _Check:
    """One pass's trust checks over the facts read before planning."""

    def __init__(self, desired: DesiredState, inner: GateCheck | None, rules: TrustRules,
                 read: Mapping[TrustKey, EntryTrust] | None) -> None:
        self.by_name = desired.by_name()
        self.inner = inner
        self.rules = rules
        self.read = read

    def check(self, env: Environment, model: str, version: int, live: LiveModel) -> Verdict:
        verdict = self.inner(env, model, version, live) if self.inner else Verdict(True)
        if not self.rules.guards(env.name):
            return verdict
        ident = trust_key(self.by_name, env, model, version, live)
        if self.read is None or ident is None:
            rollback = evidence.read(live.versions.get(version), env.name) is not None
            note = f"at apply the controller checks {self.rules.describe(rollback)}"
            return Verdict(verdict.allowed, verdict.gates,
                           "; ".join(n for n in (verdict.note, note) if n), verdict.message,
                           verdict.waiting_until)
        facts = self.read.get(ident)
        name = f"{ident[1]} v{ident[2]}"
        if facts is None:
            trust = Verdict(False, message=f"{name} not promoted: {UNREAD}; retried next pass")
        else:
            trust = judge(self.rules, facts, ident[3])
            if not trust.allowed and verdict.allowed:
                trust = Verdict(False, trust.gates,
                                message=f"{name} not promoted: {trust.message}",
                                waiting_until=trust.waiting_until)
        return combine(verdict, trust)
