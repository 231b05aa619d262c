"""Fold a pass's outcome into what operators watch: metrics, log lines and Kubernetes
Events. The loop hands over values (the pass result, an applied change, an invalid commit);
this module decides what is counted, what is logged at which level and what becomes an
Event. It never changes the outcome."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from mlflow_gitops.core.diagnostics import Diagnostic
from mlflow_gitops.core.errors import GitOpsError
from mlflow_gitops.core.ports import MetricsPort
from mlflow_gitops.loop.executor import Applied
from mlflow_gitops.loop.recent import RecentChanges
from mlflow_gitops.loop.reconciler import PassResult

log = logging.getLogger("mlflow_gitops.controller")

#: (reason, message, warning): one Kubernetes Event.
EventSink = Callable[[str, str, bool], None]

_EVENT_REASONS = {"promote": "Promoted", "archive": "Archived", "unstage": "Unstaged",
                  "set_alias": "AliasMoved", "delete_alias": "AliasDeleted"}


class Reporter:
    """Metrics, logs and Events for one controller; remembers what it already reported."""

    def __init__(self, metrics: MetricsPort, on_event: EventSink | None = None) -> None:
        self.metrics = metrics
        self._on_event = on_event
        self._reported: set[str] = set()  # errors already sent as events
        self.applied_count = 0  # changes applied in the pass in flight
        self.recent = RecentChanges()  # the last applied changes, for the web page

    def pass_started(self) -> None:
        self.applied_count = 0

    def commit_seen(self, sha: str) -> None:
        self.metrics.commit(sha)

    def invalid_commit(self, sha: str, diagnostics: Sequence[Diagnostic],
                       kept: str | None) -> None:
        self.metrics.invalid_commit(True)
        for d in diagnostics:
            log.error("invalid commit %s: %s", sha[:12], d, extra={"fields": {
                "commit": sha, "file": d.file, "line": d.line,
                "kept_commit": kept[:12] if kept else "none"}})

    def invalid_cleared(self) -> None:
        self.metrics.invalid_commit(False)

    def result(self, result: PassResult) -> None:
        """Fold one reconcile's result into metrics, logs and Events."""
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
        errors = result.errors
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

    def applied(self, done: Applied) -> None:
        """One change was written (called by the executor as it goes)."""
        self.applied_count += 1
        self.recent.add(done)
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

    def pass_failed(self, message: str, reason: str, unexpected: bool) -> None:
        if unexpected:
            log.exception("reconcile failed with an unexpected error; backing off",
                          extra={"fields": {"reason": reason}})
        else:
            log.error("reconcile failed: %s", message, extra={"fields": {"reason": reason}})

    def pass_finished(self, outcome: str, seconds: float, reason: str,
                      commit: str | None) -> None:
        self.metrics.reconciled(outcome, seconds)
        quiet = outcome == "success" and not self.applied_count
        log.log(logging.DEBUG if quiet else logging.INFO, "reconcile %s in %.2fs", outcome,
                seconds, extra={"fields": {"reason": reason, "outcome": outcome,
                                           "commit": commit, "applied": self.applied_count}})

    def _event(self, reason: str, message: str, warning: bool = False) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(reason, message, warning)
        except GitOpsError as exc:
            log.warning("could not record event %s: %s", reason, exc)
