"""Verification after apply as one step of a controller pass, after the pass's writes: for
each entry of an environment with `verify:` that the controller applied, take the
measurement that is due, move the window on (mlflow_gitops.policy.verify, pure), and act on
its outcome at once:

- failed with `on_failure: rollback`: hold the entry (`gitops.hold.<env>`, by
  "mlflow-gitops verification", reason = the failing measurement), then return the
  registry to the version the promotion replaced through the executor (the one writer);
  `RolledBack`. With `on_failure: hold`: the hold only; `Held`.
- ran out: `verified` evidence on the version (the controller's clock), or unverified when
  no measurement was conclusive (the source was down): said, never a pass.

Every write asks `may_write` first (only the leader with time left on its lease writes),
and the window's progress is written before anything acts on it, so a kill at any point
resumes where the registry says. A held entry (a person's hold or ours) is never measured,
never rolled back and never released here."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from mlflow_gitops.core.errors import RegistryError
from mlflow_gitops.core.ledger import Entry
from mlflow_gitops.core.model import Environment, LiveModel, Snapshot
from mlflow_gitops.core.plan import Plan, TagEdit
from mlflow_gitops.core.ports import LedgerSink, RegistryPort, VerificationPort
from mlflow_gitops.core.states import State
from mlflow_gitops.core.tags import hold_tag, left_tag, verified_tag, verify_tag
from mlflow_gitops.loop.executor import Applied, ModelGuard, edit_tag, execute
from mlflow_gitops.loop.reconciler import PassResult
from mlflow_gitops.planning.ledger_entries import entries_for
from mlflow_gitops.planning.status import ModelStatus
from mlflow_gitops.policy import controls, evidence
from mlflow_gitops.policy import verify as window

log = logging.getLogger("mlflow_gitops.controller")

EventKind = Literal["verified", "unverified", "rolled_back", "held"]
#: What an automatic hold's reason says when the registry was (or is being) rolled back.
ROLLED_BACK = "; rolled back to v"


@dataclass(frozen=True)
class Event:
    """An outcome people hear about once (the registry write that records it happens once)."""

    kind: EventKind
    environment: str
    model: str
    version: int
    commit: str
    message: str


@dataclass
class Outcome:
    rows: tuple[ModelStatus, ...]
    events: list[Event] = field(default_factory=list)
    applied: list[Applied] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


#: Called after an automatic rollback: (environment, model, bad version, good version, why).
RollbackHook = Callable[[Environment, str, int, int, str], None]


class Verifier:
    """Runs the verification step of each pass for one controller."""

    def __init__(self, sources: VerificationPort, clock: Callable[[], float] = time.time,
                 on_rollback: RollbackHook | None = None,
                 ledger: LedgerSink | None = None) -> None:
        self.sources = sources
        self.clock = clock
        self.on_rollback = on_rollback
        #: Where the outcomes (verified, verify_failed) and the rollback's changes are
        #: recorded, after their writes.
        self.ledger = ledger
        self._guard: ModelGuard | None = None  # the step in flight's (see `step`)

    def _record(self, env: Environment, model: str, version: int, action: str,
                progress: window.Progress, detail: str) -> None:
        if self.ledger is None:
            return
        self.ledger.record([Entry(env.registry, env.name, model, action,  # type: ignore[arg-type]
                                  version, version, version, progress.commit, "",
                                  int(self.clock() * 1000), "verification", detail=detail)])

    def step(self, result: PassResult, registries: Mapping[str, RegistryPort],
             may_write: Callable[[], bool], guard: ModelGuard | None = None) -> Outcome:
        """`guard`: held around a rollback's writes, as around the pass's (a model a newer
        commit took over since the pass read it is not rolled back from that read)."""
        self._guard = guard
        envs = result.desired.by_name()
        out = Outcome(rows=())
        rows: list[ModelStatus] = []
        fresh = _reread(result, envs, registries)
        for row in result.status:
            env = envs.get(row.environment)
            snapshot = result.snapshots.get(row.registry)
            live = fresh.get((row.registry, row.model)) or (
                snapshot.model(row.model) if snapshot is not None else None)
            if env is None or env.verify is None or live is None or \
                    row.registry in result.registry_errors:
                rows.append(row)
                continue
            try:
                rows.append(self._entry(env, row, live, registries, may_write, out))
            except RegistryError as exc:
                out.errors.append(f"{env.name}/{row.model}: verification could not write: {exc}")
                rows.append(row)
        out.rows = tuple(rows)
        return out

    def _entry(self, env: Environment, row: ModelStatus, live: LiveModel,
               registries: Mapping[str, RegistryPort], may_write: Callable[[], bool],
               out: Outcome) -> ModelStatus:
        assert env.verify is not None
        hold = controls.hold_of(live, env.name)
        if hold is not None and hold.by == window.HOLD_AUTHOR:
            return self._ours(env, row, live, hold, registries, may_write, out)
        if row.sync != "Synced" or row.desired is None or hold is not None:
            return row
        version = live.versions.get(row.desired)
        stint = evidence.read(version, env.name)
        if version is None or stint is None:
            return row
        now = self.clock()
        progress = window.parse(version.tags, env.name)
        if progress is not None and progress.outcome == "skipped" and \
                progress.started - 1 <= stint.entered <= progress.ends + 1:
            return row  # restored by an automatic rollback: never verified again
        registry = registries[env.registry]
        if not window.belongs_to(progress, stint):
            if now >= stint.entered + env.verify.duration_seconds:
                return row  # applied before verification looked, and its window is over
            left = {v: at for v, lv in live.versions.items()
                    if (at := _left(lv.tags, env.name)) is not None}
            progress = window.start(stint, env.verify,
                                    window.replaced_version(left, stint.entered, version.version))
            if not self._write(registry, row.model, version.version, env.name, progress,
                               may_write):
                return row
        assert progress is not None
        if progress.outcome in ("verified", "unverified") and not row.message:
            return replace(row, message=window.outcome_message(progress))
        if progress.outcome != "running":
            return row
        if window.due(progress, now):
            values = {"model": row.model, "version": str(version.version),
                      "environment": env.name}
            measured = [window.judge(check, *self.sources.measure(check, values))
                        for check in env.verify.checks]
            progress = window.advance(progress, measured, env.verify, self.clock())
            if not self._write(registry, row.model, version.version, env.name, progress,
                               may_write):
                return row
            if progress.outcome == "failed":
                log.warning("%s/%s v%d failed verification: %s", env.name, row.model,
                            version.version, progress.failure,
                            extra={"fields": {"environment": env.name, "model": row.model,
                                              "version": version.version}})
                return self._failed(env, row, live, progress, registries, may_write, out)
        if window.ended(progress, now):
            return self._finish(env, row, version.version, progress, registry, may_write, out)
        return replace(row, sync=State.Verifying, until=progress.ends, next_check=progress.next_at,
                       message=window.verifying_message(progress))

    def _finish(self, env: Environment, row: ModelStatus, version: int,
                progress: window.Progress, registry: RegistryPort,
                may_write: Callable[[], bool], out: Outcome) -> ModelStatus:
        done = window.finish(progress, self.clock())
        if done.outcome == "verified":
            if not may_write():
                return row
            edit_tag(registry, TagEdit(row.model, verified_tag(env.name),
                                       window.verified_record(done, self.clock()), version))
        if not self._write(registry, row.model, version, env.name, done, may_write):
            return row
        if done.outcome == "verified":
            self._record(env, row.model, version, "verified", done, done.summary())
            text = f"{env.name}/{row.model} v{version} verified: {done.summary()}"
        else:
            text = (f"{env.name}/{row.model} v{version} unverified: no conclusive measurement "
                    f"in its window ({done.summary()}; last: {done.last})")
        log.info(text, extra={"fields": {"environment": env.name, "model": row.model,
                                         "version": version, "outcome": done.outcome}})
        out.events.append(Event(done.outcome if done.outcome == "verified" else "unverified",
                                env.name, row.model, version, done.commit, text))
        return replace(row, message=window.outcome_message(done))

    def _failed(self, env: Environment, row: ModelStatus, live: LiveModel,
                progress: window.Progress, registries: Mapping[str, RegistryPort],
                may_write: Callable[[], bool], out: Outcome) -> ModelStatus:
        """Hold first (so no pass re-applies the failed version), then roll back."""
        assert env.verify is not None
        rollback = env.verify.on_failure == "rollback" and progress.replaced is not None
        reason = window.failure_reason(progress, "rollback" if rollback else "hold")
        if not may_write():
            return row
        self._record(env, row.model, row.desired or 0,
                     "verify_failed", progress, progress.failure)
        control = controls.make_control(window.HOLD_AUTHOR, reason, self.clock())
        edit_tag(registries[env.registry], TagEdit(row.model, hold_tag(env.name),
                                                   control.to_json()))
        held = replace(live, tags={**live.tags, hold_tag(env.name): control.to_json()})
        return self._ours(env, row, held, control, registries, may_write, out,
                          fresh=progress)

    def _ours(self, env: Environment, row: ModelStatus, live: LiveModel,
              hold: controls.Control, registries: Mapping[str, RegistryPort],
              may_write: Callable[[], bool], out: Outcome,
              fresh: window.Progress | None = None) -> ModelStatus:
        """An entry our own hold stops: `RolledBack` (finishing a rollback that a kill
        interrupted) until a person releases it, or `Held` for `on_failure: hold`. `fresh`:
        the window that failed in this very pass (the snapshot predates its record)."""
        if ROLLED_BACK not in hold.reason:
            if fresh is not None:
                out.events.append(Event("held", env.name, row.model, row.desired or 0,
                                        fresh.commit, f"{env.name}/{row.model}: {hold.reason}"))
            return replace(row, sync=State.Held, message=controls.held_message(
                row.model, env.name, hold))
        message = (f"{hold.reason}; merge a commit that sets the version back (the revert "
                   f"pull request), then `mlflow-gitops release {row.model} --env {env.name}`")
        bad = live.versions.get(row.desired) if row.desired is not None else None
        progress = fresh or (window.parse(bad.tags, env.name) if bad is not None else None)
        if bad is None or progress is None or progress.outcome != "failed" or \
                progress.replaced is None or bad.version not in row.live:
            return replace(row, sync=State.RolledBack, message=message)
        good = live.versions.get(progress.replaced)
        if good is None or controls.is_rejected(good) is not None:
            return replace(row, sync=State.RolledBack, message=f"{message} (v{progress.replaced} "
                           "is gone or rejected: nothing was rolled back)")
        started = self.clock()
        plan = Plan(progress.commit, window.rollback_changes(env, row.model, bad, good,
                                                             row.line))
        applied = execute(plan, registries, may_write=may_write, guard=self._guard)
        if applied.superseded:
            return row  # a newer commit changed this model meanwhile: judged again next pass
        out.applied.extend(applied.applied)
        if self.ledger is not None and applied.applied:
            before = Snapshot(env.registry, {row.model: live})
            self.ledger.record(entries_for(((a.change, a.at) for a in applied.applied),
                                           progress.commit, {env.registry: before}))
        if applied.errors:
            out.errors.extend(str(e) for e in applied.errors)
            return replace(row, sync=State.RolledBack, message=f"{message} (rolling back failed, "
                           f"retried next pass: {applied.errors[0].message})")
        marker = window.Progress(commit=progress.commit, started=started, ends=self.clock(),
                                 interval=1.0, replaced=None, next_at=started,
                                 outcome="skipped", last="restored by an automatic rollback")
        self._write(registries[env.registry], row.model, good.version, env.name, marker,
                    may_write)
        log.warning("%s/%s rolled back from v%d to v%d: %s", env.name, row.model, bad.version,
                    good.version, progress.failure,
                    extra={"fields": {"environment": env.name, "model": row.model}})
        out.events.append(Event("rolled_back", env.name, row.model, bad.version,
                                progress.commit, f"{env.name}/{row.model}: {hold.reason}"))
        if self.on_rollback is not None:
            self.on_rollback(env, row.model, bad.version, good.version, hold.reason)
        return replace(row, sync=State.RolledBack, live=(good.version,), message=message)

    @staticmethod
    def _write(registry: RegistryPort, model: str, version: int, environment: str,
               progress: window.Progress, may_write: Callable[[], bool]) -> bool:
        if not may_write():
            return False
        edit_tag(registry, TagEdit(model, verify_tag(environment), progress.to_json(), version))
        return True


def _reread(result: PassResult, envs: Mapping[str, Environment],
            registries: Mapping[str, RegistryPort]) -> dict[tuple[str, str], LiveModel]:
    """The models this pass promoted into an environment with `verify:`, read again: the
    pass's own snapshot is projected from its writes and lacks the apply records (with the
    controller's clock) that open their windows. One bulk read per registry, only then."""
    wanted: dict[str, set[str]] = {}
    for done in result.applied.applied if result.applied is not None else ():
        change = done.change
        env = envs.get(change.environment)
        if env is not None and env.verify is not None and \
                change.action in ("promote", "set_alias"):
            wanted.setdefault(change.registry, set()).add(change.model)
    out: dict[tuple[str, str], LiveModel] = {}
    for registry, names in wanted.items():
        try:
            snapshot = registries[registry].snapshot(sorted(names))
        except RegistryError:
            continue  # the next pass reads them with its live state
        for name in names:
            if (model := snapshot.model(name)) is not None:
                out[(registry, name)] = model
    return out


def _left(tags: Mapping[str, str], environment: str) -> float | None:
    raw = tags.get(left_tag(environment))
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None
