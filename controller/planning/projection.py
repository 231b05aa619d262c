"""What the registry looks like after a set of applied changes, computed instead of read
again: status after an apply must describe the registry after the writes, and every write
we made is known exactly (tag included), so a second bulk read would only cost time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from mlflow_gitops.core.model import LiveModel, Snapshot, frozen_map
from mlflow_gitops.core.plan import Change
from mlflow_gitops.core.tags import ownership_tag


def project(snapshots: Mapping[str, Snapshot], changes: Iterable[Change],
            commit: str) -> dict[str, Snapshot]:
    out = dict(snapshots)
    for change in changes:
        snapshot = out[change.registry]
        model = snapshot.model(change.model) or LiveModel(change.model)
        versions = dict(model.versions)
        aliases = dict(model.aliases)
        live = versions.get(change.version)
        if live is not None:
            tags = {**live.tags, ownership_tag(change.environment): commit}
            stage = change.to_stage if change.to_stage is not None else live.stage
            versions[change.version] = replace(live, stage=stage, tags=frozen_map(tags))
        if change.action == "set_alias" and change.alias is not None:
            aliases[change.alias] = change.version
        elif change.action == "delete_alias" and change.alias is not None:
            aliases.pop(change.alias, None)
        models = {**snapshot.models, change.model: LiveModel(
            change.model, frozen_map(versions), frozen_map(aliases), model.tags)}
        out[change.registry] = replace(snapshot, models=frozen_map(models))
    return out
