"""Per environment and model: desired, live and its state: the one place where a
pass's outcome becomes `Synced`, `OutOfSync`, `Waiting`, `Held`, `Refused` or `Error`.
`status`, `/status`, the controller's logs, metrics, commit statuses and notifications all
read these rows; none of them decides a state on its own."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from mlflow_gitops.core.model import DesiredState, Environment, LiveModel, Snapshot
from mlflow_gitops.core.plan import ModelError, Plan
from mlflow_gitops.core.states import State, state_of
from mlflow_gitops.core.tags import OWNERSHIP_PREFIX


@dataclass(frozen=True)
class ModelStatus:
    environment: str
    registry: str
    target: str
    model: str
    desired: int | None
    live: tuple[int, ...]
    sync: State  # the state; named `sync` in /status and `status -o json`
    message: str
    file: str
    line: int
    until: float | None = None  # Waiting: when it expects to proceed; Verifying: the window's end
    next_check: float | None = None  # Verifying: when the next measurement is due, epoch s
    kind: str = "model"  # "model" or "prompt" (an entry of `prompts:`)
    #: Live differs from git and `self_heal: false` leaves it (OutOfSync, reported only).
    drift: bool = False

    def __post_init__(self) -> None:
        known = State.parse(self.sync)  # a word given as str → its State
        if known is not None:
            object.__setattr__(self, "sync", known)

    @property
    def state(self) -> State:
        return self.sync

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "live": list(self.live)}


@dataclass(frozen=True)
class VersionStatus:
    """One version of one model, with who put it where (from the ownership tags)."""

    version: int
    stage: str
    aliases: tuple[str, ...]
    status: str
    run_id: str | None
    environments: tuple[tuple[str, str], ...]  # (environment, commit) from gitops.env.* tags
    serving_in: tuple[str, ...]  # environments of the desired state that this version holds

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "aliases": list(self.aliases),
                "environments": [{"environment": e, "commit": c} for e, c in self.environments],
                "serving_in": list(self.serving_in)}


def live_of(env: Environment, model: LiveModel | None) -> tuple[int, ...]:
    if model is None:
        return ()
    if env.target.kind == "stage":
        return model.in_stage(env.target.value)
    version = model.aliases.get(env.target.value)
    return (version,) if version is not None else ()


def environment_status(
    desired: DesiredState, snapshots: Mapping[str, Snapshot], plan: Plan
) -> list[ModelStatus]:
    errors = {(e.environment, e.model): e for e in plan.errors}
    pending = {(c.environment, c.model) for c in plan.changes}
    rows: list[ModelStatus] = []
    for env in desired.environments:
        snapshot = snapshots.get(env.registry)
        env_error = errors.get((env.name, None))
        models = set(env.models) | {m for (e, m) in pending if e == env.name}
        if not env.models and snapshot is not None:  # an empty file, a version still live
            models |= {name for name, m in snapshot.models.items() if live_of(env, m)}
        if snapshot is not None:  # promoted onward, still live here: shown as moving
            models |= {m for other in desired.environments for m in other.models
                       if m not in env.models and _moving_to(
                           desired, env, m, live_of(env, snapshot.model(m)), errors, pending)}
        for model in sorted(models):
            entry = env.models.get(model)
            live = live_of(env, snapshot.model(model) if snapshot else None)
            error = errors.get((env.name, model)) or env_error
            want = (entry.version,) if entry else ()
            until, drift = None, False
            if error is not None:
                state = state_of(error)
                message = str(error)
                until = error.until if state == State.Waiting else None
            elif live == want and (env.name, model) not in pending:
                state, message = State.Synced, ""
            elif entry is None and (env.name, model) not in pending and (
                    moving := _moving_to(desired, env, model, live, errors, pending)):
                # promoted onward in the same commit: it stays live here until the next
                # environment takes it (a version holds one stage), which is no drift
                target, error = moving
                state, until = State.Waiting, error.until if error is not None else None
                message = (f"v{', v'.join(map(str, live))} stays in {env.name} until "
                           f"{target.name} takes it (moving to {target.name}"
                           + (f"; {target.name} is {state_of(error)}: {error.message})"
                              if error is not None else ": applied in this pass)"))
            elif entry is None and (env.name, model) not in pending:
                state = State.OutOfSync
                message = (f"live but not listed in {env.file} (sync.prune: false leaves it; "
                           "list it, or set prune: true to remove it)")
            elif (env.name, model) in pending:
                state = State.OutOfSync
                message = "pending: " + "; ".join(
                    c.describe() for c in plan.changes
                    if c.environment == env.name and c.model == model)
            else:
                state, drift = State.OutOfSync, True
                message = "drift not applied (self_heal: false)"
            found = snapshot.model(model) if snapshot else None
            kind = entry.kind if entry else (found.kind if found else "model")
            rows.append(ModelStatus(env.name, env.registry, str(env.target), model,
                                    entry.version if entry else None, live, state, message,
                                    env.file, entry.line if entry else env.line, until,
                                    drift=drift, kind=kind))
    return rows


def _moving_to(desired: DesiredState, env: Environment, model: str, live: tuple[int, ...],
               errors: Mapping[tuple[str, str | None], ModelError],
               pending: set[tuple[str, str]]) -> tuple[Environment, ModelError | None] | None:
    """The environment promoting from `env` that wants the version `env` still serves but no
    longer lists, while that promotion is pending or waiting (not refused), with its error."""
    for other in desired.environments:
        entry = other.models.get(model)
        if (other.promotion is None or other.promotion.from_env != env.name
                or other.registry != env.registry or entry is None
                or entry.version not in live):
            continue
        error = errors.get((other.name, model))
        if (other.name, model) in pending or (error is not None and not error.is_failure):
            return other, error
    return None


def model_versions(model: LiveModel, desired: DesiredState | None = None) -> list[VersionStatus]:
    prefix = OWNERSHIP_PREFIX
    rows = []
    for version in sorted(model.versions, reverse=True):
        lv = model.versions[version]
        tagged = tuple(sorted((k[len(prefix):], v) for k, v in lv.tags.items()
                              if k.startswith(prefix)))
        serving = tuple(sorted(
            env.name for env in (desired.environments if desired else ())
            if version in live_of(env, model)
        ))
        rows.append(VersionStatus(version, lv.stage, model.aliases_of(version), lv.status,
                                  lv.run_id, tagged, serving))
    return rows


Key = tuple[str, str]  # (environment, model)


def entered(before: Mapping[Key, State], rows: Sequence[ModelStatus]) -> list[ModelStatus]:
    """The rows whose state is new since `before`: what to log or notify once, not on every
    pass. A first sight of `Synced` is no news; a return to it after anything else is."""
    return [row for row in rows
            if before.get((row.environment, row.model), State.Synced) != row.sync]


def states_by_key(rows: Iterable[ModelStatus]) -> dict[Key, State]:
    return {(row.environment, row.model): row.sync for row in rows}


def next_until(rows: Iterable[ModelStatus]) -> float | None:
    """When the loop must look again by itself (epoch seconds), or None: the first `Waiting`
    entry expects to proceed, or a `Verifying` entry's next measurement is due."""
    times = [row.until for row in rows if row.sync == State.Waiting and row.until is not None]
    times += [row.next_check for row in rows
              if row.sync == State.Verifying and row.next_check is not None]
    return min(times, default=None)
