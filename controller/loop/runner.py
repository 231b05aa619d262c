"""The controller loop: wait for a trigger (timer, webhook, leadership) → one pass
(mlflow_gitops.loop.cycle) → wait again, the interval after a good pass and an exponential
backoff with jitter after a failed one. A trigger also wakes the commit lane
(mlflow_gitops.loop.lane), which applies a new commit at once, even during a pass. SIGTERM
finishes the pass in flight. Only the leader writes; a standby waits for the lease."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from mlflow_gitops.core.ports import (
    FeedbackPort,
    MetricsPort,
    PolicyFactory,
    ProposerPort,
    RegistryPort,
)
from mlflow_gitops.loop.backoff import Backoff
from mlflow_gitops.loop.cycle import ControllerState, Cycle, Source
from mlflow_gitops.loop.delivery import DeliveryWatch
from mlflow_gitops.loop.feedback import Feedback
from mlflow_gitops.loop.lane import CommitLane
from mlflow_gitops.loop.ledger import Ledger
from mlflow_gitops.loop.proposing import ProposalWorker
from mlflow_gitops.loop.report import EventSink, Reporter
from mlflow_gitops.loop.triggers import GIT_WEBHOOK, Trigger
from mlflow_gitops.loop.trustfacts import TrustReads
from mlflow_gitops.loop.verification import Verifier
from mlflow_gitops.loop.views import StatusQuery, page_view, readiness, status_view
from mlflow_gitops.planning.overview import PageData
from mlflow_gitops.planning.status import next_until

log = logging.getLogger("mlflow_gitops.controller")

LEASE_MARGIN = 0.5  # seconds of lease a write must have beyond its whole timeout
RENEWAL_WAIT = 3.0  # how long a write waits for a renewal before giving up this pass


class Elector(Protocol):
    """Leader election as the loop sees it (mlflow_gitops.loop.leader.LeaderElector)."""

    @property
    def is_leader(self) -> bool:
        """True while this replica may write."""
        ...

    @property
    def leader(self) -> str:
        """The holder last observed; "" before the first look at the lease or when free."""
        ...

    def lease_remaining(self) -> float:
        """Seconds this replica may still write before another could take over (0: none)."""
        ...

    @property
    def leader_url(self) -> str:
        """Where the other replica that leads takes forwarded triggers ("" when unknown)."""
        ...


#: A git webhook's drift check waits for a burst of merges to settle (Controller._settle):
#: this long without a new commit applied by the lane, and never longer than SETTLE_MAX.
SETTLE = 1.0
SETTLE_MAX = 10.0


class Controller:
    def __init__(self, source: Source, registries: Mapping[str, RegistryPort],
                 metrics: MetricsPort, *, interval: float = 60.0,
                 policy: Callable[[Source], PolicyFactory | None] | None = None,
                 known_registries: list[str] | None = None,
                 known_sources: dict[str, str] | None = None,
                 verifier: Verifier | None = None,
                 elector: Elector | None = None, rng: random.Random | None = None,
                 on_event: EventSink | None = None, feedback: FeedbackPort | None = None,
                 proposer: ProposerPort | None = None, write_budget: float = 0.0,
                 ledger: Ledger | None = None, delivery: DeliveryWatch | None = None,
                 trigger: Trigger | None = None, trust: TrustReads | None = None):
        self.source = source
        self.registries = registries
        self.metrics = metrics
        self.interval = interval
        self.elector = elector
        self.trigger = trigger or Trigger()  # shared with the elector's callbacks
        self.reporter = Reporter(metrics, on_event,
                                 Feedback(feedback) if feedback is not None else None)
        self.cycle = Cycle(source, registries, self.reporter,
                           policy=policy(source) if policy is not None else None,
                           known_registries=known_registries, known_sources=known_sources,
                           verifier=verifier, ledger=ledger, delivery=delivery, trust=trust)
        self.cycle.superseded = lambda _models: self.trigger.request("newer commit")
        self._rng = rng or random.Random()
        self._backoff = Backoff(rng=self._rng)
        # Not while backing off: the pass the trigger wakes meets the outage (and says so).
        self.lane = CommitLane(lambda: self.cycle.ahead(self.may_write),
                               lambda: self.leading and not self.trigger.stopped
                               and not self._backoff.failures)
        #: Proposal rounds run on their own worker after good passes, never inside one.
        self.proposals = ProposalWorker(
            proposer, lambda: self.leading and not self.trigger.stopped, rng=self._rng
        ) if proposer is not None else None
        #: The longest one registry write may take, retries included (seconds): a write
        #: starts only while the lease has comfortably more than this left.
        self.write_budget = write_budget

    @property
    def state(self) -> ControllerState:
        return self.cycle.state

    def run_pass(self, reason: str) -> bool:
        """One reconcile pass; False when it failed in a way worth backing off for."""
        return self.cycle.run(reason, may_write=self.may_write)

    def may_write(self) -> bool:
        """Asked before every write: never while stopping, never by a standby, and never
        unless the lease has comfortably more time left than the write's whole timeout (a
        renewal due any moment is waited for, briefly)."""
        if self.trigger.stopped:
            return False
        if self.elector is None:
            return True
        need = self.write_budget + LEASE_MARGIN
        deadline = time.monotonic() + RENEWAL_WAIT
        while self.elector.is_leader and not self.trigger.stopped:
            left = self.elector.lease_remaining()
            if left > need:
                return True
            if time.monotonic() >= deadline:
                log.warning("not writing: the lease has %.1fs left, less than a write may take "
                            "(%.1fs plus %.0fs margin)", left, self.write_budget, LEASE_MARGIN,
                            extra={"fields": {"lease_remaining": round(left, 2),
                                              "write_budget": self.write_budget}})
                return False
            time.sleep(0.05)
        return False

    # -- the loop ---------------------------------------------------------------------------

    @property
    def leading(self) -> bool:
        return self.elector is None or self.elector.is_leader

    def loop(self) -> None:
        """Run passes until `stop()`; returns after the pass in flight has finished and
        the commit lane's round in flight, if any (no write starts once stopping; what
        may still run is a read with its own timeout). Not returning is the caller's
        signal that a call is still in flight: `run` then exits without releasing the
        lease, so no other replica writes before this one's last write is over."""
        # Before any second thread writes: two threads importing MLflow's client at once
        # (the lane's first write beside the pass's) can leave it half-imported for good.
        self._prepare_writes()
        self.lane.start()
        try:
            self._loop()
        finally:
            self.lane.stop()

    def _loop(self) -> None:
        self._await_election()
        if self.proposals is not None:
            self.proposals.start()
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
                holder = self.elector.leader if self.elector is not None else ""
                log.info("leader" if leading else "standby: another replica holds the lease",
                         extra={"fields": {"leader": leading, "holder": holder}})
                was_leader = leading
            if not leading:
                # Nothing is written by a standby; becoming leader triggers a pass at once.
                delay = 5.0
                continue
            if reason == GIT_WEBHOOK:
                reason = self._settle(reason)
                if self.trigger.stopped:
                    return
                if not self.leading:  # the lease was lost while waiting: no pass here
                    delay = 5.0
                    continue
            ok = self.run_pass(reason or "interval")
            self.lane.ready()
            if ok and self.proposals is not None and self.leading and not self.trigger.stopped:
                self.proposals.request()  # returns at once: the round runs on its worker
            delay = self.interval * self._rng.uniform(0.9, 1.1) if ok else self._backoff.failed()
            if ok:
                self._backoff.succeeded()
                wake = self._next_wait_ends()
                if wake is not None and wake < delay:
                    delay = wake  # a soak or a window ends before the next poll: be there
            else:
                log.warning("backing off %.1fs before the next attempt", delay)

    def _settle(self, reason: str) -> str:
        """A git webhook's pass, when the commit lane has just applied a new commit, waits
        until no round has applied one for SETTLE seconds (at most SETTLE_MAX): in a burst
        of merges each is applied the moment it arrives, and the drift check of every
        managed model runs once after the burst instead of beside each merge, competing
        with it. Webhooks that arrive meanwhile are taken into this pass; any other trigger
        (an MLflow webhook: the registry changed; /sync; leadership) ends the wait at once."""
        self.lane.wait_idle(SETTLE)  # the lane's round for this webhook: did it apply one?
        deadline = time.monotonic() + SETTLE_MAX
        while True:
            now = time.monotonic()
            left = min(self.lane.last_applied + SETTLE - now, deadline - now)
            if left <= 0:
                return reason
            more = self.trigger.wait(timeout=left)
            if self.trigger.stopped:
                return reason
            if more is not None and more != GIT_WEBHOOK:
                return more

    def _prepare_writes(self) -> None:
        """Load each registry's write path (MLflow's client) once, in this thread, before
        the commit lane starts: so the first merge does not pay for it either."""
        for registry in self.registries.values():
            try:
                registry.prepare_writes()
            except Exception:  # noqa: BLE001 - a head start only; the first write retries
                log.debug("preparing the registry writers failed", exc_info=True)

    def _next_wait_ends(self) -> float | None:
        """Seconds until a `Waiting` entry expects to proceed or a `Verifying` entry's next
        measurement is due (at least 0.5 s)."""
        result = self.state.last_result
        until = next_until(result.status) if result is not None else None
        return None if until is None else max(0.5, until - time.time() + 0.2)

    def _await_election(self, timeout: float = 5.0) -> None:
        """Give the elector its first look at the lease before saying leader or standby."""
        deadline = time.monotonic() + timeout
        while (self.elector is not None and not self.elector.leader
               and time.monotonic() < deadline and not self.trigger.stopped):
            time.sleep(0.05)

    def stop(self) -> None:
        self.trigger.stop()
        if self.proposals is not None:
            self.proposals.stop()

    def on_webhook(self, reason: str = GIT_WEBHOOK) -> None:
        # The lane first: a pass this wakes sees the lane's round as asked for (_settle).
        self.lane.poke()  # a new commit does not wait for the pass in flight
        self.trigger.request(reason)

    def forward_url(self) -> str | None:
        """Where a trigger that reached this replica should go: None to handle it here (the
        leader, or no election), "" for a standby that does not know the leader's address
        yet, else the leader's URL."""
        if self.elector is None or self.leading:
            return None
        return self.elector.leader_url

    # -- what the HTTP server shows ---------------------------------------------------------

    def ready(self) -> tuple[bool, str]:
        return readiness(self.state, self.leading)

    def status(self, query: StatusQuery | None = None) -> dict[str, Any]:
        return status_view(self.state, self.leading, query or StatusQuery())

    def page_data(self) -> PageData:
        return page_view(self.state, self.leading, self.reporter.recent.items())
