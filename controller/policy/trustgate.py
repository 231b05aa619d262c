"""Trust at apply inside the promotion policy: a PolicyFactory that adds the trust verdict
(mlflow_gitops.policy.trust) to every change into an environment the controller config
guards. Its facts come through a TrustPort, one read per changed entry and pass, asked only
for an entry the planner is about to change (which entries those are is known only while
planning, so this is the one read of a pass made after the facts phase; the verdict on what
it returns is pure, mlflow_gitops.policy.trust). Without a port (`plan`, `diff`, which run
before the merge) each such change says what the controller will check at apply instead."""

from __future__ import annotations

from mlflow_gitops.core.facts import PassFacts
from mlflow_gitops.core.model import DesiredState, Environment, LiveModel
from mlflow_gitops.core.plan import Verdict
from mlflow_gitops.core.ports import GateCheck, PolicyFactory, TrustPort
from mlflow_gitops.core.trust import TrustRules
from mlflow_gitops.policy import evidence
from mlflow_gitops.policy.trust import combine, judge


def guarded(base: PolicyFactory | None, rules: TrustRules, port: TrustPort | None
            ) -> PolicyFactory:
    """`base`'s verdicts, with trust at apply added for the environments `rules` guard."""
    def factory(desired: DesiredState, facts: PassFacts) -> GateCheck | None:
        inner = base(desired, facts) if base is not None else None
        if not any(rules.guards(env.name) for env in desired.environments):
            return inner
        return _Check(desired, inner, rules, port).check

    return factory


class _Check:
    """One pass's trust checks: each entry's facts read once."""

    def __init__(self, desired: DesiredState, inner: GateCheck | None, rules: TrustRules,
                 port: TrustPort | None) -> None:
        self.desired = desired
        self.by_name = desired.by_name()
        self.inner = inner
        self.rules = rules
        self.port = port
        self._seen: dict[tuple[str, str, int, bool], Verdict] = {}

    def check(self, env: Environment, model: str, version: int, live: LiveModel) -> Verdict:
        verdict = self.inner(env, model, version, live) if self.inner else Verdict(True)
        if not self.rules.guards(env.name):
            return verdict
        raw = self.by_name.get(env.name, env)
        key = next((k for k, e in raw.models.items() if (e.registered_name or k) == model),
                   model)
        entry = raw.models.get(key)
        rollback = evidence.read(live.versions.get(version), env.name) is not None
        if self.port is None or entry is None:
            what = self.rules.describe(rollback)
            note = f"at apply the controller checks {what}"
            return Verdict(verdict.allowed, verdict.gates,
                           "; ".join(n for n in (verdict.note, note) if n), verdict.message,
                           verdict.waiting_until)
        ident = (env.name, key, entry.version, rollback)
        if ident not in self._seen:
            facts = self.port.entry_trust(raw, key, entry.version, self.desired.commit,
                                          approvals=not rollback)
            self._seen[ident] = judge(self.rules, facts, rollback)
        trust = self._seen[ident]
        if not trust.allowed and verdict.allowed:
            name = f"{key} v{entry.version}"
            trust = Verdict(False, trust.gates, message=f"{name} not promoted: {trust.message}",
                            waiting_until=trust.waiting_until)
        return combine(verdict, trust)
