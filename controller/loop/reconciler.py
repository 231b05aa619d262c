"""One reconcile pass as a list of phases: read live → plan → (gate) → execute → status.
The controller loop, `plan`, `apply` and `diff` all run this same pass; they differ only in
where the desired state comes from and whether writes happen."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from mlflow_gitops.core.errors import RegistryError
from mlflow_gitops.core.model import DesiredState, Environment, LiveVersion, Snapshot
from mlflow_gitops.core.plan import ModelError, Plan
from mlflow_gitops.core.ports import GateCheck, PolicyFactory, RegistryPort
from mlflow_gitops.desired import crossregistry
from mlflow_gitops.loop.executor import Applied, ApplyResult, execute
from mlflow_gitops.planning.planner import plan
from mlflow_gitops.planning.projection import project
from mlflow_gitops.planning.render import Metrics, replaced_versions
from mlflow_gitops.planning.status import ModelStatus, environment_status


@dataclass
class PassResult:
    desired: DesiredState
    snapshots: dict[str, Snapshot]
    plan: Plan
    applied: ApplyResult | None = None
    registry_errors: dict[str, str] = field(default_factory=dict)
    status: list[ModelStatus] = field(default_factory=list)
    copies: list[Copied] = field(default_factory=list)  # versions copied across registries

    @property
    def ok(self) -> bool:
        errors = self.applied.errors if self.applied is not None else list(self.plan.errors)
        return not errors and not self.registry_errors


def read_live(registries: Mapping[str, RegistryPort], names: tuple[str, ...]
              ) -> tuple[dict[str, Snapshot], dict[str, str]]:
    """Snapshot each registry; an unreachable one is an error for its models only."""
    snapshots: dict[str, Snapshot] = {}
    errors: dict[str, str] = {}
    for name in names:
        try:
            snapshots[name] = registries[name].snapshot()
        except RegistryError as exc:
            errors[name] = str(exc)
    return snapshots, errors


def reconcile(
    desired: DesiredState,
    registries: Mapping[str, RegistryPort],
    previous: DesiredState | None = None,
    dry_run: bool = False,
    policy: PolicyFactory | None = None,
    on_applied: Callable[[Applied], None] | None = None,
    may_write: Callable[[], bool] | None = None,
) -> PassResult:
    snapshots, registry_errors = read_live(registries, desired.registries())
    check = policy(desired, snapshots, registries) if policy is not None else None
    routed = route_across_registries(desired, previous, snapshots, registries, check,
                                     copy=not dry_run, may_write=may_write)
    the_plan = _with_errors(plan(routed.desired, snapshots, previous=routed.previous,
                                 check=check), routed.errors)
    result = PassResult(desired, snapshots, the_plan, registry_errors=registry_errors,
                        copies=routed.copies)
    if not dry_run:
        result.applied = execute(the_plan, registries, on_applied=on_applied,
                                 may_write=may_write)
        if result.applied.applied or routed.copies:
            # Status must describe the registry after the writes, not before. Our own writes
            # are known exactly; only a copy (a new version numbered by the registry) needs
            # the registry read again.
            if routed.copies:
                fresh, fresh_errors = read_live(registries, desired.registries())
                snapshots.update(fresh)
                result.registry_errors.update(fresh_errors)
            else:
                snapshots.update(project(snapshots, (a.change for a in result.applied.applied),
                                         the_plan.commit))
            now = route_across_registries(desired, None, snapshots, registries, None,
                                          copy=False).desired
            after = plan(now, snapshots, previous=now, check=None)
            result.status = environment_status(
                now, snapshots, Plan(the_plan.commit, after.changes,
                                     tuple(result.applied.errors), after.drift))
            return result
    result.status = environment_status(routed.desired, snapshots, the_plan)
    return result


def collect_metrics(the_plan: Plan, snapshots: Mapping[str, Snapshot],
                    registries: Mapping[str, RegistryPort]) -> Metrics:
    """Source-run metrics of every promoted version and what it replaces, for side by side."""
    wanted: set[tuple[str, str, int]] = set()
    for change in the_plan.changes:
        if change.action in ("promote", "set_alias"):
            wanted.add((change.registry, change.model, change.version))
            wanted.update((change.registry, change.model, v)
                          for v in replaced_versions(the_plan, change))
    out: dict[tuple[str, str, int], Mapping[str, float]] = {}
    for registry, model, version in sorted(wanted):
        snapshot = snapshots.get(registry)
        live = snapshot.model(model) if snapshot is not None else None
        lv = live.versions.get(version) if live is not None else None
        if lv is None or not lv.run_id:
            continue
        try:
            out[(registry, model, version)] = registries[registry].run_metrics(lv.run_id)
        except RegistryError:
            continue  # metrics are evidence for reviewers, never a reason to fail a plan
    return out


# -- promotion across registries: find or make the copies, then plan in registry terms ----

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


@dataclass
class Routed:
    desired: DesiredState  # each entry under its registry's model name and version number
    previous: DesiredState | None
    errors: list[ModelError] = field(default_factory=list)
    copies: list[Copied] = field(default_factory=list)


def route_across_registries(desired: DesiredState, previous: DesiredState | None,
                            snapshots: dict[str, Snapshot],
                            registries: Mapping[str, RegistryPort], check: GateCheck | None,
                            copy: bool, may_write: Callable[[], bool] | None = None) -> Routed:
    """Resolve entries whose numbers belong to another registry (desired.crossregistry)
    to the copies in their own registry. A missing copy becomes a placeholder version in
    `snapshots` (so plan shows and gates it) and, with `copy`, a real copy once the gates
    pass. Entries that cannot be resolved are reported here and left out of the plan."""
    out = Routed(desired, previous)
    versions: dict[tuple[str, str], int] = {}
    dropped: set[tuple[str, str]] = set()
    by_name = desired.by_name()
    for route in crossregistry.routes(desired):
        env, where = by_name[route.environment], (route.environment, route.key)
        dest = snapshots.get(route.registry)
        if dest is None:
            continue  # the planner reports the unreadable registry for every model in it
        found = crossregistry.locate(dest, route.model, route.origin_registry,
                                     route.origin_model, route.file_version)
        if found is not None:
            versions[where] = found
            continue
        source = _copy_source(route, env, snapshots, out.errors)
        if source is None:
            dropped.add(where)
            continue
        source_version, number = source
        pending = crossregistry.placeholder(dest, route, source_version)
        snapshots[route.registry] = crossregistry.with_version(dest, pending)
        versions[where] = pending.version
        live = snapshots[route.registry].model(route.model)
        if not copy or (check is not None and env.promotion is not None and live is not None
                        and not check(env, route.model, pending.version, live).allowed):
            continue  # plan shows the placeholder; a refusal comes from the planner's check
        if may_write is not None and not may_write():
            continue  # not the leader any more: the executor writes nothing either
        tags = {k: v for k, v in pending.tags.items() if k != crossregistry.PENDING_TAG}
        try:
            made = registries[route.registry].copy_version(
                registries[route.copy_from or ""], route.copy_from_model or route.key, number,
                route.model, tags)
        except RegistryError as exc:
            snapshots[route.registry] = dest
            versions.pop(where)
            dropped.add(where)
            out.errors.append(ModelError(
                route.registry, env.name, route.model, "apply",
                f"copying {route.key} v{route.file_version} from registry '{route.copy_from}' "
                f"to '{route.registry}' failed: {exc}; retrying next reconcile",
                env.file, env.model_line(route.key)))
            continue
        snapshots[route.registry] = crossregistry.with_version(dest, made)
        versions[where] = made.version
        out.copies.append(Copied(env.name, route.registry, route.model, made.version,
                                 route.copy_from or "", route.copy_from_model or route.key,
                                 number))
    out.desired = crossregistry.resolve(desired, versions, frozenset(dropped))
    if previous is not None:
        out.previous = _resolve_previous(previous, snapshots)
    return out


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
            f"so {number} cannot be copied to '{route.registry}'; retrying next reconcile",
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


def _with_errors(the_plan: Plan, errors: list[ModelError]) -> Plan:
    if not errors:
        return the_plan
    merged = sorted([*the_plan.errors, *errors],
                    key=lambda e: (e.registry, e.model or "", e.environment, e.kind))
    return replace(the_plan, errors=tuple(merged))
