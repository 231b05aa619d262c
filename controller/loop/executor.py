"""Apply a Plan through registry ports: one write per change plus its ownership tag.

A model is the unit of isolation: the first failed call stops that model's remaining
changes (never half-applied further) while every other model still converges. A registry
that stops answering (a transient error) is the exception: its remaining models are skipped
at once, reported as one error, instead of each paying the timeouts again. When `may_write`
says no (shutting down, lost the lease, too little lease left), nothing more is written."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import groupby

from mlflow_gitops.core.errors import RegistryError
from mlflow_gitops.core.plan import Change, ModelError, Plan
from mlflow_gitops.core.ports import RegistryPort
from mlflow_gitops.core.tags import ownership_tag
from mlflow_gitops.policy import evidence


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
    on_applied: Callable[[Applied], None] | None = None,
    may_write: Callable[[], bool] | None = None,
) -> ApplyResult:
    """`may_write` is asked before every write (leader election: a replica that lost its lease
    must stop at once, not at the end of the pass); when it says no, nothing more is written."""
    result = ApplyResult(plan=plan)
    changes = plan.changes
    for (registry_name, model), group in groupby(changes, key=lambda c: (c.registry, c.model)):
        if registry_name in result.unreachable:
            continue  # counted in the one error that stopped this registry
        registry = registries[registry_name]
        for change in group:
            if may_write is not None and not may_write():
                left = len(changes) - len(result.applied)
                result.failed.append(ModelError(
                    registry_name, change.environment, model, "apply",
                    f"{change.describe()} not applied: this replica may not write now "
                    f"(shutting down, or no longer the leader with time to spare); {left} "
                    "changes left for the next reconcile", change.file, change.line))
                return result
            started = time.monotonic()
            try:
                _write(registry, change, plan.commit)
            except RegistryError as exc:
                result.failed.append(_failure(changes, change, exc, result))
                break
            done = Applied(change, plan.commit, time.monotonic() - started)
            result.applied.append(done)
            if on_applied is not None:
                on_applied(done)
    return result


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
