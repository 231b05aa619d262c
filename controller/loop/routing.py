"""Promotion across registries as a phase of the pass: entries whose version numbers belong
to another registry are resolved to the copies in their own registry, and missing copies are
made once the policy lets them through. It takes values and returns a `Routed` value: the
caller's snapshots are never changed."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mlflow_gitops.core import tags
from mlflow_gitops.core.errors import RegistryError
from mlflow_gitops.core.model import DesiredState, Environment, LiveVersion, Snapshot
from mlflow_gitops.core.plan import ModelError
from mlflow_gitops.core.ports import GateCheck, RegistryPort
from mlflow_gitops.desired import crossregistry
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


def route_across_registries(desired: DesiredState, previous: DesiredState | None,
                            snapshots: Mapping[str, Snapshot],
                            registries: Mapping[str, RegistryPort], check: GateCheck | None,
                            copy: bool, may_write: Callable[[], bool] | None = None) -> Routed:
    """Resolve entries whose numbers belong to another registry (desired.crossregistry)
    to the copies in their own registry. A missing copy becomes a placeholder version in the
    returned snapshots (so plan shows and gates it) and, with `copy`, a real copy once the
    gates pass. Entries that cannot be resolved are reported and left out of the plan."""
    live = dict(snapshots)
    errors: list[ModelError] = []
    copies: list[Copied] = []
    versions: dict[tuple[str, str], int] = {}
    dropped: set[tuple[str, str]] = set()
    by_name = desired.by_name()
    for route in crossregistry.routes(desired):
        env, where = by_name[route.environment], (route.environment, route.key)
        dest = live.get(route.registry)
        if dest is None:
            continue  # the planner reports the unreadable registry for every model in it
        found = crossregistry.locate(dest, route.model, route.origin_registry,
                                     route.origin_model, route.file_version)
        if found is not None:
            versions[where] = found
            continue
        source = _copy_source(route, env, live, errors)
        if source is None:
            dropped.add(where)
            continue
        source_version, number = source
        pending = crossregistry.placeholder(dest, route, source_version)
        live[route.registry] = crossregistry.with_version(dest, pending)
        versions[where] = pending.version
        model = live[route.registry].model(route.model)
        if (model is not None and controls.hold_of(model, env.name) is not None) \
                or controls.is_rejected(pending) is not None:
            continue  # held or rejected: no write at all; the planner reports why
        if not copy or (check is not None and env.promotion is not None and model is not None
                        and not check(env, route.model, pending.version, model).allowed):
            continue  # plan shows the placeholder; a refusal comes from the planner's check
        if may_write is not None and not may_write():
            continue  # not the leader any more: the executor writes nothing either
        inherited = {k: v for k, v in pending.tags.items() if k != tags.COPY_PENDING}
        try:
            made = registries[route.registry].copy_version(
                registries[route.copy_from or ""], route.copy_from_model or route.key, number,
                route.model, inherited)
        except RegistryError as exc:
            live[route.registry] = dest
            versions.pop(where)
            dropped.add(where)
            errors.append(ModelError(
                route.registry, env.name, route.model, "apply",
                f"copying {route.key} v{route.file_version} from registry '{route.copy_from}' "
                f"to '{route.registry}' failed: {exc}",
                env.file, env.model_line(route.key)))
            continue
        live[route.registry] = crossregistry.with_version(dest, made)
        versions[where] = made.version
        copies.append(Copied(env.name, route.registry, route.model, made.version,
                             route.copy_from or "", route.copy_from_model or route.key, number))
    return Routed(
        desired=crossregistry.resolve(desired, versions, frozenset(dropped)),
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
