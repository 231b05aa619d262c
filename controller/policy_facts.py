"""The shell around controller.policy: fetches the facts a promotion is judged on (git
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
from pathlib import Path
from typing import Any, Protocol

from controller import crossregistry
from controller.errors import GitOpsError, RegistryError
from controller.model import (
    DesiredState,
    Environment,
    LiveModel,
    LiveVersion,
    Snapshot,
    ownership_tag,
)
from controller.plan import Verdict
from controller.planner import GateCheck
from controller.policy import Assignment, FromFacts, PolicyFacts, RunFacts, evaluate, held_before
from controller.ports import RegistryPort

HISTORY_DEPTH = 200  # commits per environment file; older ones are not evidence any more

#: (sha, commit time in epoch seconds, the file's text at that commit or None if deleted)
Revision = tuple[str, float, "str | None"]


class HistoryProvider(Protocol):
    """What an environment file assigned to a model over its git history."""

    def assignments(self, file: str, model: str) -> Sequence[Assignment]:
        """Newest first; raises controller.errors.GitOpsError when git cannot be read."""
        ...


class FileHistory:
    """A HistoryProvider over any `revisions(file) -> [Revision]`, parsing each commit's
    file once with the same loader as the desired state."""

    def __init__(self, revisions: Callable[[str], Sequence[Revision]]):
        self._revisions = revisions
        self._parsed: dict[str, list[tuple[str, float, Environment | None]]] = {}

    def assignments(self, file: str, model: str) -> Sequence[Assignment]:
        if file not in self._parsed:
            from controller.desired import load_one

            self._parsed[file] = [(sha, at, load_one(file, text)[0] if text else None)
                                  for sha, at, text in self._revisions(file)]
        return [Assignment(sha, at, env.models[model].version
                           if env is not None and model in env.models else None)
                for sha, at, env in self._parsed[file]]


def local_history(rev: str = "HEAD", max_count: int = HISTORY_DEPTH,
                  root: Path | None = None) -> FileHistory:
    """History from the git work tree that holds the files: `file` is the path the desired
    state was loaded from (relative to `root` when given, e.g. a repository's paths)."""
    from controller.adapters.gitlocal import file_revisions

    return FileHistory(lambda file: file_revisions((root or Path()) / file, rev, max_count))


def gitsource_history(source: Any, rev: str | None = None,
                      max_count: int = HISTORY_DEPTH) -> FileHistory:
    """History from the controller's GitSource (`file_history`, `commit_time`): `file` is
    the path inside the repository, as the controller's desired state names it. When
    `file_history` can follow first parents only, it is asked to, so a merged pull request
    is dated by its merge (as `local_history` does)."""

    def revisions(file: str) -> list[Revision]:
        return [(r.sha, source.commit_time(r.sha).timestamp(), r.text)
                for r in source.file_history(file, max_count=max_count, rev=rev,
                                             first_parent=True)]

    return FileHistory(revisions)


def make_policy(history: Callable[[DesiredState], HistoryProvider | None] | None = None,
                clock: Callable[[], float] = time.time
                ) -> Callable[[DesiredState, Mapping[str, Snapshot], Mapping[str, RegistryPort]],
                              GateCheck | None]:
    """The reconciler's PolicyFactory: per pass, a gate check over that pass's facts."""
    def factory(desired: DesiredState, snapshots: Mapping[str, Snapshot],
                registries: Mapping[str, RegistryPort]) -> GateCheck | None:
        if not any(env.promotion for env in desired.environments):
            return None
        provider = history(desired) if history is not None else None
        return _Facts(desired, snapshots, registries, provider, clock()).check

    return factory


def local_policy() -> Any:
    """`plan` / `apply` on a folder: gates with the history of the folder's git work tree
    (none outside one: `from` then looks at the live and desired state only)."""
    return make_policy(lambda desired: local_history())


def diff_policy(repo: Path, base: str) -> Any:
    """`diff BASE HEAD --repo DIR`: history as BASE has it (what the pull request is merged
    into), with the desired state's file paths relative to the repository."""
    return make_policy(lambda desired: local_history(rev=base, root=repo))


def policy_for_source(source: Any) -> Any:
    """`run`: gates with the history of the controller's git source, at the commit being
    reconciled. A source without history (a test double) gets gates without history."""
    if not hasattr(source, "file_history"):
        return make_policy()
    return make_policy(lambda desired: gitsource_history(
        source, rev=desired.commit if desired.commit != "local" else None))


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
