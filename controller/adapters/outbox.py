"""Delivery in the background: a bounded queue and one worker thread per kind of delivery
(commit statuses, notifications), so a slow or failing forge or receiver never blocks a
reconcile. A delivery that fails with a transient error (timeout, 5xx, 429) is
retried with exponential backoff and full jitter (mlflow_gitops.loop.backoff) up to
`max_attempts`; one the receiver refuses (401, 403, 404, 422) is dropped with one warning.
Items go out in the order they were queued; a retry of an item given a `group` is dropped
once a newer item of the same group was queued (a commit status that a newer state made
stale is never sent after it). When the queue is full the
oldest waiting item is dropped with a warning: memory stays bounded whatever a receiver
does. Nothing survives a restart (see mlflow_gitops.loop.feedback)."""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from mlflow_gitops.core.errors import DeliveryError
from mlflow_gitops.loop.backoff import next_delay

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(order=True)
class _Entry(Generic[T]):
    due: float
    seq: int
    item: T = field(compare=False)
    what: str = field(compare=False)
    group: str | None = field(compare=False)
    attempts: int = field(default=0, compare=False)


class Outbox(Generic[T]):
    def __init__(self, name: str, deliver: Callable[[T], None], *, capacity: int = 1000,
                 max_attempts: int = 8, base: float = 1.0, cap: float = 300.0,
                 clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        self.name = name
        self._deliver = deliver
        self._capacity = capacity
        self._max_attempts = max_attempts
        self._base, self._cap = base, cap
        self._clock = clock
        self._rng = rng or random.Random()
        self._cond = threading.Condition()
        self._heap: list[_Entry[T]] = []
        self._latest: dict[str, int] = {}  # group → seq of its newest item
        self._seq = itertools.count()
        self._busy = False
        self._stopped = False
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.dropped = 0

    def start(self) -> Outbox[T]:
        self._thread = threading.Thread(target=self._run, name=f"outbox-{self.name}",
                                        daemon=True)
        self._thread.start()
        return self

    def put(self, item: T, what: str, group: str | None = None) -> None:
        """Queue `item` (described as `what` in logs); returns at once."""
        with self._cond:
            seq = next(self._seq)
            if group is not None:
                self._latest[group] = seq
            if len(self._heap) >= self._capacity:
                oldest = min(self._heap, key=lambda e: e.seq)
                self._heap.remove(oldest)
                heapq.heapify(self._heap)
                self.dropped += 1
                log.warning("%s queue full (%d): dropped %s", self.name, self._capacity,
                            oldest.what)
            heapq.heappush(self._heap, _Entry(self._clock(), seq, item, what, group))
            self._cond.notify_all()

    def idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued or in flight (tests, shutdown); True when idle."""
        deadline = time.monotonic() + timeout
        with self._cond:
            return self._cond.wait_for(lambda: not self._heap and not self._busy,
                                       max(0.0, deadline - time.monotonic()))

    def stop(self, timeout: float = 5.0) -> None:
        """Give what is due `timeout` seconds to go out, then stop the worker."""
        self.idle(timeout)
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _next(self) -> _Entry[T] | None:
        with self._cond:
            while not self._stopped:
                if self._heap:
                    wait = self._heap[0].due - self._clock()
                    if wait <= 0:
                        entry = heapq.heappop(self._heap)
                        if entry.attempts and entry.group is not None \
                                and self._latest.get(entry.group) != entry.seq:
                            self._cond.notify_all()
                            continue  # a retry that a newer item of its group made stale
                        self._busy = True
                        return entry
                    self._cond.wait(wait)
                else:
                    self._cond.wait()
            return None

    def _run(self) -> None:
        while (entry := self._next()) is not None:
            try:
                self._deliver(entry.item)
                self.delivered += 1
            except DeliveryError as exc:
                self._failed(entry, exc)
            except Exception:  # noqa: BLE001 - a bug in one delivery must not end the worker
                log.exception("%s: delivering %s failed unexpectedly", self.name, entry.what)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _failed(self, entry: _Entry[T], exc: DeliveryError) -> None:
        entry.attempts += 1
        if not exc.transient or entry.attempts >= self._max_attempts:
            self.dropped += 1
            log.warning("%s: gave up on %s after %d attempt(s): %s", self.name, entry.what,
                        entry.attempts, exc)
            return
        delay = next_delay(entry.attempts, self._rng, self._base, self._cap)
        log.info("%s: %s failed (%s); retrying in %.1fs", self.name, entry.what, exc, delay)
        with self._cond:
            entry.due = self._clock() + delay
            heapq.heappush(self._heap, entry)
            self._cond.notify_all()
