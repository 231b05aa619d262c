"""The `self_heal: false` bookkeeping: which desired state was last applied. After a restart
or a failover it is not in memory, so it is read back from the lineage tags; after each pass
it moves forward for every entry that converged."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from mlflow_gitops.core.errors import GitOpsError
from mlflow_gitops.core.model import DesiredState, frozen_map, ownership_tag
from mlflow_gitops.core.ports import RegistryPort
from mlflow_gitops.desired.loader import load_texts
from mlflow_gitops.loop.reconciler import read_live

log = logging.getLogger("mlflow_gitops.controller")


class Source(Protocol):
    """The git source the controller follows (mlflow_gitops.adapters.git.source.GitSource)."""

    def fetch(self) -> str: ...

    def read_environment_files(self, sha: str) -> dict[str, str]: ...

    def commit_time(self, sha: str) -> datetime: ...


def resume_applied(source: Source, registries: Mapping[str, RegistryPort],
                   desired: DesiredState, known_registries: list[str] | None
                   ) -> DesiredState | None:
    """After a restart or a failover the last applied state is not in memory; without it
    `self_heal: false` would count every entry as changed and revert manual changes once.
    It is the newest commit recorded in those environments' lineage tags, read back from
    git. Best effort: with nothing to go on (None), the first pass treats entries as
    changed."""
    tags = {ownership_tag(e.name) for e in desired.environments if not e.sync.self_heal}
    if not tags:
        return None
    snapshots, _ = read_live(registries, desired)
    shas = {value for snapshot in snapshots.values() for model in snapshot.models.values()
            for live in model.versions.values() for key, value in live.tags.items()
            if key in tags}
    newest: tuple[datetime, str] | None = None
    for sha in shas:
        try:
            when = source.commit_time(sha)
        except GitOpsError:
            continue  # not a commit of this branch (e.g. "local" from a manual apply)
        if newest is None or when > newest[0]:
            newest = (when, sha)
    if newest is None:
        return None
    state, _ = load_texts(source.read_environment_files(newest[1]), commit=newest[1],
                          known_registries=known_registries)
    if state is not None:
        log.info("resumed from commit %s: entries unchanged since then are not re-applied "
                 "where self_heal is false", newest[1][:12],
                 extra={"fields": {"commit": newest[1]}})
    return state


def advance(applied: DesiredState | None, desired: DesiredState,
            failed: set[tuple[str, str | None]]) -> DesiredState:
    """The new "last applied" state for `self_heal: false`: every entry of `desired` except
    those that did not converge, which keep their old value so the next pass retries them
    as changed. A failure elsewhere must not make other entries count as changed forever."""
    before = applied.by_name() if applied is not None else {}
    envs = []
    for env in desired.environments:
        old = before.get(env.name)
        if (env.name, None) in failed:
            if old is not None:
                envs.append(old)
            continue
        models = dict(env.models)
        for model in env.models:
            if (env.name, model) in failed:
                if old is not None and model in old.models:
                    models[model] = old.models[model]
                else:
                    del models[model]
        envs.append(replace(env, models=frozen_map(models)))
    return DesiredState(tuple(envs), desired.commit)
