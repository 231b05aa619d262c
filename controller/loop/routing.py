"""Promotion across registries as two pure steps around the executor's copies: `route`
resolves entries whose version numbers belong to another registry to the copies in their
own registry, standing a placeholder version in for each missing copy (so plan shows and
gates it) and asking for the copies the policy lets through (`CopyRequest` values);
`settle` puts what the executor made (mlflow_gitops.loop.executor.copy_versions) in place of
the placeholders. Neither writes nor changes the caller's snapshots."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mlflow_gitops.core import tags
from mlflow_gitops.core.model import DesiredState, Environment, LiveVersion, Snapshot
from mlflow_gitops.core.plan import CopyRequest, ModelError
from mlflow_gitops.core.ports import GateCheck
from mlflow_gitops.desired import crossregistry
from mlflow_gitops.loop.executor import CopyFailed, MadeCopy
from mlflow_gitops.policy import controls


@dataclass(frozen=True)
class Copied:
    """A version this pass copied into another registry before assigning it."""

    environment: str
    registry: str
    model: str
    version: int
    source_registry: str
    source_model: str
    source_version: int
    at: float = field(default_factory=time.time)  # the controller's clock when it was made


@dataclass(frozen=True)
class Routed:
    """The desired state in each registry's own names and numbers, and the live state that
    goes with it (placeholders for copies still to make, copies made this pass)."""

    desired: DesiredState
    previous: DesiredState | None
    snapshots: Mapping[str, Snapshot]
    errors: tuple[ModelError, ...] = ()
    copies: tuple[Copied, ...] = ()


@dataclass(frozen=True)
class Routing:
    """`route`'s answer: the live state with placeholders, the copies to make, and what
    `settle` needs to finish once they are made."""

    desired: DesiredState
    previous: DesiredState | None
    snapshots: Mapping[str, Snapshot]
    versions: Mapping[tuple[str, str], int]
    dropped: frozenset[tuple[str, str]]
    errors: tuple[ModelError, ...] = ()
    requests: tuple[CopyRequest, ...] = field(default=())


def route(desired: DesiredState, previous: DesiredState | None,
          snapshots: Mapping[str, Snapshot], check: GateCheck | None,
          copy: bool) -> Routing:
    """Resolve entries whose numbers belong to another registry (desired.crossregistry)
    to the copies in their own registry. A missing copy becomes a placeholder version in the
    returned snapshots and, with `copy`, a request to copy it once the gates pass. Entries
    that cannot be resolved are reported and left out of the plan."""
    live = dict(snapshots)
    errors: list[ModelError] = []
    requests: list[CopyRequest] = []
    versions: dict[tuple[str, str], int] = {}
    dropped: set[tuple[str, str]] = set()
    by_name = desired.by_name()
    for r in crossregistry.routes(desired):
        env, where = by_name[r.environment], (r.environment, r.key)
        dest = live.get(r.registry)
        if dest is None:
            continue  # the planner reports the unreadable registry for every model in it
        found = crossregistry.locate(dest, r.model, r.origin_registry, r.origin_model,
                                     r.file_version)
        if found is not None:
            versions[where] = found
            continue
        source = _copy_source(r, env, live, errors)
        if source is None:
            dropped.add(where)
            continue
        source_version, number = source
        pending = crossregistry.placeholder(dest, r, source_version)
        live[r.registry] = crossregistry.with_version(dest, pending)
        versions[where] = pending.version
        model = live[r.registry].model(r.model)
        if (model is not None and controls.hold_of(model, env.name) is not None) \
                or controls.is_rejected(pending) is not None:
            continue  # held or rejected: no write at all; the planner reports why
        if not copy or (check is not None and env.promotion is not None and model is not None
                        and not check(env, r.model, pending.version, model).allowed):
            continue  # plan shows the placeholder; a refusal comes from the planner's check
        inherited = tuple(sorted((k, v) for k, v in pending.tags.items()
                                 if k != tags.COPY_PENDING))
        requests.append(CopyRequest(env.name, r.registry, r.model, r.key, pending.version,
                                    r.copy_from or "", r.copy_from_model or r.key, number,
                                    inherited, env.file, env.model_line(r.key),
                                    r.file_version))
    return Routing(desired, previous, live, versions, frozenset(dropped), tuple(errors),
                   tuple(requests))


def settle(routing: Routing, made: Sequence[MadeCopy] = (),
           failed: Sequence[CopyFailed] = ()) -> Routed:
    """The routed desired state once the executor made (or failed) the requested copies:
    each made copy replaces its placeholder; a failed one drops its entry, with the error."""
    live = dict(routing.snapshots)
    versions = dict(routing.versions)
    dropped = set(routing.dropped)
    errors = list(routing.errors)
    copies: list[Copied] = []
    for f in failed:
        r = f.request
        live[r.registry] = crossregistry.without_version(live[r.registry], r.model,
                                                         r.placeholder)
        versions.pop((r.environment, r.key), None)
        dropped.add((r.environment, r.key))
        errors.append(ModelError(
            r.registry, r.environment, r.model, "apply",
            f"copying {r.key} v{r.file_version} from registry '{r.source_registry}' "
            f"to '{r.registry}' failed: {f.error}", r.file, r.line))
    for m in made:
        r = m.request
        live[r.registry] = crossregistry.with_version(live[r.registry], m.made,
                                                      drop=r.placeholder)
        versions[(r.environment, r.key)] = m.made.version
        copies.append(Copied(r.environment, r.registry, r.model, m.made.version,
                             r.source_registry, r.source_model, r.source_version))
    previous = routing.previous
    return Routed(
        desired=crossregistry.resolve(routing.desired, versions, frozenset(dropped)),
        previous=_resolve_previous(previous, live) if previous is not None else None,
        snapshots=live, errors=tuple(errors), copies=tuple(copies))


def _copy_source(route: crossregistry.Route, env: Environment,
                 snapshots: Mapping[str, Snapshot], errors: list[ModelError]
                 ) -> tuple[LiveVersion, int] | None:
    """The version to copy from the `from` environment's registry, or None (reported)."""
    from_env = env.promotion.from_env if env.promotion else None
    at = (env.file, env.model_line(route.key))
    number = f"{route.key} v{route.file_version}"
    if route.copy_from is None:
        errors.append(ModelError(
            route.registry, env.name, route.model, "missing_version",
            f"{number} (a version of registry '{route.origin_registry}') has no copy in "
            f"registry '{route.registry}' yet: it is copied there when environment "
            f"'{from_env}' promotes it; promote it there first", *at))
        return None
    snapshot = snapshots.get(route.copy_from)
    if snapshot is None:
        errors.append(ModelError(
            route.registry, env.name, route.model, "registry",
            f"registry '{route.copy_from}' (of environment '{from_env}') could not be read, "
            f"so {number} cannot be copied to '{route.registry}'",
            *at))
        return None
    model = route.copy_from_model or route.key
    found = crossregistry.locate(snapshot, model, route.origin_registry, route.origin_model,
                                 route.file_version)
    live = snapshot.model(model)
    if found is None or live is None:
        errors.append(ModelError(
            route.registry, env.name, route.model, "missing_version",
            f"{number} does not exist in registry '{route.copy_from}' (of environment "
            f"'{from_env}'), so it cannot be copied to '{route.registry}'; version numbers "
            f"in {env.file} are those of registry '{route.origin_registry}'", *at))
        return None
    return live.versions[found], found


def _resolve_previous(previous: DesiredState, snapshots: Mapping[str, Snapshot]
                      ) -> DesiredState:
    versions = {}
    for route in crossregistry.routes(previous):
        snapshot = snapshots.get(route.registry)
        found = snapshot and crossregistry.locate(snapshot, route.model, route.origin_registry,
                                                  route.origin_model, route.file_version)
        if found:
            versions[(route.environment, route.key)] = found
    return crossregistry.resolve(previous, versions)
