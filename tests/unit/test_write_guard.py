"""The write guard of the controller loop: a write starts only while this replica leads, is
not shutting down, and holds the lease comfortably longer than one write may take."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlflow_gitops.loop.runner import LEASE_MARGIN, Controller


@dataclass
class Elector:
    """Leader election as the loop sees it, with the answers set by the test."""

    is_leader: bool = True
    remaining: float = 15.0
    leader: str = "me"
    leader_url: str = ""

    def lease_remaining(self) -> float:
        return self.remaining if self.is_leader else 0.0


class Metrics:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def controller(elector: Elector | None, budget: float = 11.0) -> Controller:
    return Controller(source=None, registries={}, metrics=Metrics(),  # type: ignore[arg-type]
                      elector=elector, write_budget=budget)


def test_a_leader_with_enough_lease_left_may_write() -> None:
    """More lease left than the write budget plus the margin: the write may start."""
    assert controller(Elector(remaining=11.0 + LEASE_MARGIN + 0.5)).may_write()


def test_too_little_lease_left_refuses_the_write() -> None:
    """A lease that would run out before a write's whole timeout refuses the write (after a
    short wait for a renewal that does not come)."""
    assert not controller(Elector(remaining=11.5)).may_write()


def test_a_standby_or_a_stopping_controller_never_writes() -> None:
    """No write by a standby, and none once SIGTERM asked the loop to stop."""
    assert not controller(Elector(is_leader=False)).may_write()
    stopping = controller(None)
    assert stopping.may_write()
    stopping.stop()
    assert not stopping.may_write()
