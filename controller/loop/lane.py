"""The commit lane: a new commit is applied the moment its trigger arrives, even while the
loop thread is in the middle of a drift check of every managed model (a merge must not wait
for a pass over unchanged models).

Each trigger (webhook, `/sync`, MLflow webhook) also pokes this lane; its thread runs the
same first step as every pass (`Cycle.advance`: fetch, load, apply the changed entries),
which takes one caller at a time, so a commit goes first exactly once, whoever gets there
first. The trigger itself stays pending, so the loop still runs one more full pass after
the one in flight (coalescing is unchanged). Writes go through the same `may_write` as the
loop's (leadership, shutdown) and the write gate (mlflow_gitops.loop.gate), so a drift check
planned before the commit never writes over it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from mlflow_gitops.core.errors import GitOpsError
from mlflow_gitops.loop.triggers import Trigger

log = logging.getLogger("mlflow_gitops.controller")


class CommitLane:
    """A thread that runs `advance` once per burst of pokes, until stopped."""

    def __init__(self, advance: Callable[[], bool], may_run: Callable[[], bool]) -> None:
        self._advance = advance  # True: a new commit was applied first
        self._may_run = may_run  # leading and not stopping
        #: When a round last applied a new commit (time.monotonic(); 0: never).
        self.last_applied = 0.0
        self._wake = Trigger()
        self._idle = threading.Event()  # no round in flight and none asked for
        self._idle.set()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="commit-lane", daemon=True)
            self._thread.start()

    def ready(self) -> None:
        """The loop's first pass is over: rounds may start (a round before it has nothing
        to apply first: that pass applies everything)."""
        self._ready.set()

    def poke(self) -> None:
        """A trigger arrived: look for a new commit now (pokes coalesce)."""
        self._idle.clear()
        self._wake.request("trigger")

    def wait_idle(self, timeout: float) -> bool:
        """Wait until the rounds asked for so far are over (False: `timeout` ran out)."""
        return self._idle.wait(timeout)

    def stop(self, timeout: float | None = None) -> None:
        """No new round starts; waits up to `timeout` for the one in flight (whose writes
        stop at once: `may_write` says no while stopping)."""
        self._wake.stop()
        self._ready.set()
        self._idle.set()  # nobody waits for a round that will not come
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        self._ready.wait()
        while True:
            if self._wake.wait(timeout=0) is None:  # nothing asked for: idle until a poke
                self._idle.set()
                if self._wake.wait() is None:
                    return
                self._idle.clear()  # a poke that came before the set above
            if not self._may_run():
                continue  # a standby forwards triggers; the loop handles leadership
            try:
                if self._advance():
                    self.last_applied = time.monotonic()
            except GitOpsError as exc:
                # The pass that the same trigger asked for meets the same problem and
                # reports it (and backs off); here it is only a note.
                log.info("new commit not applied ahead of the pass: %s", exc)
            except Exception:  # noqa: BLE001 - a bug here must not stop the lane
                log.exception("applying a new commit ahead of the pass failed unexpectedly")
