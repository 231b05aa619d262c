"""Why the loop should reconcile now: a timer, a webhook, a signal.

Triggers coalesce. However many arrive while a reconcile runs, the next `wait` returns at
once and exactly one more pass follows; a trigger is never lost and never counted twice.
The first reason of a burst is the one reported. Thread-safe: the HTTP server's threads
call `request`, the loop calls `wait`, a signal handler calls `stop`."""

from __future__ import annotations

import threading

#: The reason a git forge's webhook gives (the pass it asks for may wait for a burst of
#: merges to settle: mlflow_gitops.loop.runner).
GIT_WEBHOOK = "webhook"

class Trigger:
    """A coalescing, thread-safe wake-up for the reconcile loop."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: str | None = None
        self._coalesced = 0
        self._stopped = False

    def request(self, reason: str) -> None:
        """Ask for one more reconcile; merges with any request not yet taken by `wait`."""
        with self._cond:
            if self._pending is None:
                self._pending = reason
            else:
                self._coalesced += 1
            self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> str | None:
        """Block until a request (returned and cleared), `stop()` or `timeout` (both None).

        A request made before this call, even during the previous reconcile, returns at once."""
        with self._cond:
            self._cond.wait_for(lambda: self._pending is not None or self._stopped, timeout)
            if self._stopped:
                return None
            reason, self._pending = self._pending, None
            return reason

    def stop(self) -> None:
        """Wake every waiter for good: `wait` returns None from now on."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    @property
    def stopped(self) -> bool:
        with self._cond:
            return self._stopped

    @property
    def coalesced(self) -> int:
        """How many requests were merged into an earlier pending one (for logs and tests)."""
        with self._cond:
            return self._coalesced
