"""A git webhook's drift check waits for a burst of merges to settle: the commit lane applies
each merge at once, and the pass of every managed model runs after the burst, bounded; a
trigger that is not a git webhook ends the wait at once."""

from __future__ import annotations

import threading
import time
from typing import Any

from mlflow_gitops.loop import runner
from mlflow_gitops.loop.runner import Controller


class Metrics:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def controller() -> Controller:
    return Controller(source=None, registries={}, metrics=Metrics())  # type: ignore[arg-type]


def test_no_recent_lane_round_means_no_wait() -> None:
    """Without a commit applied by the lane just now, the pass starts at once."""
    c = controller()
    started = time.monotonic()
    assert c._settle("webhook") == "webhook"
    assert time.monotonic() - started < 0.1


def _settle_after(monkeypatch: Any, settle: float, arriving: str) -> tuple[Controller, str,
                                                                        float]:
    """A lane round applied a commit just now; `arriving` is requested 0.1 s into the wait.
    The controller, what `_settle` returned and how long it took."""
    monkeypatch.setattr(runner, "SETTLE", settle)
    c = controller()
    c.lane.last_applied = time.monotonic()
    threading.Timer(0.1, lambda: c.trigger.request(arriving)).start()
    started = time.monotonic()
    reason = c._settle("webhook")
    return c, reason, time.monotonic() - started


def test_the_pass_waits_until_the_burst_is_quiet(monkeypatch: Any) -> None:
    """A lane round that applied a commit just now defers the pass by SETTLE; a webhook
    arriving meanwhile is taken into this pass, not left for another."""
    c, reason, took = _settle_after(monkeypatch, 0.3, "webhook")
    assert reason == "webhook" and 0.25 <= took < 1.0
    assert c.trigger.wait(timeout=0) is None  # the second webhook was absorbed


def test_a_registry_change_or_a_sync_ends_the_wait(monkeypatch: Any) -> None:
    """An MLflow webhook (the registry changed) starts the drift check at once."""
    _c, reason, took = _settle_after(monkeypatch, 5.0, "mlflow webhook")
    assert reason == "mlflow webhook" and took < 1.0


def test_a_stream_of_merges_never_defers_the_pass_past_the_bound(monkeypatch: Any) -> None:
    """Merges that keep coming defer the drift check at most SETTLE_MAX."""
    monkeypatch.setattr(runner, "SETTLE", 0.5)
    monkeypatch.setattr(runner, "SETTLE_MAX", 0.6)
    c = controller()
    stop = threading.Event()

    def merges() -> None:
        while not stop.is_set():
            c.lane.last_applied = time.monotonic()
            c.trigger.request("webhook")
            time.sleep(0.05)

    feeder = threading.Thread(target=merges)
    feeder.start()
    try:
        started = time.monotonic()
        c._settle("webhook")
        assert 0.55 <= time.monotonic() - started < 1.2
    finally:
        stop.set()
        feeder.join()
