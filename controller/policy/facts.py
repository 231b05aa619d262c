"""The promotion policy over one pass's facts (mlflow_gitops.core.facts): picks, from the
snapshots and the run metrics the facts phase read, the evidence each promotion is judged on
and hands it to mlflow_gitops.policy.rules. Pure: no port is called here.

`runs_needed` tells the facts phase which source runs' metrics to read: only those of
versions a metric gate may judge this pass (entries not yet live in their target), so a
converged pass reads none. A fact that could not be read never raises: it becomes the reason
a gate fails, so a broken registry blocks a promotion instead of letting it through. Each
(environment, model, version) is judged once per pass (routing and the planner ask the same
check). `plan`, `diff` and apply all use this one factory, so they give the same verdict."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from mlflow_gitops.core import tags
from mlflow_gitops.core.facts import PassFacts, RunKey
from mlflow_gitops.core.model import (
    DesiredState,
    Environment,
    LiveModel,
    LiveVersion,
    Snapshot,
)
from mlflow_gitops.core.plan import Verdict
from mlflow_gitops.core.ports import GateCheck, PolicyFactory
from mlflow_gitops.desired import crossregistry
from mlflow_gitops.policy import evidence, verify
from mlflow_gitops.policy.rules import FromFacts, PolicyFacts, RunFacts, evaluate

#: (registry, registered model, version): one model version, wherever it is looked at.
VersionId = tuple[str, str, int]


def make_policy(clock: Callable[[], float] | None = None) -> PolicyFactory:
    """The reconciler's PolicyFactory: per pass, a gate check over that pass's facts. The
    pass's clock (`facts.now`) is the time; `clock` replaces it (a fixed time for replays)."""
    def factory(desired: DesiredState, facts: PassFacts) -> GateCheck | None:
        if not any(env.promotion for env in desired.environments):
            return None
        return _Facts(desired, facts, clock() if clock is not None else facts.now).check

    return factory


def runs_needed(desired: DesiredState, snapshots: Mapping[str, Snapshot]) -> set[RunKey]:
    """The source runs whose metrics a metric gate may need this pass: for each entry of an
    environment with metric gates that is not yet live in its target, the run of the version
    (of its origin version, for one numbered in another registry)."""
    out: set[RunKey] = set()
    by_name = desired.by_name()
    for env in desired.environments:
        if env.promotion is None or not any(g.metric for g in env.promotion.gates):
            continue
        origin = crossregistry.origin(env, by_name)
        for key, entry in env.models.items():
            registry = origin.registry
            model = crossregistry.registered_name(origin, key) if origin is not env \
                else crossregistry.registered_name(env, key)
            snapshot = snapshots.get(registry)
            live = snapshot.model(model) if snapshot is not None else None
            lv = live.versions.get(entry.version) if live is not None else None
            if lv is None or not lv.run_id:
                continue
            if registry == env.registry and _serves(env, live, entry.version):
                continue  # converged: nothing to judge
            out.add((registry, lv.run_id))
    return out


def _serves(env: Environment, live: LiveModel | None, version: int) -> bool:
    if live is None:
        return False
    if env.target.kind == "stage":
        lv = live.versions.get(version)
        return lv is not None and lv.stage == env.target.value
    return live.aliases.get(env.target.value) == version


class _Facts:
    """One pass's facts as the gates see them; each verdict is worked out once."""

    def __init__(self, desired: DesiredState, facts: PassFacts, now: float):
        self.by_name = desired.by_name()
        self.snapshots = facts.snapshots
        self.runs = facts.runs
        self.now = now
        self._verdicts: dict[tuple[str, str, int, bool], Verdict] = {}
        self._judging: set[str] = set()  # environments being judged (a `from` chain)
        self._keys: dict[str, dict[str, str]] = {}  # environment → registered name → key

    def check(self, env: Environment, model: str, version: int, live: LiveModel) -> Verdict:
        if env.promotion is None:
            return Verdict(True)  # no promotion policy here: nothing to judge
        lv = live.versions.get(version)  # a placeholder and the copy made for it differ
        key = (env.name, model, version, lv is not None and tags.COPY_PENDING in lv.tags)
        if key not in self._verdicts:
            self._verdicts[key] = self._judge(env, model, version, live)
        return self._verdicts[key]

    def _judge(self, env: Environment, model: str, version: int, live: LiveModel) -> Verdict:
        raw = self.by_name.get(env.name, env)
        key = self._key(raw, model)
        lv = live.versions.get(version)
        origin = None
        if lv is not None and crossregistry.origin(raw, self.by_name).registry != raw.registry:
            origin = crossregistry.origin_of(lv)
        number = origin[2] if origin else version
        facts = PolicyFacts(
            now=self.now, version=number, served=evidence.read(lv, raw.name),
            label=key if key != model else "",
            copy_of=f"{origin[0]}/{origin[1]} v{origin[2]}" if origin else "",
            pending_copy=lv is not None and tags.COPY_PENDING in lv.tags)
        if facts.served is not None:  # a rollback: nothing else to fetch
            return evaluate(env, model, version, live, facts)
        origin_version = self._version(*origin) if origin else None
        self._judging.add(raw.name)
        try:
            source = self._from(raw, key, (raw.registry, model, version), origin, number)
        finally:
            self._judging.discard(raw.name)
        facts = replace(facts, run=self._run(raw, lv, origin, origin_version), source=source,
                        origin_tags=origin_version.tags if origin_version is not None else {})
        return evaluate(env, model, version, live, facts)

    def _key(self, raw: Environment, model: str) -> str:
        """The key `raw`'s file lists registered model `model` under (indexed once)."""
        if raw.name not in self._keys:
            self._keys[raw.name] = {e.registered_name or k: k for k, e in
                                    reversed(list(raw.models.items()))}
        return self._keys[raw.name].get(model, model)

    # -- each fact -------------------------------------------------------------------------

    def _from(self, raw: Environment, key: str, candidate: VersionId,
              origin: VersionId | None, number: int) -> FromFacts | None:
        """What the `from` environment's evidence says about this very version: the
        candidate itself where `from` is on its registry, else the version it was copied
        from (or another copy of that). Never another model that a file maps the same key
        to: evidence belongs to one model version."""
        name = raw.promotion.from_env if raw.promotion else None
        source = self.by_name.get(name or "")
        if source is None:
            return None
        facts = FromFacts(source.name, source.file, str(source.target), False, False)
        snapshot = self.snapshots.get(source.registry)
        if snapshot is None:
            return replace(facts, error=f"registry '{source.registry}' could not be read")
        found = self._in(snapshot, source, key, candidate, origin)
        entry = source.models.get(key)
        listed = entry is not None and entry.version == number and found is not None and \
            crossregistry.registered_name(source, key) == found[0]
        if found is None:
            return replace(facts, in_desired=listed)
        model, version = found
        live = snapshot.model(model)
        assert live is not None  # found in this snapshot
        lv = live.versions[version]
        if source.target.kind == "stage":
            holds = lv.stage == source.target.value
            since = lv.updated_ms / 1000 if holds and lv.updated_ms else None
        else:
            holds, since = live.aliases.get(source.target.value) == version, None
        stint = evidence.read(lv, source.name)
        progress = verify.parse(lv.tags, source.name)
        running = progress is not None and stint is not None and progress.outcome == \
            "running" and verify.belongs_to(progress, stint)
        facts = replace(facts, holds_now=holds, in_desired=listed, stint=stint,
                        live_since=since, verified_at=verify.is_verified(lv.tags, source.name),
                        verifying_until=progress.ends if running and progress else None)
        if listed and not holds and facts.stint is None and source.name not in self._judging:
            # Assigned there in this same change: would that environment take it this pass?
            facts = replace(facts, upstream=self.check(source, model, version, live))
        return facts

    @staticmethod
    def _in(snapshot: Snapshot, source: Environment, key: str, candidate: VersionId,
            origin: VersionId | None) -> tuple[str, int] | None:
        """(model, version) in the from-environment's registry that is the candidate."""
        if source.registry == candidate[0]:
            live = snapshot.model(candidate[1])
            return (candidate[1], candidate[2]) \
                if live is not None and candidate[2] in live.versions else None
        if origin is None:
            return None
        name = origin[1] if source.registry == origin[0] else \
            crossregistry.registered_name(source, key)
        found = crossregistry.locate(snapshot, name, *origin)
        return (name, found) if found is not None else None

    def _version(self, registry: str, model: str, number: int) -> LiveVersion | None:
        snapshot = self.snapshots.get(registry)
        live = snapshot.model(model) if snapshot is not None else None
        return live.versions.get(number) if live is not None else None

    def _run(self, raw: Environment, lv: LiveVersion | None,
             origin: VersionId | None, origin_version: LiveVersion | None) -> RunFacts:
        """The source run (of the origin version, for a copy), read only if a gate needs it."""
        registry = origin[0] if origin else raw.registry
        run_id = (origin_version.run_id if origin_version is not None
                  else (lv.run_id if lv is not None and not origin else None))
        needed = raw.promotion is not None and any(g.metric for g in raw.promotion.gates)
        if not run_id or not needed:
            return RunFacts(run_id)
        read = self.runs.get((registry, run_id))
        if read is None:  # the facts phase did not read it: fail closed, saying so
            return RunFacts(run_id, None, "its metrics were not read this pass")
        return RunFacts(run_id, read.metrics, read.error)
