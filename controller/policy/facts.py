"""The shell around mlflow_gitops.policy.rules: fetches the facts a promotion is judged on (git
history of the environment files, the live `from` environment, the source run's metrics)
and builds the reconciler's PolicyFactory.

Facts are fetched lazily, only for versions the planner actually promotes, and cached for
the pass: one history walk per environment file, one metrics read per run. A fact that
cannot be read never raises: it becomes the reason a gate fails (or, for history, the
absence of evidence), so a broken remote blocks a promotion instead of letting it through."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from mlflow_gitops.core.errors import GitOpsError, RegistryError
from mlflow_gitops.core.model import (
    DesiredState,
    Environment,
    LiveModel,
    LiveVersion,
    Snapshot,
    ownership_tag,
)
from mlflow_gitops.core.plan import Verdict
from mlflow_gitops.core.ports import GateCheck, PolicyFactory, RegistryPort
from mlflow_gitops.desired import crossregistry, history
from mlflow_gitops.desired.history import Revision
from mlflow_gitops.policy.rules import (
    Assignment,
    FromFacts,
    PolicyFacts,
    RunFacts,
    evaluate,
    held_before,
)

HISTORY_DEPTH = 200  # commits per environment file; older ones are not evidence any more


class HistoryProvider(Protocol):
    """What an environment file assigned to a model over its git history."""

    def assignments(self, file: str, model: str) -> Sequence[Assignment]:
        """Newest first; raises mlflow_gitops.core.errors.GitOpsError when git cannot be read."""
        ...


class FileHistory:
    """A HistoryProvider over any `revisions(file) -> [Revision]` (newest first), read with
    the one history reader (mlflow_gitops.desired.history), each file's history once."""

    def __init__(self, revisions: Callable[[str], Sequence[Revision]]):
        self._revisions = revisions
        self._read: dict[str, Sequence[Revision]] = {}

    def assignments(self, file: str, model: str) -> Sequence[Assignment]:
        if file not in self._read:
            self._read[file] = self._revisions(file)
        return [Assignment(row.revision.sha, row.revision.when.timestamp(), row.version)
                for row in history.assigned(self._read[file], file, model)]


#: Builds a pass's history provider from its desired state (None: no git history).
HistorySource = Callable[[DesiredState], "HistoryProvider | None"]


def make_policy(history_of: HistorySource | None = None,
                clock: Callable[[], float] = time.time) -> PolicyFactory:
    """The reconciler's PolicyFactory: per pass, a gate check over that pass's facts."""
    def factory(desired: DesiredState, snapshots: Mapping[str, Snapshot],
                registries: Mapping[str, RegistryPort]) -> GateCheck | None:
        if not any(env.promotion for env in desired.environments):
            return None
        provider = history_of(desired) if history_of is not None else None
        return _Facts(desired, snapshots, registries, provider, clock()).check

    return factory


class _Facts:
    """One pass's facts, fetched on first use and cached."""

    def __init__(self, desired: DesiredState, snapshots: Mapping[str, Snapshot],
                 registries: Mapping[str, RegistryPort], history: HistoryProvider | None,
                 now: float):
        self.by_name = desired.by_name()
        self.snapshots = snapshots
        self.registries = registries
        self.history = history
        self.now = now
        self._files: dict[tuple[str, str], tuple[tuple[Assignment, ...], str]] = {}
        self._runs: dict[tuple[str, str], RunFacts] = {}

    def check(self, env: Environment, model: str, version: int, live: LiveModel) -> Verdict:
        raw = self.by_name.get(env.name, env)
        key = next((k for k, e in raw.models.items() if (e.registered_name or k) == model),
                   model)
        lv = live.versions.get(version)
        origin = None
        if lv is not None and crossregistry.origin(raw, self.by_name).registry != raw.registry:
            origin = crossregistry.origin_of(lv)
        number = origin[2] if origin else version
        own, _ = self._assignments(raw.file, key)
        facts = PolicyFacts(
            now=self.now, version=number, own_history=own, label=key if key != model else "",
            copy_of=f"{origin[0]}/{origin[1]} v{origin[2]}" if origin else "",
            pending_copy=lv is not None and crossregistry.PENDING_TAG in lv.tags)
        owned = lv is not None and ownership_tag(raw.name) in lv.tags
        if held_before(raw.name, number, own, owned):  # a rollback: nothing else to fetch
            return evaluate(env, model, version, live, facts)
        origin_version = self._version(*origin) if origin else None
        facts = replace(facts, run=self._run(raw, lv, origin, origin_version),
                        source=self._from(raw, key, number),
                        origin_tags=origin_version.tags if origin_version is not None else {})
        return evaluate(env, model, version, live, facts)

    # -- each fact -------------------------------------------------------------------------

    def _assignments(self, file: str, key: str) -> tuple[tuple[Assignment, ...], str]:
        if self.history is None:
            return (), ""
        if (file, key) not in self._files:
            try:
                found: tuple[tuple[Assignment, ...], str] = (
                    tuple(self.history.assignments(file, key)), "")
            except GitOpsError as exc:
                found = (), str(exc)
            self._files[(file, key)] = found
        return self._files[(file, key)]

    def _from(self, raw: Environment, key: str, number: int) -> FromFacts | None:
        name = raw.promotion.from_env if raw.promotion else None
        source = self.by_name.get(name or "")
        if source is None:
            return None
        history, error = self._assignments(source.file, key)
        snapshot = self.snapshots.get(source.registry)
        model = crossregistry.registered_name(source, key)
        root = crossregistry.origin(source, self.by_name)
        found = crossregistry.locate(snapshot, model, root.registry,
                                     crossregistry.registered_name(root, key), number) \
            if snapshot is not None else None
        if snapshot is None:
            error = f"registry '{source.registry}' could not be read"
        holds, since = False, None
        live = snapshot.model(model) if snapshot is not None else None
        if found is not None and live is not None:
            lv = live.versions[found]
            if source.target.kind == "stage":
                holds = lv.stage == source.target.value
                since = lv.updated_ms / 1000 if holds and lv.updated_ms else None
            else:
                holds = live.aliases.get(source.target.value) == found
        entry = source.models.get(key)
        return FromFacts(source.name, source.file, str(source.target), holds,
                         entry is not None and entry.version == number, history, since, error)

    def _version(self, registry: str, model: str, number: int) -> LiveVersion | None:
        snapshot = self.snapshots.get(registry)
        live = snapshot.model(model) if snapshot is not None else None
        return live.versions.get(number) if live is not None else None

    def _run(self, raw: Environment, lv: LiveVersion | None,
             origin: tuple[str, str, int] | None, origin_version: LiveVersion | None
             ) -> RunFacts:
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
                facts = RunFacts(run_id, None, f"{exc}; retrying next reconcile")
            self._runs[(registry, run_id)] = facts
        return self._runs[(registry, run_id)]
