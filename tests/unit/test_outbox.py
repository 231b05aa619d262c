"""The background delivery queue (adapters.outbox): in order, retried with backoff when the
failure is transient, given up when the receiver refuses, bounded when it never answers."""

from __future__ import annotations

import threading

from mlflow_gitops.adapters.outbox import Outbox
from mlflow_gitops.core.errors import DeliveryError


def test_transient_failures_are_retried_and_refusals_are_not() -> None:
    """A 5xx-like failure is retried until it succeeds; a 4xx-like one is tried once."""
    tries: dict[str, int] = {}

    def deliver(item: str) -> None:
        tries[item] = tries.get(item, 0) + 1
        if item == "flaky" and tries[item] < 3:
            raise DeliveryError("503", transient=True)
        if item == "refused":
            raise DeliveryError("403", transient=False)

    box: Outbox[str] = Outbox("test", deliver, base=0.01, cap=0.05).start()
    box.put("refused", "refused")
    box.put("flaky", "flaky")
    assert box.idle(timeout=5)
    box.stop()
    assert tries == {"refused": 1, "flaky": 3}
    assert (box.delivered, box.dropped) == (1, 1)


def test_a_full_queue_drops_the_oldest_and_put_never_blocks() -> None:
    """With the worker stuck on a receiver, queuing past capacity drops the oldest item."""
    release, started = threading.Event(), threading.Event()
    seen: list[int] = []

    def deliver(item: int) -> None:
        started.set()
        release.wait(5)
        seen.append(item)

    box: Outbox[int] = Outbox("test", deliver, capacity=2).start()
    box.put(0, "0")
    assert started.wait(5)  # the worker holds item 0
    for item in (1, 2, 3):
        box.put(item, str(item))
    release.set()
    assert box.idle(timeout=5)
    box.stop()
    assert seen == [0, 2, 3] and box.dropped == 1
