"""Fold a pass's outcome into what operators watch: metrics, log lines and Kubernetes
Events. The loop hands over values (the pass result, an applied change, an invalid commit);
this module decides what is counted, what is logged at which level and what becomes an
Event. It never changes the outcome."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Concatenate, ParamSpec

from mlflow_gitops.core.diagnostics import Diagnostic
from mlflow_gitops.core.errors import GitOpsError
from mlflow_gitops.core.feedback import Notification
from mlflow_gitops.core.model import DesiredState
from mlflow_gitops.core.ports import MetricsPort
from mlflow_gitops.core.states import State, state_of, worst
from mlflow_gitops.loop.executor import Applied
from mlflow_gitops.loop.feedback import Feedback
from mlflow_gitops.loop.recent import RecentChanges
from mlflow_gitops.loop.reconciler import PassResult
from mlflow_gitops.planning.status import Key, ModelStatus, entered, states_by_key

log = logging.getLogger("mlflow_gitops.controller")

#: (reason, message, warning): one Kubernetes Event.
EventSink = Callable[[str, str, bool], None]

_EVENT_REASONS = {"promote": "Promoted", "archive": "Archived", "unstage": "Unstaged",
                  "set_alias": "AliasMoved", "delete_alias": "AliasDeleted"}


#: Per-model lines logged at most per pass (and only for what changed); the rest is one
#: summary line with counts, so 100,000 failing entries are not 100,000 lines (/status
#: pages through all of them).
LOG_FIRST = 20
_TOLD = 10_000  # changes told early, kept until their outcome comes (bounded)


def _log_rest(what: str, states: Sequence[State]) -> None:
    """One line for the lines not logged: how many, by state."""
    if not states:
        return
    counts = Counter(states)
    level = max(state.traits.level for state in counts)
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    log.log(level, "%d more %s (%s); the first %d are logged above, /status lists all",
            len(states), what, summary, LOG_FIRST,
            extra={"fields": {"more": len(states), "by_state": dict(counts)}})


def pass_outcome(result: PassResult) -> str:
    """success, waiting, held, refused or error: the worst state the pass left behind."""
    if result.registry_errors:
        return "error"
    states = [row.sync for row in result.status]
    states += [state_of(error) for error in result.errors]
    return worst(states).traits.result


def _when(until: float | None) -> str | None:
    if until is None:
        return None
    return datetime.fromtimestamp(until, timezone.utc).isoformat(timespec="seconds")


P = ParamSpec("P")


def _locked(method: Callable[Concatenate[Reporter, P], None]
            ) -> Callable[Concatenate[Reporter, P], None]:
    """One report at a time: the loop and the commit lane (two threads) both report."""
    def wrapper(self: Reporter, /, *args: P.args, **kwargs: P.kwargs) -> None:
        with self._lock:
            method(self, *args, **kwargs)
    wrapper.__doc__ = method.__doc__
    return wrapper


class Reporter:
    """Metrics, logs and Events for one controller; remembers what it already reported.
    Thread-safe: the loop and the commit lane both report through it."""

    def __init__(self, metrics: MetricsPort, on_event: EventSink | None = None,
                 feedback: Feedback | None = None, heartbeat: float = 600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.metrics = metrics
        #: While nothing happens, one INFO line this often says the loop is alive.
        self.heartbeat = heartbeat
        self._clock = clock
        self._lock = threading.RLock()
        self._last_info = clock()
        self.feedback = feedback
        self._on_event = on_event
        self._states: dict[Key, State] = {}  # each entry's state after the last pass
        self._loose: set[str] = set()  # problems without a row already logged
        self.applied_count = 0  # changes applied in the pass in flight
        self.recent = RecentChanges()  # the last applied changes, for the web page
        self.news = 0  # states entered in the pass in flight
        #: Changes `written` already told, until the outcome that carries them comes.
        self._told: OrderedDict[Applied, None] = OrderedDict()

    @_locked
    def pass_started(self) -> None:
        self.applied_count = 0
        self.news = 0

    @_locked
    def commit_seen(self, sha: str) -> None:
        self.metrics.commit(sha)

    @_locked
    def desired_changed(self, previous: DesiredState | None, desired: DesiredState) -> None:
        """A new commit's desired state is in force from this pass on."""
        self._feedback(lambda f: f.desired_changed(previous, desired))

    @_locked
    def invalid_commit(self, sha: str, diagnostics: Sequence[Diagnostic],
                       kept: str | None) -> None:
        self.metrics.invalid_commit(True)
        self._feedback(lambda f: f.invalid(sha, diagnostics))
        for d in diagnostics[:LOG_FIRST]:
            log.error("invalid commit %s: %s", sha[:12], d, extra={"fields": {
                "commit": sha, "file": d.file, "line": d.line,
                "kept_commit": kept[:12] if kept else "none"}})
        _log_rest(f"problems in commit {sha[:12]}",
                  [State.Error] * len(diagnostics[LOG_FIRST:]))

    @_locked
    def invalid_cleared(self) -> None:
        self.metrics.invalid_commit(False)

    @_locked
    def written(self, changes: Sequence[Applied]) -> None:
        """Changes a new commit's first part just wrote (the pass's or the commit lane's):
        their log lines, Events, page entries and metrics now, not when the drift check
        after them ends. `result` skips them when they come again in a pass's outcome."""
        self._fold(changes)
        for done in changes:
            self._told[done] = None
        while len(self._told) > _TOLD:
            self._told.popitem(last=False)

    @_locked
    def result(self, result: PassResult) -> None:
        """Fold one reconcile's result into metrics, logs and Events."""
        self._fold([done for done in result.written if not self._was_told(done)])
        counts: dict[str, int] = {e.name: 0 for e in result.desired.environments}
        for row in result.status:
            if not row.sync.traits.in_sync:
                counts[row.environment] = counts.get(row.environment, 0) + 1
        self.metrics.out_of_sync(counts)
        counted: dict[tuple[str, str], int] = {}
        for row in result.status:
            counted[(row.environment, row.sync)] = counted.get((row.environment, row.sync), 0) + 1
        for env in result.desired.environments:
            counted.setdefault((env.name, State.Synced), 0)
        self.metrics.states(counted)
        news = entered(self._states, result.status)
        for row in news[:LOG_FIRST]:
            self._entered(row)
        _log_rest("entries entered a new state", [row.sync for row in news[LOG_FIRST:]])
        self._states = states_by_key(result.status)
        self.news += len(news)
        # A problem with no row (an environment-wide error of an environment without
        # models): once per distinct problem, as the rows are.
        keys = set(self._states)
        loose = {str(e): e for e in result.errors if (e.environment, e.model) not in keys}
        fresh = [(text, error) for text, error in loose.items() if text not in self._loose]
        self.news += len(fresh)
        for text, error in fresh[:LOG_FIRST]:
            log.log(state_of(error).traits.level, "%s", text, extra={"fields": {
                "environment": error.environment, "model": error.model,
                "state": state_of(error), "file": error.file, "line": error.line}})
        _log_rest("problems", [state_of(e) for _, e in fresh[LOG_FIRST:]])
        self._loose = set(loose)
        self._feedback(lambda f: f.result(result))
        for name, message in result.registry_errors.items():
            log.error("registry %s unreachable: %s", name, message,
                      extra={"fields": {"registry": name}})

    @_locked
    def verified(self, commit: str, environment: str, model: str, message: str) -> None:
        """A version passed its verification window: the `verified` notification, once."""
        self._feedback(lambda f: f.verification(Notification(
            "verified", commit, environment, model, "Synced", message)))

    def _was_told(self, done: Applied) -> bool:
        """True (once) for a change `written` already folded."""
        if done in self._told:
            del self._told[done]
            return True
        return False

    def _fold(self, changes: Sequence[Applied]) -> None:
        for done in changes:
            self._applied(done)
            self.metrics.transition(done.change.environment, done.change.action)
        if changes:
            self.metrics.applied()

    def _entered(self, row: ModelStatus) -> None:
        """One log line (and Event) when an entry enters a state, never on every pass."""
        when = _when(row.until)
        detail = f" until {when}" if when else ""
        message = f"{row.environment}/{row.model}: {row.sync}{detail}"
        if row.message:
            message += f": {row.message}"
        log.log(row.sync.traits.level, "%s", message, extra={"fields": {
            "environment": row.environment, "model": row.model, "state": row.sync,
            "until": when, "file": row.file, "line": row.line}})
        if row.sync.traits.event is not None:
            reason, warning = row.sync.traits.event
            self._event(reason, f"{row.environment}/{row.model}: {row.message or row.sync}",
                        warning)

    def _applied(self, done: Applied) -> None:
        """One change the pass wrote: its log line, Event, page entry and commit status."""
        self.applied_count += 1
        self.recent.add(done)
        self._feedback(lambda f: f.applying(done))
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

    @_locked
    def pass_failed(self, message: str, reason: str, unexpected: bool) -> None:
        if unexpected:
            log.exception("reconcile failed with an unexpected error; backing off",
                          extra={"fields": {"reason": reason}})
        else:
            log.error("reconcile failed: %s", message, extra={"fields": {"reason": reason}})

    @_locked
    def pass_finished(self, outcome: str, seconds: float, reason: str,
                      commit: str | None) -> None:
        self.metrics.reconciled(outcome, seconds)
        # A pass that changed nothing and entered no new state is no news (DEBUG): a soak
        # wait or a lasting error must not log a line on every pass (failures of the pass
        # itself are logged by pass_failed, invalid commits by invalid_commit).
        quiet = not self.applied_count and not self.news
        now = self._clock()
        fields = {"reason": reason, "outcome": outcome, "commit": commit,
                  "applied": self.applied_count}
        if quiet and now - self._last_info >= self.heartbeat:
            counts: dict[str, int] = {}
            for state in self._states.values():
                counts[state] = counts.get(state, 0) + 1
            summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
            log.info("heartbeat: reconcile %s, nothing new (%s) at commit %s", outcome,
                     summary or "no entries", (commit or "none")[:12],
                     extra={"fields": {**fields, "heartbeat": True, "states": counts}})
            self._last_info = now
            return
        if not quiet:
            self._last_info = now
        log.log(logging.DEBUG if quiet else logging.INFO, "reconcile %s in %.2fs", outcome,
                seconds, extra={"fields": fields})

    def _feedback(self, call: Callable[[Feedback], None]) -> None:
        """Feedback is for people; a bug in it must never fail or stop a pass."""
        if self.feedback is None:
            return
        try:
            call(self.feedback)
        except Exception:  # noqa: BLE001
            log.exception("commit status / notification bookkeeping failed; reconciling goes on")

    def _event(self, reason: str, message: str, warning: bool = False) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(reason, message, warning)
        except GitOpsError as exc:
            log.warning("could not record event %s: %s", reason, exc)
