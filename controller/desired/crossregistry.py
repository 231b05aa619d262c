"""Promotion across registries, the pure part: which entries need a copy, how a copy is
recognised (its lineage tags), and the desired state rewritten in each registry's own names
and version numbers so the planner never needs to know about copies.

Version numbers in a file are read in the registry of the first environment of its
`promotion.from` chain (its origin): `production.yaml` on registry `prod`, promoted from
`staging` on `default`, says `fraud-detector: 4` meaning v4 of `default`, the number the
reviewer also sees in `staging.yaml`. The copy of v4 in `prod` (whatever number `prod` gave
it) carries `gitops.source.registry/model/version` = default/fraud-detector/4 and is found by
those tags, so a version is copied once and a rollback finds its earlier copy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from mlflow_gitops.core import tags
from mlflow_gitops.core.model import (
    DesiredState,
    Environment,
    LiveModel,
    LiveVersion,
    ModelEntry,
    Snapshot,
    frozen_map,
)


@dataclass(frozen=True)
class Route:
    """One entry of an environment whose file numbers live in another registry."""

    environment: str
    key: str  # the model as the file writes it
    file_version: int
    registry: str  # the environment's registry
    model: str  # the registered model there (`model_name:` or the key)
    origin_registry: str
    origin_model: str
    copy_from: str | None  # the `from` environment's registry when it is another one
    copy_from_model: str | None


def origin(env: Environment, by_name: Mapping[str, Environment]) -> Environment:
    """The first environment of `env`'s `from` chain (validation has ruled out cycles)."""
    seen = {env.name}
    while env.promotion and env.promotion.from_env and env.promotion.from_env in by_name:
        nxt = by_name[env.promotion.from_env]
        if nxt.name in seen:
            break
        seen.add(nxt.name)
        env = nxt
    return env


def registered_name(env: Environment | None, key: str) -> str:
    entry = env.models.get(key) if env is not None else None
    return entry.registered_name if entry is not None and entry.registered_name else key


def routes(desired: DesiredState) -> list[Route]:
    by_name = desired.by_name()
    out = []
    for env in desired.environments:
        root = origin(env, by_name)
        if root.registry == env.registry:
            continue
        source = by_name.get(env.promotion.from_env or "") if env.promotion else None
        crossing = source is not None and source.registry != env.registry
        for key, entry in env.models.items():
            out.append(Route(env.name, key, entry.version, env.registry,
                             registered_name(env, key), root.registry,
                             registered_name(root, key),
                             source.registry if crossing and source else None,
                             registered_name(source, key) if crossing else None))
    return out


def lineage(route: Route) -> dict[str, str]:
    return {tags.SOURCE_REGISTRY: route.origin_registry, tags.SOURCE_MODEL: route.origin_model,
            tags.SOURCE_VERSION: str(route.file_version)}


def is_copy_of(version: LiveVersion, registry: str, model: str, number: int) -> bool:
    have = version.tags
    return (have.get(tags.SOURCE_REGISTRY) == registry and have.get(tags.SOURCE_MODEL) == model
            and have.get(tags.SOURCE_VERSION) == str(number))


def locate(snapshot: Snapshot, model: str, origin_registry: str, origin_model: str,
           number: int) -> int | None:
    """Version `number` of the origin registry as it exists in `snapshot`: itself when the
    snapshot is the origin registry, else its oldest copy (found by the lineage tags)."""
    live = snapshot.model(model)
    if live is None:
        return None
    if snapshot.registry == origin_registry:
        return number if number in live.versions and model == origin_model else None
    copies = [v for v, lv in live.versions.items()
              if is_copy_of(lv, origin_registry, origin_model, number)]
    return min(copies) if copies else None


def origin_of(version: LiveVersion) -> tuple[str, str, int] | None:
    """(registry, model, version) a copy was made from, by its lineage tags."""
    have = version.tags
    try:
        return (have[tags.SOURCE_REGISTRY], have[tags.SOURCE_MODEL],
                int(have[tags.SOURCE_VERSION]))
    except (KeyError, ValueError):
        return None


def copied_tags(source_tags: Mapping[str, str]) -> dict[str, str]:
    """The tags a copy inherits: all but ownership (per registry), older lineage and the
    promotion policy's apply records (mlflow_gitops.policy.evidence: evidence of what the
    controller did to the source version, not to the copy)."""
    return {k: v for k, v in source_tags.items()
            if not k.startswith(tags.NOT_INHERITED_BY_COPIES)}


def placeholder(snapshot: Snapshot, route: Route, source: LiveVersion) -> LiveVersion:
    """Stands for the copy apply will make, so plan shows (and gates) it like any version."""
    live = snapshot.model(route.model)
    number = max(live.versions, default=0) + 1 if live is not None else 1
    inherited = {**copied_tags(source.tags), **lineage(route), tags.COPY_PENDING: "true"}
    if tags.COPY_REJECTED in source.tags:  # rejected through another copy: so is this one
        inherited[tags.COPY_REJECTED] = source.tags[tags.COPY_REJECTED]
    return LiveVersion(route.model, number, status=source.status, run_id=source.run_id,
                       source=source.source, tags=frozen_map(inherited))


def with_version(snapshot: Snapshot, version: LiveVersion, drop: int | None = None) -> Snapshot:
    """`snapshot` with `version` added (and version `drop` removed)."""
    live = snapshot.model(version.model) or LiveModel(version.model)
    versions = {v: lv for v, lv in live.versions.items() if v != drop}
    versions[version.version] = version
    models = dict(snapshot.models)
    models[version.model] = replace(live, versions=frozen_map(versions))
    return replace(snapshot, models=frozen_map(models))


def without_version(snapshot: Snapshot, model: str, version: int) -> Snapshot:
    """`snapshot` without a placeholder `version` of `model` (a model it alone stood in for,
    with nothing else on it, goes too)."""
    live = snapshot.model(model)
    if live is None:
        return snapshot
    versions = {v: lv for v, lv in live.versions.items() if v != version}
    models = dict(snapshot.models)
    if versions or live.tags or live.aliases:
        models[model] = replace(live, versions=frozen_map(versions))
    else:
        models.pop(model, None)
    return replace(snapshot, models=frozen_map(models))


def resolve(desired: DesiredState, versions: Mapping[tuple[str, str], int],
            dropped: frozenset[tuple[str, str]] = frozenset()) -> DesiredState:
    """Each entry under its registered name (`model_name:`) with its registry's version:
    `versions[(environment, key)]` where a route resolved it. Entries in `dropped` (reported
    elsewhere) and unresolved routed entries are left out, and their environment does not
    prune this pass: a model that is merely unresolved must not look removed from the file."""
    routed = {(r.environment, r.key) for r in routes(desired)}
    environments = []
    for env in desired.environments:
        models: dict[str, ModelEntry] = {}
        for key, entry in env.models.items():
            where = (env.name, key)
            if where in dropped or (where in routed and where not in versions):
                continue
            number = versions.get(where, entry.version)
            models[registered_name(env, key)] = ModelEntry(number, entry.line, kind=entry.kind)
        sync = env.sync if len(models) == len(env.models) else replace(env.sync, prune=False)
        environments.append(replace(env, models=frozen_map(models), sync=sync))
    return replace(desired, environments=tuple(environments))
