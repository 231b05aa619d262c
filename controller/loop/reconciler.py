"""One reconcile pass as a list of phases: read live → route across registries → plan →
execute → status. Each phase takes values and returns a value. The controller loop, `plan`,
`apply` and `diff` all run this same pass; they differ only in where the desired state comes
from and whether writes happen."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from mlflow_gitops.core.errors import RegistryError
from mlflow_gitops.core.model import DesiredState, Snapshot
from mlflow_gitops.core.plan import ModelError, Plan
from mlflow_gitops.core.ports import LedgerSink, PolicyFactory, RegistryPort
from mlflow_gitops.desired.managed import read_sets
from mlflow_gitops.loop.executor import Applied, ApplyResult, execute
from mlflow_gitops.loop.records import write_records
from mlflow_gitops.loop.routing import Copied, route_across_registries
from mlflow_gitops.planning import converged
from mlflow_gitops.planning.ledger_entries import copy_entry, entries_for
from mlflow_gitops.planning.planner import plan
from mlflow_gitops.planning.projection import project
from mlflow_gitops.planning.render import Metrics, replaced_versions
from mlflow_gitops.planning.status import ModelStatus, environment_status


@dataclass(frozen=True)
class PassResult:
    """What one pass saw, planned, did and left: the value every caller renders from."""

    desired: DesiredState
    snapshots: Mapping[str, Snapshot]  # the registry as it is after the pass's writes
    plan: Plan
    applied: ApplyResult | None = None  # None: a dry run
    registry_errors: Mapping[str, str] = field(default_factory=dict)
    status: tuple[ModelStatus, ...] = ()
    copies: tuple[Copied, ...] = ()  # versions copied across registries

    @property
    def errors(self) -> list[ModelError]:
        """Everything that did not converge: refused in the plan or failed while applying."""
        return self.applied.errors if self.applied is not None else list(self.plan.errors)

    @property
    def ok(self) -> bool:
        """Nothing failed: every entry converged, waits on time alone, or is held."""
        return not any(e.is_failure for e in self.errors) and not self.registry_errors


def read_live(registries: Mapping[str, RegistryPort], desired: DesiredState
              ) -> tuple[dict[str, Snapshot], dict[str, str]]:
    """Snapshot what `desired` manages in each registry (desired.managed: the listed models
    and what prune needs, never the whole registry); an unreachable registry is an error
    for its models only."""
    snapshots: dict[str, Snapshot] = {}
    errors: dict[str, str] = {}
    for name, reads in read_sets(desired).items():
        try:
            snapshots[name] = registries[name].snapshot(reads.names, reads.owned_by)
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
    records: bool = False,
    ledger: LedgerSink | None = None,
    merged_by: str = "",
) -> PassResult:
    """With `records` (the controller), the `self_heal: false` bookkeeping is the registry's
    own (planning.converged): the last applied state is read from the records in this pass's
    snapshot (`previous` is ignored) and each entry that converged is recorded after its
    writes."""
    live, registry_errors = read_live(registries, desired)
    check = policy(desired, live, registries) if policy is not None else None
    routed = route_across_registries(desired, None if records else previous, live, registries,
                                     check, copy=not dry_run, may_write=may_write)
    last_applied = converged.applied_state(routed.desired, routed.snapshots) if records \
        else routed.previous
    the_plan = _with_errors(plan(routed.desired, routed.snapshots, previous=last_applied,
                                 check=check), routed.errors)
    if dry_run:
        return PassResult(desired, routed.snapshots, the_plan, None, registry_errors,
                          tuple(environment_status(routed.desired, routed.snapshots, the_plan)),
                          routed.copies)
    applied = execute(the_plan, registries, on_applied=on_applied, may_write=may_write)
    if ledger is not None:
        _to_ledger(ledger, applied, routed.copies, routed.snapshots, merged_by)
    if records:
        writes = converged.record_writes(routed.desired, routed.snapshots, the_plan,
                                         (a.change for a in applied.applied), applied.errors)
        applied.failed.extend(write_records(writes, registries, may_write,
                                           skip=frozenset(applied.unreachable)))
    registry_errors = {**registry_errors, **applied.unreachable}
    if not applied.applied and not routed.copies:
        return PassResult(desired, routed.snapshots, the_plan, applied, registry_errors,
                          tuple(environment_status(routed.desired, routed.snapshots, the_plan)),
                          routed.copies)
    # Status must describe the registry after the writes, not before. Every write is known
    # exactly (copies included: routing put the created versions into its snapshots), so the
    # registry after the pass is projected, not read again.
    after = project(routed.snapshots, (a.change for a in applied.applied), the_plan.commit)
    remaining = plan(routed.desired, after, previous=routed.desired, check=None)
    status = environment_status(routed.desired, after, Plan(
        the_plan.commit, remaining.changes, tuple(applied.errors), remaining.drift))
    return PassResult(desired, after, the_plan, applied, registry_errors, tuple(status),
                      routed.copies)


def _to_ledger(ledger: LedgerSink, applied: ApplyResult, copies: tuple[Copied, ...],
               snapshots: Mapping[str, Snapshot], merged_by: str) -> None:
    """One ledger entry per change written (and per version copied), after the writes."""
    commit = applied.plan.commit
    entries = [copy_entry(c.environment, c.registry, c.model, c.version,
                          f"{c.source_registry}/{c.source_model} v{c.source_version}", commit,
                          c.at, merged_by) for c in copies]
    entries += entries_for(((a.change, a.at) for a in applied.applied), commit, snapshots,
                           merged_by)
    if entries:
        ledger.record(entries)


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


def _with_errors(the_plan: Plan, errors: tuple[ModelError, ...]) -> Plan:
    if not errors:
        return the_plan
    merged = sorted([*the_plan.errors, *errors],
                    key=lambda e: (e.registry, e.model or "", e.environment, e.kind))
    return replace(the_plan, errors=tuple(merged))
