"""One reconcile pass as a list of phases: read live → plan → (gate) → execute → status.
The controller loop, `plan`, `apply` and `diff` all run this same pass; they differ only in
where the desired state comes from and whether writes happen."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from controller.errors import RegistryError
from controller.executor import Applied, ApplyResult, execute
from controller.model import DesiredState, Snapshot
from controller.plan import Plan
from controller.planner import GateCheck, plan
from controller.ports import RegistryPort
from controller.render import Metrics, replaced_versions
from controller.sync_status import ModelStatus, environment_status

#: Builds the policy's gate check from fetched facts (controller.policy); None = no gates.
PolicyFactory = Callable[[DesiredState, Mapping[str, Snapshot], Mapping[str, RegistryPort]],
                         GateCheck | None]


@dataclass
class PassResult:
    desired: DesiredState
    snapshots: dict[str, Snapshot]
    plan: Plan
    applied: ApplyResult | None = None
    registry_errors: dict[str, str] = field(default_factory=dict)
    status: list[ModelStatus] = field(default_factory=list)

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
    the_plan = plan(desired, snapshots, previous=previous, check=check)
    result = PassResult(desired, snapshots, the_plan, registry_errors=registry_errors)
    if not dry_run:
        result.applied = execute(the_plan, registries, on_applied=on_applied,
                                 may_write=may_write)
        if result.applied.applied:
            # Status must describe the registry after the writes, not before.
            fresh, fresh_errors = read_live(registries, desired.registries())
            snapshots.update(fresh)
            result.registry_errors.update(fresh_errors)
            after = plan(desired, snapshots, previous=desired, check=None)
            result.status = environment_status(
                desired, snapshots, Plan(the_plan.commit, after.changes,
                                         tuple(result.applied.errors), after.drift))
            return result
    result.status = environment_status(desired, snapshots, the_plan)
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
