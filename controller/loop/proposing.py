"""Proposal rounds on a worker of their own, so that proposing never delays a pass: a forge
that answers slowly, a `git push` that hangs until its timeout, or a round that keeps
failing costs the proposals, never the reconcile loop.

After a good pass the loop calls `request()`, which returns at once. The worker runs one
round at a time; requests that arrive during a round are folded into one more round after
it. A failed round backs off exponentially with jitter (mlflow_gitops.loop.backoff) before
the next, however many passes ask meanwhile. A round runs only while `may_run()` (the
leader) holds; `stop()` ends the worker after the round in flight, which is abandoned at
exit (its git and forge calls carry their own timeouts)."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from mlflow_gitops.core.errors import GitOpsError
from mlflow_gitops.core.ports import ProposerPort
from mlflow_gitops.loop.backoff import Backoff

log = logging.getLogger("mlflow_gitops.controller")


class ProposalWorker:
    def __init__(self, proposer: ProposerPort, may_run: Callable[[], bool], *,
                 rng: random.Random | None = None, backoff_cap: float = 300.0) -> None:
        self.proposer = proposer
        self._may_run = may_run
        self._backoff = Backoff(cap=backoff_cap, rng=rng)
        self._cond = threading.Condition()
        self._requested = False
        self._stopped = False
        self._not_before = 0.0  # monotonic time before which no round starts (backoff)
        self._last: list[str] = []  # the last round's lines: logged again only on change
        self._thread: threading.Thread | None = None
        self.rounds = 0  # rounds finished, well or not (tests, /status)

    def start(self) -> ProposalWorker:
        self._thread = threading.Thread(target=self._run, name="proposals", daemon=True)
        self._thread.start()
        return self

    def request(self) -> None:
        """Ask for a round after a pass; returns at once."""
        with self._cond:
            self._requested = True
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _wait(self) -> bool:
        """Until a round is due: requested, past any backoff. False once stopped."""
        with self._cond:
            while not self._stopped:
                wait = self._not_before - time.monotonic()
                if self._requested and wait <= 0:
                    self._requested = False
                    return True
                self._cond.wait(wait if self._requested else None)
            return False

    def _run(self) -> None:
        while self._wait():
            if not self._may_run():
                continue
            ok = self.round()
            self.rounds += 1
            if ok:
                self._backoff.succeeded()
                continue
            delay = self._backoff.failed()
            log.warning("proposals: next round in %.0fs at the earliest", delay)
            with self._cond:
                self._not_before = time.monotonic() + delay

    def round(self) -> bool:
        """One round; False when it failed as a whole. It never raises: a forge or git
        problem is logged and a later pass asks again."""
        try:
            lines = self.proposer.run()
        except GitOpsError as exc:
            log.warning("proposals failed: %s; trying again after a later pass", exc)
            return False
        except Exception:  # noqa: BLE001 - a bug here must not stop proposing for good
            log.exception("proposals failed with an unexpected error")
            return False
        if lines != self._last:
            for line in lines:
                log.info("proposal %s", line)
            self._last = lines
        return True
