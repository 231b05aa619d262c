"""The coalescing trigger that wakes the reconcile loop."""

from __future__ import annotations

import threading

from mlflow_gitops.loop.triggers import Trigger

JOIN = 10.0  # seconds: a bound for a hung test, never part of what is asserted


def test_request_before_wait_returns_at_once() -> None:
    """A trigger that arrived before the loop waited is returned immediately."""
    trigger = Trigger()
    trigger.request("webhook")
    assert trigger.wait(timeout=JOIN) == "webhook"


def test_wait_without_request_times_out_with_none() -> None:
    """With nothing requested, wait returns None once the timeout passes (the timer case)."""
    assert Trigger().wait(timeout=0) is None


def test_a_burst_becomes_one_pass_with_the_first_reason() -> None:
    """Many requests before the loop looks again become one pass, reported by the first reason."""
    trigger = Trigger()
    for reason in ("webhook", "timer", "webhook"):
        trigger.request(reason)
    assert trigger.wait(timeout=0) == "webhook"
    assert trigger.wait(timeout=0) is None
    assert trigger.coalesced == 2


def test_requests_during_a_reconcile_give_exactly_one_more_pass() -> None:
    """Triggers from many threads while a reconcile runs coalesce into exactly one more pass."""
    trigger = Trigger()
    passes: list[str] = []
    running, release, second_pass = threading.Event(), threading.Event(), threading.Event()

    def loop() -> None:
        while (reason := trigger.wait()) is not None:
            passes.append(reason)
            if len(passes) == 1:
                running.set()
                release.wait(JOIN)
            else:
                second_pass.set()

    loop_thread = threading.Thread(target=loop)
    loop_thread.start()
    trigger.request("first")
    assert running.wait(JOIN)
    senders = [threading.Thread(target=trigger.request, args=(f"webhook-{i}",))
               for i in range(16)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(JOIN)
    release.set()
    assert second_pass.wait(JOIN)
    trigger.stop()
    loop_thread.join(JOIN)
    assert not loop_thread.is_alive()
    assert len(passes) == 2
    assert passes[0] == "first" and passes[1].startswith("webhook-")
    assert trigger.coalesced == 15


def test_request_wakes_a_blocked_waiter() -> None:
    """A loop blocked in wait (no timeout) wakes up when another thread requests."""
    trigger = Trigger()
    got: list[str | None] = []
    waiter = threading.Thread(target=lambda: got.append(trigger.wait()))
    waiter.start()
    trigger.request("webhook")
    waiter.join(JOIN)
    assert got == ["webhook"]


def test_stop_wakes_a_blocked_waiter_for_good() -> None:
    """stop() wakes the loop with None, and every later wait returns None even if requested."""
    trigger = Trigger()
    got: list[str | None] = []
    waiter = threading.Thread(target=lambda: got.append(trigger.wait()))
    waiter.start()
    trigger.stop()
    waiter.join(JOIN)
    assert got == [None]
    assert trigger.stopped
    trigger.request("webhook")
    assert trigger.wait(timeout=JOIN) is None
