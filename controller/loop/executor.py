"""The one module that writes to a registry. Everything a pass (or a command) changes in a
registry goes through a function here: a Plan's changes (`execute`, one write per change
plus its lineage tag and evidence), the copies across registries (`copy_versions`), the
`self_heal: false` records (`write_records`) and the tags of verification and of the
controls (`edit_tag`). Each takes values and returns what it did as values; nothing is
reported through callbacks (`progress` only lets a terminal show each change as it lands).

Apply a Plan through registry ports: one write per change plus its ownership tag.

A model is the unit of isolation: the first failed call stops that model's remaining
changes (never half-applied further) while every other model still converges. A registry
that stops answering (a transient error) is the exception: its remaining models are skipped
at once, reported as one error, instead of each paying the timeouts again. When `may_write`
says no (shutting down, lost the lease, too little lease left), nothing more is written.
A `guard` (mlflow_gitops.loop.gate) is entered around each model's writes (changes, copies,
records) and may say that a newer commit has taken the model over since the plan was made:
those writes are then left out (`superseded`), not failed; the pass that follows plans them
again."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from itertools import groupby

from mlflow_gitops.core.errors import RegistryError
from mlflow_gitops.core.model import LiveVersion
from mlflow_gitops.core.plan import Change, CopyRequest, ModelError, Plan, TagEdit
from mlflow_gitops.core.ports import RegistryPort
from mlflow_gitops.core.tags import ownership_tag
from mlflow_gitops.planning.converged import RecordWrite
from mlflow_gitops.policy import evidence

#: (registry, model) -> a context held around that model's writes; it yields False when the
#: model must not be written now (a newer commit took it over since this plan was made).
ModelGuard = Callable[[str, str], AbstractContextManager[bool]]


def _held(guard: ModelGuard | None, registry: str, model: str) -> AbstractContextManager[bool]:
    return guard(registry, model) if guard is not None else nullcontext(True)


@dataclass(frozen=True)
class Applied:
    change: Change
    commit: str
    seconds: float
    #: The controller's clock right after the write (made when the write returned).
    at: float = field(default_factory=time.time)


@dataclass
class ApplyResult:
    plan: Plan
    applied: list[Applied] = field(default_factory=list)
    failed: list[ModelError] = field(default_factory=list)
    #: Registries that stopped answering during the pass: name → the error.
    unreachable: dict[str, str] = field(default_factory=dict)
    #: Models left alone because a newer commit took them over: (registry, model).
    superseded: list[tuple[str, str]] = field(default_factory=list)

    @property
    def errors(self) -> list[ModelError]:
        """Everything that did not converge: refused in the plan or failed while applying."""
        return list(self.plan.errors) + self.failed

    @property
    def ok(self) -> bool:
        return not self.errors


def execute(
    plan: Plan,
    registries: Mapping[str, RegistryPort],
    may_write: Callable[[], bool] | None = None,
    progress: Callable[[Applied], None] | None = None,
    guard: ModelGuard | None = None,
) -> ApplyResult:
    """`may_write` is asked before every write (leader election: a replica that lost its lease
    must stop at once, not at the end of the pass); when it says no, nothing more is written.
    `progress` sees each change as it lands (a terminal's progress line); the result is the
    returned value. `guard` is held around each model's group of writes."""
    result = ApplyResult(plan=plan)
    for (registry_name, model), group in groupby(plan.changes,
                                                 key=lambda c: (c.registry, c.model)):
        if registry_name in result.unreachable:
            continue  # counted in the one error that stopped this registry
        with _held(guard, registry_name, model) as ok:
            if not ok:
                result.superseded.append((registry_name, model))
                continue
            if not _apply_model(plan, registries[registry_name], list(group), result,
                                may_write, progress):
                return result
    return result


def _apply_model(plan: Plan, registry: RegistryPort, group: list[Change],
                 result: ApplyResult, may_write: Callable[[], bool] | None,
                 progress: Callable[[Applied], None] | None) -> bool:
    """One model's changes in order; False when nothing more may be written at all."""
    changes = plan.changes
    for change in group:
        if may_write is not None and not may_write():
            left = len(changes) - len(result.applied)
            result.failed.append(ModelError(
                change.registry, change.environment, change.model, "apply",
                f"{change.describe()} not applied: this replica may not write now "
                f"(shutting down, or no longer the leader with time to spare); {left} "
                "changes left for the next reconcile", change.file, change.line))
            return False
        started = time.monotonic()
        try:
            _write(registry, change, plan.commit)
        except RegistryError as exc:
            result.failed.append(_failure(changes, change, exc, result))
            break
        done = Applied(change, plan.commit, time.monotonic() - started)
        result.applied.append(done)
        if progress is not None:
            progress(done)
    return True


def _failure(changes: tuple[Change, ...], change: Change, exc: RegistryError,
             result: ApplyResult) -> ModelError:
    """The error for a failed write; a transient one also marks the registry unreachable."""
    model = change.model
    if not exc.transient:
        return ModelError(change.registry, change.environment, model, "apply",
                          f"{change.describe()} failed: {exc}; remaining changes of {model} "
                          "skipped", change.file, change.line)
    result.unreachable[change.registry] = str(exc)
    rest = [c for c in changes[changes.index(change) + 1:]
            if c.registry == change.registry and c.model != model]
    others = len({c.model for c in rest})
    skipped = (f"; the remaining {len(rest)} changes of {others} other models in registry "
               f"'{change.registry}' are skipped this pass") if rest else ""
    return ModelError(change.registry, change.environment, model, "registry",
                      f"{change.describe()} failed: {exc}; registry '{change.registry}' "
                      f"stopped answering{skipped}", change.file,
                      change.line)


def _write(registry: RegistryPort, change: Change, commit: str) -> None:
    # The lineage tag goes first: if the change itself then fails, the next pass still sees
    # the difference and retries both; the other order could leave a change in place with
    # no tag, which no later plan would notice (prune and `status --model` rely on it).
    registry.set_version_tag(change.model, change.version, ownership_tag(change.environment),
                             commit)
    if change.action in ("promote", "archive", "unstage"):
        assert change.to_stage is not None
        registry.transition_stage(change.model, change.version, change.to_stage)
    elif change.action == "set_alias":
        assert change.alias is not None
        registry.set_alias(change.model, change.alias, change.version)
    else:
        assert change.alias is not None
        registry.delete_alias(change.model, change.alias)
    # The promotion policy's evidence goes last, once the change is in place: a record never
    # claims an apply that did not happen (a crash here loses evidence, never creates it).
    for tag in evidence.writes_for(change, commit, time.time()):
        registry.set_version_tag(tag.model, tag.version, tag.key, tag.value)


@dataclass(frozen=True)
class MadeCopy:
    """A copy across registries that was made: the request and the version it created."""

    request: CopyRequest
    made: LiveVersion


@dataclass(frozen=True)
class CopyFailed:
    request: CopyRequest
    error: str


def copy_versions(requests: Sequence[CopyRequest], registries: Mapping[str, RegistryPort],
                  may_write: Callable[[], bool] | None = None,
                  guard: ModelGuard | None = None
                  ) -> tuple[tuple[MadeCopy, ...], tuple[CopyFailed, ...]]:
    """Make each copy; a request `may_write` or `guard` refuses is neither made nor failed
    (the plan keeps its placeholder and the executor writes nothing else either)."""
    made: list[MadeCopy] = []
    failed: list[CopyFailed] = []
    for r in requests:
        if may_write is not None and not may_write():
            continue
        with _held(guard, r.registry, r.model) as ok:
            if not ok:
                continue  # a newer commit owns the destination model now
            try:
                version = registries[r.registry].copy_version(
                    registries[r.source_registry], r.source_model, r.source_version, r.model,
                    dict(r.tags))
            except RegistryError as exc:
                failed.append(CopyFailed(r, str(exc)))
                continue
        made.append(MadeCopy(r, version))
    return tuple(made), tuple(failed)


def write_records(writes: Sequence[RecordWrite], registries: Mapping[str, RegistryPort],
                  may_write: Callable[[], bool] | None = None,
                  skip: frozenset[str] = frozenset(),
                  guard: ModelGuard | None = None) -> list[ModelError]:
    """Write each `self_heal: false` record (mlflow_gitops.planning.converged) after the
    pass's changes; a failure is an error for its entry (the next pass writes it again: the
    entry still counts as changed and, being converged, changes nothing). A record the
    `guard` refuses is left to a later pass too: it would claim a state a newer commit
    may have changed."""
    errors: list[ModelError] = []
    dead = set(skip)
    for w in writes:
        if w.registry in dead or (may_write is not None and not may_write()):
            continue  # nothing lost: the entry is recorded by a later pass
        try:
            with _held(guard, w.registry, w.model) as ok:
                if ok:
                    edit_tag(registries[w.registry], TagEdit(w.model, w.key, w.value))
        except RegistryError as exc:
            if exc.transient:
                dead.add(w.registry)
            errors.append(ModelError(
                w.registry, w.environment, w.model, "apply",
                f"{w.model} converged in {w.environment}, but recording it failed: {exc}",
                w.file, w.line))
    return errors


def edit_tag(registry: RegistryPort, edit: TagEdit) -> None:
    """Set or delete one tag (a hold, a rejection, a record, a verification window); raises
    mlflow_gitops.core.errors.RegistryError as the registry does."""
    if edit.version is None:
        if edit.value is None:
            registry.delete_model_tag(edit.model, edit.key)
        else:
            registry.set_model_tag(edit.model, edit.key, edit.value)
    elif edit.value is None:
        registry.delete_version_tag(edit.model, edit.version, edit.key)
    else:
        registry.set_version_tag(edit.model, edit.version, edit.key, edit.value)
