"""The controller loop (SPEC §6): wait for a trigger → fetch → load the tip → validate →
reconcile → record status. A bad commit keeps the last good desired state in force; an
unreachable git remote or registry backs off with jitter; SIGTERM finishes the pass in
flight. Only the leader writes; a standby waits for the lease."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Protocol

from mlflow_gitops.core.diagnostics import Diagnostic
from mlflow_gitops.core.errors import GitOpsError
from mlflow_gitops.core.model import DesiredState, frozen_map, ownership_tag
from mlflow_gitops.core.ports import MetricsPort, PolicyFactory, RegistryPort
from mlflow_gitops.desired.loader import load_texts
from mlflow_gitops.loop.backoff import Backoff
from mlflow_gitops.loop.executor import Applied
from mlflow_gitops.loop.reconciler import PassResult, read_live, reconcile
from mlflow_gitops.loop.triggers import Trigger

log = logging.getLogger("mlflow_gitops.controller")

_EVENT_REASONS = {"promote": "Promoted", "archive": "Archived", "unstage": "Unstaged",
                  "set_alias": "AliasMoved", "delete_alias": "AliasDeleted"}


class Source(Protocol):
    def fetch(self) -> str: ...

    def read_environment_files(self, sha: str) -> dict[str, str]: ...


class Elector(Protocol):
    @property
    def is_leader(self) -> bool: ...


@dataclass
class ControllerState:
    """What /status and /readyz report; replaced field by field by the loop thread."""

    last_seen_commit: str | None = None
    last_applied_commit: str | None = None
    invalid_commit: str | None = None
    invalid_diagnostics: list[Diagnostic] = field(default_factory=list)
    last_result: PassResult | None = None
    last_pass_at: str | None = None
    last_pass_outcome: str = "pending"
    last_error: str | None = None
    synced_once: bool = False
    registry_reachable: bool = False
    passes: int = 0


class Controller:
    def __init__(self, source: Source, registries: Mapping[str, RegistryPort],
                 metrics: MetricsPort, *, interval: float = 60.0,
                 policy: Callable[[Source], PolicyFactory | None] | None = None,
                 known_registries: list[str] | None = None,
                 elector: Elector | None = None, rng: random.Random | None = None,
                 on_event: Callable[[str, str, bool], None] | None = None):
        self.source = source
        self.registries = registries
        self.metrics = metrics
        self.interval = interval
        self.elector = elector
        self.trigger = Trigger()
        self.state = ControllerState()
        self._policy = policy(source) if policy is not None else None
        self._known = known_registries
        self._rng = rng or random.Random()
        self._backoff = Backoff(rng=self._rng)
        self._desired: DesiredState | None = None  # last good desired state
        self._applied: DesiredState | None = None  # last state applied without error
        self._applied_count = 0
        self._resumed = False  # has the self_heal:false bookkeeping been read back yet?
        self._on_event = on_event  # (reason, message, warning): Kubernetes Events
        self._reported: set[str] = set()  # errors already sent as events

    # -- one pass ---------------------------------------------------------------------------

    def run_pass(self, reason: str) -> bool:
        """One reconcile pass; False when it failed in a way worth backing off for."""
        started = time.monotonic()
        outcome, transient = "success", False
        self._applied_count = 0
        try:
            sha = self.source.fetch()
            self.metrics.commit(sha)
            self.state.last_seen_commit = sha
            self._load(sha)
            if self._desired is None:
                outcome = "invalid"
            else:
                if not self._resumed:
                    self._resume_applied()
                result = reconcile(self._desired, self.registries, previous=self._applied,
                                   policy=self._policy, on_applied=self._log_applied,
                                   may_write=lambda: self.leading)
                transient = self._record(result)
                outcome = "success" if result.ok else "error"
                if self.state.invalid_commit:
                    outcome = "invalid"
            self.state.last_error = self._first_error()
        except GitOpsError as exc:
            outcome, transient = "error", exc.transient
            self.state.last_error = str(exc)
            log.error("reconcile failed: %s", exc, extra={"fields": {"reason": reason}})
        except Exception as exc:  # noqa: BLE001 - a bug must not become a crash loop
            outcome, transient = "error", True
            self.state.last_error = f"internal error: {type(exc).__name__}: {exc}"
            log.exception("reconcile failed with an unexpected error; backing off",
                          extra={"fields": {"reason": reason}})
        seconds = time.monotonic() - started
        self.metrics.reconciled(outcome, seconds)
        self.state.passes += 1
        self.state.last_pass_outcome = outcome
        self.state.last_pass_at = _now()
        quiet = outcome == "success" and not self._applied_count
        log.log(logging.DEBUG if quiet else logging.INFO, "reconcile %s in %.2fs", outcome,
                seconds, extra={"fields": {"reason": reason, "outcome": outcome,
                                           "commit": self.state.last_seen_commit,
                                           "applied": self._applied_count}})
        return not transient

    def _resume_applied(self) -> None:
        """After a restart or a failover the last applied state is not in memory; without it
        `self_heal: false` would count every entry as changed and revert manual changes once.
        It is the newest commit recorded in those environments' lineage tags, read back from
        git. Best effort: with nothing to go on, the first pass treats entries as changed."""
        assert self._desired is not None
        self._resumed = True
        tags = {ownership_tag(e.name) for e in self._desired.environments if not e.sync.self_heal}
        commit_time = getattr(self.source, "commit_time", None)
        if not tags or self._applied is not None or commit_time is None:
            return
        snapshots, _ = read_live(self.registries, self._desired.registries())
        shas = {value for snapshot in snapshots.values() for model in snapshot.models.values()
                for live in model.versions.values() for key, value in live.tags.items()
                if key in tags}
        newest: tuple[Any, str] | None = None
        for sha in shas:
            try:
                when = commit_time(sha)
            except GitOpsError:
                continue  # not a commit of this branch (e.g. "local" from a manual apply)
            if newest is None or when > newest[0]:
                newest = (when, sha)
        if newest is None:
            return
        state, _ = load_texts(self.source.read_environment_files(newest[1]), commit=newest[1],
                              known_registries=self._known)
        if state is not None:
            self._applied = state
            log.info("resumed from commit %s: entries unchanged since then are not re-applied "
                     "where self_heal is false", newest[1][:12],
                     extra={"fields": {"commit": newest[1]}})

    def _load(self, sha: str) -> None:
        if self._desired is not None and self._desired.commit == sha:
            self._clear_invalid()  # e.g. the branch was reset to the last good commit
            return
        if sha == self.state.invalid_commit:
            return
        files = self.source.read_environment_files(sha)
        desired, diagnostics = load_texts(files, commit=sha, known_registries=self._known)
        if desired is None:
            self.state.invalid_diagnostics = diagnostics
            self.state.last_error = str(diagnostics[0])
            self.state.invalid_commit = sha  # last: /status readers key on this field
            self.metrics.invalid_commit(True)
            kept = self._desired.commit[:12] if self._desired else "none"
            for d in diagnostics:
                log.error("invalid commit %s: %s", sha[:12], d, extra={"fields": {
                    "commit": sha, "file": d.file, "line": d.line, "kept_commit": kept}})
            return
        self._clear_invalid()
        self._desired = desired

    def _clear_invalid(self) -> None:
        if self.state.invalid_commit is not None:
            self.state.invalid_commit = None
            self.state.invalid_diagnostics = []
            self.metrics.invalid_commit(False)

    def _record(self, result: PassResult) -> bool:
        """Fold a pass into state and metrics; True when the registry was unreachable."""
        self.state.last_result = result
        self.state.registry_reachable = not result.registry_errors
        if result.applied is not None:
            for done in result.applied.applied:
                self.metrics.transition(done.change.environment, done.change.action)
            if result.applied.applied:
                self.metrics.applied()
        counts: dict[str, int] = {e.name: 0 for e in result.desired.environments}
        for row in result.status:
            if row.sync != "Synced":
                counts[row.environment] = counts.get(row.environment, 0) + 1
        self.metrics.out_of_sync(counts)
        errors = result.applied.errors if result.applied else list(result.plan.errors)
        for error in errors:
            log.error("%s", error, extra={"fields": {
                "environment": error.environment, "model": error.model, "kind": error.kind,
                "file": error.file, "line": error.line}})
        current = {str(e) for e in errors}
        for error in errors:
            if str(error) not in self._reported:  # one event per new problem, not per pass
                reason = "PromotionRefused" if error.kind == "gate" else "ReconcileFailed"
                self._event(reason, str(error), True)
        self._reported = current
        for name, message in result.registry_errors.items():
            log.error("registry %s unreachable: %s", name, message,
                      extra={"fields": {"registry": name}})
        if result.registry_errors:
            return True
        self.state.synced_once = True
        self.state.last_applied_commit = result.desired.commit
        self._applied = advance(self._applied, result.desired, {
            (e.environment, e.model) for e in errors})
        return False

    def _log_applied(self, done: Applied) -> None:
        self._applied_count += 1
        c = done.change
        before = c.from_stage if c.alias is None else (
            f"v{c.previous_version}" if c.previous_version else "unset")
        after = c.to_stage if c.alias is None else (
            f"v{c.version}" if c.action == "set_alias" else "unset")
        log.info("applied %s", c.describe(), extra={"fields": {
            "environment": c.environment, "model": c.model, "version": c.version,
            "action": c.action, "from": before, "to": after, "commit": done.commit,
            "duration_seconds": round(done.seconds, 4), "registry": c.registry}})
        self._event(_EVENT_REASONS[c.action], f"{c.environment}: {c.describe()} "
                    f"(commit {done.commit[:12]})")

    def _event(self, reason: str, message: str, warning: bool = False) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(reason, message, warning)
        except GitOpsError as exc:
            log.warning("could not record event %s: %s", reason, exc)

    def _first_error(self) -> str | None:
        if self.state.invalid_diagnostics:
            return str(self.state.invalid_diagnostics[0])
        result = self.state.last_result
        if result is None:
            return None
        errors = result.applied.errors if result.applied else list(result.plan.errors)
        if errors:
            return str(errors[0])
        if result.registry_errors:
            name, message = sorted(result.registry_errors.items())[0]
            return f"registry {name}: {message}"
        return None

    # -- the loop ---------------------------------------------------------------------------

    @property
    def leading(self) -> bool:
        return self.elector is None or self.elector.is_leader

    def loop(self) -> None:
        """Run passes until `stop()`; returns after the pass in flight has finished."""
        self._await_election()
        self.trigger.request("startup")
        delay = 0.0
        was_leader = None
        while True:
            reason = self.trigger.wait(timeout=delay)
            if self.trigger.stopped:
                return
            leading = self.leading
            if leading != was_leader:
                self.metrics.leader(leading)
                holder = getattr(self.elector, "leader", "") if self.elector else ""
                log.info("leader" if leading else "standby: another replica holds the lease",
                         extra={"fields": {"leader": leading, "holder": holder}})
                was_leader = leading
            if not leading:
                # Nothing is written by a standby; becoming leader triggers a pass at once.
                delay = 5.0
                continue
            ok = self.run_pass(reason or "interval")
            delay = self.interval * self._rng.uniform(0.9, 1.1) if ok else self._backoff.failed()
            if ok:
                self._backoff.succeeded()
            else:
                log.warning("backing off %.1fs before the next attempt", delay)

    def _await_election(self, timeout: float = 5.0) -> None:
        """Give the elector its first look at the lease before saying leader or standby."""
        deadline = time.monotonic() + timeout
        while (self.elector is not None and not getattr(self.elector, "leader", "x")
               and time.monotonic() < deadline and not self.trigger.stopped):
            time.sleep(0.05)

    def stop(self) -> None:
        self.trigger.stop()

    def on_webhook(self) -> None:
        self.trigger.request("webhook")

    # -- what the HTTP server shows ---------------------------------------------------------

    def ready(self) -> tuple[bool, str]:
        if not self.leading:
            return True, "standby: not the leader"
        if not self.state.synced_once:
            return False, "not synced yet: " + (self.state.last_error or "first pass pending")
        if not self.state.registry_reachable:
            return False, "registry unreachable: " + (self.state.last_error or "")
        return True, f"synced {self.state.last_applied_commit or ''}"

    def status(self) -> dict[str, Any]:
        s = self.state
        result = s.last_result
        return {
            "leader": self.leading,
            "last_seen_commit": s.last_seen_commit,
            "last_applied_commit": s.last_applied_commit,
            "last_pass": {"at": s.last_pass_at, "outcome": s.last_pass_outcome,
                          "passes": s.passes},
            "invalid_commit": None if s.invalid_commit is None else {
                "commit": s.invalid_commit,
                "diagnostics": [d.to_dict() for d in s.invalid_diagnostics]},
            "last_error": s.last_error,
            "environments": [row.to_dict() for row in result.status] if result else [],
            "registry_errors": result.registry_errors if result else {},
        }


def advance(applied: DesiredState | None, desired: DesiredState,
            failed: set[tuple[str, str | None]]) -> DesiredState:
    """The new "last applied" state for `self_heal: false`: every entry of `desired` except
    those that did not converge, which keep their old value so the next pass retries them
    as changed. A failure elsewhere must not make other entries count as changed forever."""
    before = applied.by_name() if applied is not None else {}
    envs = []
    for env in desired.environments:
        old = before.get(env.name)
        if (env.name, None) in failed:
            if old is not None:
                envs.append(old)
            continue
        models = dict(env.models)
        for model in env.models:
            if (env.name, model) in failed:
                if old is not None and model in old.models:
                    models[model] = old.models[model]
                else:
                    del models[model]
        envs.append(replace(env, models=frozen_map(models)))
    return DesiredState(tuple(envs), desired.commit)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
