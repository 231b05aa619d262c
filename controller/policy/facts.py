"""The shell around mlflow_gitops.policy.rules: gathers the evidence a promotion is judged on
(the controller's apply records and the live state, from the pass's snapshots; the source
run's metrics) and builds the reconciler's PolicyFactory.

Everything but run metrics comes from the snapshots the pass has already read, so judging a
pending promotion costs what a converged pass costs: no git history, no extra registry call.
Metrics are fetched lazily, only for versions the planner actually promotes, once per run
per pass. A fact that cannot be read never raises: it becomes the reason a gate fails, so a
broken registry blocks a promotion instead of letting it through. `plan`, `diff` and apply
all use this one factory over the same registry, so they give the same verdict."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace

from mlflow_gitops.core import tags
from mlflow_gitops.core.errors import RegistryError
from mlflow_gitops.core.model import (
    DesiredState,
    Environment,
    LiveModel,
    LiveVersion,
    Snapshot,
)
from mlflow_gitops.core.plan import Verdict
from mlflow_gitops.core.ports import GateCheck, PolicyFactory, RegistryPort
from mlflow_gitops.desired import crossregistry
from mlflow_gitops.policy import evidence, verify
from mlflow_gitops.policy.rules import FromFacts, PolicyFacts, RunFacts, evaluate

#: (registry, registered model, version): one model version, wherever it is looked at.
VersionId = tuple[str, str, int]


def make_policy(clock: Callable[[], float] = time.time) -> PolicyFactory:
    """The reconciler's PolicyFactory: per pass, a gate check over that pass's evidence."""
    def factory(desired: DesiredState, snapshots: Mapping[str, Snapshot],
                registries: Mapping[str, RegistryPort]) -> GateCheck | None:
        if not any(env.promotion for env in desired.environments):
            return None
        return _Facts(desired, snapshots, registries, clock()).check

    return factory


class _Facts:
    """One pass's facts, fetched on first use and cached."""

    def __init__(self, desired: DesiredState, snapshots: Mapping[str, Snapshot],
                 registries: Mapping[str, RegistryPort], now: float):
        self.by_name = desired.by_name()
        self.snapshots = snapshots
        self.registries = registries
        self.now = now
        self._runs: dict[tuple[str, str], RunFacts] = {}
        self._judging: set[str] = set()  # environments being judged (a `from` chain)
        self._keys: dict[str, dict[str, str]] = {}  # environment → registered name → key

    def check(self, env: Environment, model: str, version: int, live: LiveModel) -> Verdict:
        if env.promotion is None:
            return Verdict(True)  # no promotion policy here: nothing to judge
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
        if (registry, run_id) not in self._runs:
            try:
                port = self.registries[registry]
                facts = RunFacts(run_id, dict(port.run_metrics(run_id)))
            except KeyError:
                facts = RunFacts(run_id, None, f"registry '{registry}' is not configured")
            except RegistryError as exc:
                facts = RunFacts(run_id, None, f"{exc}")
            self._runs[(registry, run_id)] = facts
        return self._runs[(registry, run_id)]
