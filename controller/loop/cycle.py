"""One controller pass over the git source: fetch → load the tip (a bad commit keeps the
last good desired state in force) → apply a new commit's changed entries first → the drift
check of every managed model → verify → report. The first three steps (`advance`) also run
on the commit lane (mlflow_gitops.loop.lane) the moment a trigger arrives, beside a drift
check in flight; the write gate (mlflow_gitops.loop.gate) keeps the two from undoing each
other. A new commit's changes are logged and counted as they land (Reporter.written); the
lane's outcome is folded into the next pass's, which skips what was already told.
What `self_heal: false` needs to know across restarts (what was fully applied) lives in the
registry, read with each pass's live state (mlflow_gitops.planning.converged), so there is
nothing to resume.
The loop around it (triggers, backoff, leadership) is mlflow_gitops.loop.runner."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from typing import Any, Protocol

from mlflow_gitops.core.diagnostics import Diagnostic
from mlflow_gitops.core.errors import GitOpsError, SourceError
from mlflow_gitops.core.model import DesiredState
from mlflow_gitops.core.ports import PolicyFactory, RegistryPort
from mlflow_gitops.desired.loader import load_texts
from mlflow_gitops.desired.managed import changed_models, focus, read_sets
from mlflow_gitops.loop.delivery import DeliveryWatch
from mlflow_gitops.loop.executor import ModelGuard
from mlflow_gitops.loop.gate import WriteGate
from mlflow_gitops.loop.ledger import Ledger
from mlflow_gitops.loop.reconciler import PassResult, merged, merged_writes, reconcile
from mlflow_gitops.loop.report import Reporter, pass_outcome
from mlflow_gitops.loop.trustfacts import TrustReads
from mlflow_gitops.loop.verification import Verifier

log = logging.getLogger("mlflow_gitops.controller")


class Source(Protocol):
    """The git source the controller follows (mlflow_gitops.adapters.git.source.GitSource)."""

    def fetch(self) -> str: ...

    def read_environment_files(self, sha: str) -> dict[str, str]: ...


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
    source_error: str | None = None  # why git cannot be read now (None: it can)
    passes: int = 0


class Cycle:
    """Runs passes for one controller and keeps what must survive between them: the last
    good desired state."""

    def __init__(self, source: Source, registries: Mapping[str, RegistryPort],
                 reporter: Reporter, *, policy: PolicyFactory | None = None,
                 known_registries: list[str] | None = None,
                 known_sources: dict[str, str] | None = None,
                 verifier: Verifier | None = None, ledger: Ledger | None = None,
                 delivery: DeliveryWatch | None = None,
                 trust: TrustReads | None = None) -> None:
        self.source = source
        self._trust = trust
        self.ledger = ledger
        self.delivery = delivery
        self._authors: dict[str, str] = {}
        self.registries = registries
        self.reporter = reporter
        self.state = ControllerState()
        self._policy = policy
        self._known = known_registries
        self._sources = known_sources
        self._verifier = verifier
        self._desired: DesiredState | None = None  # last good desired state
        self._generation = 0  # of _desired: one more for each desired state loaded
        self._first: DesiredState | None = None  # the last desired state applied first
        self._advancing = threading.Lock()  # advance(): the pass and the commit lane
        #: The lane's outcomes (with their generation), for the next pass's outcome.
        self._early: list[tuple[int, PassResult]] = []
        self._early_lock = threading.Lock()
        self.gate = WriteGate()
        #: Told which models a drift check left to a newer commit (the loop makes sure
        #: another pass follows).
        self.superseded: Callable[[list[tuple[str, str]]], None] = lambda models: None

    def run(self, reason: str, may_write: Callable[[], bool]) -> bool:
        """One reconcile pass; False when it failed in a way worth backing off for."""
        started = time.monotonic()
        outcome, transient = "success", False
        self.reporter.pass_started()
        try:
            desired, generation, first = self.advance(may_write)
            if self.ledger is not None:
                self.ledger.flush(may_write)  # records a failed write left for later
            if desired is None:
                outcome = "invalid"
            else:
                if first is not None and first.registry_errors:
                    result = first  # a registry stopped answering: no drift check against it
                else:
                    result = self._drift_check(desired, generation, may_write)
                    if first is not None:  # the pass's outcome counts the first part's writes
                        result = merged(first, result)
                result = self._verify(self._with_early(result, generation), may_write,
                                      partial(self.gate.model, generation))
                transient = self._record(result)
                outcome = pass_outcome(result)
                if self.state.invalid_commit:
                    outcome = "invalid"
            self.state.last_error = self._first_error()
        except GitOpsError as exc:
            outcome, transient = "error", exc.transient
            self.state.last_error = str(exc)
            self.reporter.pass_failed(str(exc), reason, unexpected=False)
        except Exception as exc:  # noqa: BLE001 - a bug must not become a crash loop
            outcome, transient = "error", True
            self.state.last_error = f"internal error: {type(exc).__name__}: {exc}"
            self.reporter.pass_failed(self.state.last_error, reason, unexpected=True)
        seconds = time.monotonic() - started
        self.state.passes += 1
        self.state.last_pass_outcome = outcome
        self.state.last_pass_at = _now()
        self.reporter.pass_finished(outcome, seconds, reason, self.state.last_seen_commit)
        self._after_pass()
        return not transient

    def _after_pass(self) -> None:
        """The ledger's backlog and forks, and the delivery figures when they are due."""
        metrics = self.reporter.metrics
        if self.ledger is not None and hasattr(metrics, "ledger"):
            metrics.ledger(self.ledger.state.pending, self.ledger.state.forks)
        if self.delivery is not None:
            names = [e.name for e in self._desired.environments] if self._desired else []
            self.delivery.refresh(names)

    def advance(self, may_write: Callable[[], bool], lane: bool = False
                ) -> tuple[DesiredState | None, int, PassResult | None]:
        """Fetch, load the tip and apply a new commit's changed entries: the start of every
        pass, and what the commit lane runs the moment a trigger arrives, even while a pass
        is in its drift check. One caller at a time, so each commit goes first exactly once.
        Returns the desired state in force, its generation and the commit-first result."""
        with self._advancing:
            try:
                sha = self.source.fetch()
                self.reporter.commit_seen(sha)
                self.state.last_seen_commit = sha
                self._load(sha)
            except SourceError as exc:
                self.state.source_error = str(exc)
                raise
            self.state.source_error = None
            desired, generation = self._desired, self._generation
            if desired is None:
                return None, generation, None
            return desired, generation, self._commit_first(desired, generation, may_write,
                                                           lane)

    def ahead(self, may_write: Callable[[], bool]) -> bool:
        """The commit lane's round: `advance`; its outcome is kept for the next pass's.
        True when it applied a new commit's changes first."""
        return self.advance(may_write, lane=True)[2] is not None

    def _with_early(self, result: PassResult, generation: int) -> PassResult:
        """`result` with the writes the commit lane made since the last report, and, for
        the entries a newer commit's lane round saw after this pass planned, that round's
        rows (this pass's rows of them describe a plan it left to that commit)."""
        with self._early_lock:
            early, self._early = self._early, []
        for newer, first in early:
            result = merged(first, result)
            if newer > generation:
                rows = {(row.environment, row.model): row for row in first.status}
                result = replace(result, status=tuple(
                    rows.get((row.environment, row.model), row) for row in result.status))
        return result

    def _commit_first(self, desired: DesiredState, generation: int,
                      may_write: Callable[[], bool], lane: bool) -> PassResult | None:
        """A new commit's changed entries are applied first, reading only their models, so
        merge-to-applied waits neither for the drift check of every managed model that
        follows nor for one already running (the gate keeps that one from writing over
        them). Whatever this one could not apply, the full pass retries and records, unless
        a registry stopped answering here: then this result is the pass's (cut short) and
        the next pass tries this commit first again."""
        before = self._first
        if before is None or before.commit == desired.commit:
            self._first = desired
            return None
        keys = changed_models(before, desired)
        if not keys:
            self._first = desired  # nothing to apply early: the full pass does it all
            return None
        focused = focus(desired, keys)
        models = [(registry, name) for registry, reads in read_sets(focused).items()
                  for name in reads.names]
        with self.gate.commit(generation, models):
            # Each change is told as it lands (log line, Event, metrics), not after the
            # ledger's records or when a drift check ends; the outcome that carries them
            # (a pass's) skips them. The lane's outcome is kept for the next pass's before
            # the gate opens, so the drift check this round overtakes finds it.
            result = reconcile(focused, self.registries, policy=self._policy,
                               may_write=may_write, records=True, trust=self._trust,
                               progress=lambda done: self.reporter.written([done]),
                               **self._ledger_args(desired))
            if lane:
                with self._early_lock:
                    self._early.append((generation, result))
        if not result.registry_errors:
            self._first = desired
        return result

    def _drift_check(self, desired: DesiredState, generation: int,
                     may_write: Callable[[], bool]) -> PassResult:
        """Every managed model, planned with `desired`; a model that a newer commit takes
        over meanwhile is left to that commit (and to the pass that follows it)."""
        self.gate.forget_before(generation)
        result = reconcile(desired, self.registries, policy=self._policy,
                           may_write=may_write, records=True, trust=self._trust,
                           guard=partial(self.gate.model, generation),
                           **self._ledger_args(desired))
        if result.applied is not None and result.applied.superseded:
            self.superseded(result.applied.superseded)
        return result

    def _ledger_args(self, desired: DesiredState) -> dict[str, Any]:
        """The ledger and who merged `desired`'s commit (its author; for a merge a forge
        made, the person who merged), for reconcile."""
        if self.ledger is None:
            return {}
        return {"ledger": self.ledger, "merged_by": self._author(desired.commit)}

    def _author(self, sha: str) -> str:
        if sha not in self._authors:
            reader = getattr(self.source, "commit_author", None)
            try:
                self._authors = {sha: reader(sha) if reader is not None else ""}
            except GitOpsError:
                return ""
        return self._authors[sha]

    def _verify(self, result: PassResult, may_write: Callable[[], bool],
                guard: ModelGuard) -> PassResult:
        """The verification step after the pass's writes: its rows replace the pass's. A
        rollback goes through `guard` like the drift check's writes."""
        if self._verifier is None:
            return result
        outcome = self._verifier.step(result, self.registries, may_write, guard=guard)
        for event in outcome.events:
            if event.kind == "verified":
                self.reporter.verified(event.commit, event.environment, event.model,
                                       event.message)
        for error in outcome.errors:
            log.error("%s", error)
        return replace(merged_writes(result, outcome.applied), status=outcome.rows)

    def _load(self, sha: str) -> None:
        if self._desired is not None and self._desired.commit == sha:
            self._clear_invalid()  # e.g. the branch was reset to the last good commit
            return
        if sha == self.state.invalid_commit:
            return
        files = self.source.read_environment_files(sha)
        desired, diagnostics = load_texts(files, commit=sha, known_registries=self._known,
                                          known_sources=self._sources)
        if desired is None:
            self.state.invalid_diagnostics = diagnostics
            self.state.last_error = str(diagnostics[0])
            self.state.invalid_commit = sha  # last: /status readers key on this field
            self.reporter.invalid_commit(sha, diagnostics,
                                         self._desired.commit if self._desired else None)
            return
        self._clear_invalid()
        self.reporter.desired_changed(self._desired, desired)
        self._desired = desired
        self._generation += 1

    def _clear_invalid(self) -> None:
        if self.state.invalid_commit is not None:
            self.state.invalid_commit = None
            self.state.invalid_diagnostics = []
            self.reporter.invalid_cleared()

    def _record(self, result: PassResult) -> bool:
        """Fold a pass into state and reports; True when the registry was unreachable."""
        self.state.last_result = result
        self.state.registry_reachable = not result.registry_errors
        self.reporter.result(result)
        if result.registry_errors:
            return True
        self.state.synced_once = True
        self.state.last_applied_commit = result.desired.commit
        return False

    def _first_error(self) -> str | None:
        if self.state.invalid_diagnostics:
            return str(self.state.invalid_diagnostics[0])
        result = self.state.last_result
        if result is None:
            return None
        errors = result.errors
        if errors:
            return str(errors[0])
        if result.registry_errors:
            name, message = sorted(result.registry_errors.items())[0]
            return f"registry {name}: {message}"
        return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
