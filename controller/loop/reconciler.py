"""One reconcile pass as phases that each take values and return a value:

    gather facts (loop.facts, loop.trustfacts: the only reads) → route across registries
    (pure) → copy (executor) → settle (pure) → plan (pure) → execute (executor: the only
    writer) → records (executor) → project and status (pure) → PassResult

The controller loop, `plan`, `apply` and `diff` all run this same pass; they differ only in
where the desired state comes from and whether writes happen."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from mlflow_gitops.core.facts import PassFacts
from mlflow_gitops.core.model import DesiredState, Snapshot
from mlflow_gitops.core.plan import ModelError, Plan
from mlflow_gitops.core.ports import LedgerSink, PolicyFactory, RegistryPort
from mlflow_gitops.loop.executor import (
    Applied,
    ApplyResult,
    ModelGuard,
    copy_versions,
    execute,
    write_records,
)
from mlflow_gitops.loop.facts import gather, read_runs
from mlflow_gitops.loop.routing import Copied, route, settle
from mlflow_gitops.loop.trustfacts import TrustReads, with_trust
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
    facts: PassFacts | None = None  # what the pass read before planning

    @property
    def errors(self) -> list[ModelError]:
        """Everything that did not converge: refused in the plan or failed while applying."""
        return self.applied.errors if self.applied is not None else list(self.plan.errors)

    @property
    def ok(self) -> bool:
        """Nothing failed: every entry converged, waits on time alone, or is held."""
        return not any(e.is_failure for e in self.errors) and not self.registry_errors

    @property
    def written(self) -> tuple[Applied, ...]:
        """Every change this pass wrote."""
        return tuple(self.applied.applied) if self.applied is not None else ()


def reconcile(
    desired: DesiredState,
    registries: Mapping[str, RegistryPort],
    previous: DesiredState | None = None,
    dry_run: bool = False,
    policy: PolicyFactory | None = None,
    may_write: Callable[[], bool] | None = None,
    records: bool = False,
    progress: Callable[[Applied], None] | None = None,
    clock: Callable[[], float] = time.time,
    ledger: LedgerSink | None = None,
    merged_by: str = "",
    guard: ModelGuard | None = None,
    trust: TrustReads | None = None,
) -> PassResult:
    """With `records` (the controller), the `self_heal: false` bookkeeping is the registry's
    own (planning.converged): the last applied state is read from the records in this pass's
    snapshot (`previous` is ignored) and each entry that converged is recorded after its
    writes. `progress` only shows each change as it lands; the result is returned. `guard`
    is held around each model's writes (mlflow_gitops.loop.gate: a drift check beside a
    newer commit leaves that commit's models alone). `trust` (the controller's trust at
    apply) adds the trust facts of the changes planning will judge to the pass's facts."""
    facts = gather(desired, registries, gates=policy is not None, clock=clock)
    if trust is not None:
        facts = with_trust(desired, previous, facts, trust, records)
    check = policy(desired, facts) if policy is not None else None
    routing = route(desired, None if records else previous, facts.snapshots, check,
                    copy=not dry_run)
    made, failed = copy_versions(routing.requests, registries, may_write, guard) \
        if not dry_run else ((), ())
    routed = settle(routing, made, failed)
    last_applied = converged.applied_state(routed.desired, routed.snapshots) if records \
        else routed.previous
    the_plan = _with_errors(plan(routed.desired, routed.snapshots, previous=last_applied,
                                 check=check), routed.errors)
    registry_errors = dict(facts.registry_errors)
    if dry_run:
        return PassResult(desired, routed.snapshots, the_plan, None, registry_errors,
                          tuple(environment_status(routed.desired, routed.snapshots, the_plan)),
                          routed.copies, facts)
    applied = execute(the_plan, registries, may_write=may_write, progress=progress,
                      guard=guard)
    if ledger is not None:
        _to_ledger(ledger, applied, routed.copies, routed.snapshots, merged_by)
    if records:
        writes = converged.record_writes(routed.desired, routed.snapshots, the_plan,
                                         (a.change for a in applied.applied), applied.errors)
        applied.failed.extend(write_records(writes, registries, may_write,
                                            skip=frozenset(applied.unreachable), guard=guard))
    registry_errors = {**registry_errors, **applied.unreachable}
    if not applied.applied and not routed.copies:
        return PassResult(desired, routed.snapshots, the_plan, applied, registry_errors,
                          tuple(environment_status(routed.desired, routed.snapshots, the_plan)),
                          routed.copies, facts)
    # Status must describe the registry after the writes, not before. Every write is known
    # exactly (copies included: settle put the created versions into its snapshots), so the
    # registry after the pass is projected, not read again.
    after = project(routed.snapshots, (a.change for a in applied.applied), the_plan.commit)
    remaining = plan(routed.desired, after, previous=routed.desired, check=None)
    status = environment_status(routed.desired, after, Plan(
        the_plan.commit, remaining.changes, tuple(applied.errors), remaining.drift))
    return PassResult(desired, after, the_plan, applied, registry_errors, tuple(status),
                      routed.copies, facts)


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


def merged(first: PassResult, full: PassResult) -> PassResult:
    """The full pass's result with the writes (changes and copies) of the commit-first pass
    that ran before it: one outcome for the pass, so everything written is counted once."""
    return replace(merged_writes(full, first.written), copies=(*first.copies, *full.copies))


def merged_writes(result: PassResult, written: Sequence[Applied]) -> PassResult:
    """`result` with `written` (changes another step of the same pass wrote) among its
    applied changes."""
    if not written:
        return result
    applied = result.applied or ApplyResult(plan=Plan(result.plan.commit))
    return replace(result, applied=ApplyResult(
        applied.plan, [*applied.applied, *written], list(applied.failed),
        dict(applied.unreachable)))


def collect_metrics(result: PassResult, registries: Mapping[str, RegistryPort],
                    the_plan: Plan | None = None) -> Metrics:
    """Source-run metrics of every promoted version and what it replaces, for side by side:
    the runs the pass already read are not read again."""
    the_plan = the_plan or result.plan
    snapshots = result.snapshots
    wanted: set[tuple[str, str, int]] = set()
    for change in the_plan.changes:
        if change.action in ("promote", "set_alias"):
            wanted.add((change.registry, change.model, change.version))
            wanted.update((change.registry, change.model, v)
                          for v in replaced_versions(the_plan, change))
    runs: dict[tuple[str, str, int], tuple[str, str]] = {}
    for registry, model, version in sorted(wanted):
        snapshot = snapshots.get(registry)
        live = snapshot.model(model) if snapshot is not None else None
        lv = live.versions.get(version) if live is not None else None
        if lv is not None and lv.run_id:
            runs[(registry, model, version)] = (registry, lv.run_id)
    read = read_runs(set(runs.values()), registries,
                     known=result.facts.runs if result.facts is not None else None)
    # metrics are evidence for reviewers, never a reason to fail a plan: unreadable is absent
    return {where: metrics for where, key in runs.items()
            if (metrics := read[key].metrics) is not None}


def _with_errors(the_plan: Plan, errors: tuple[ModelError, ...]) -> Plan:
    if not errors:
        return the_plan
    merged = sorted([*the_plan.errors, *errors],
                    key=lambda e: (e.registry, e.model or "", e.environment, e.kind))
    return replace(the_plan, errors=tuple(merged))
