"""How long to wait after the git remote or the registry failed.

Exponential backoff with full jitter and a cap: after the n-th consecutive failure, wait a
uniformly random time in [0, min(cap, base * 2**(n-1))]. Jitter keeps several replicas
from retrying in step; the cap keeps an outage from pushing the next try hours away. Pure:
the random source is passed in, so tests are deterministic."""

from __future__ import annotations

import random
from dataclasses import dataclass

DEFAULT_BASE = 1.0
DEFAULT_CAP = 300.0


def ceiling(failures: int, base: float = DEFAULT_BASE, cap: float = DEFAULT_CAP) -> float:
    """The largest delay after `failures` consecutive failures (0 when there were none)."""
    if failures <= 0:
        return 0.0
    # 2**1100 overflows a float; past ~64 doublings the cap has long won anyway.
    return min(cap, base * 2.0 ** min(failures - 1, 64))


def next_delay(failures: int, rng: random.Random | None = None,
               base: float = DEFAULT_BASE, cap: float = DEFAULT_CAP) -> float:
    """Seconds to wait before the next try after `failures` consecutive failures."""
    top = ceiling(failures, base, cap)
    if top == 0.0:
        return 0.0
    return (rng or random).uniform(0.0, top)


@dataclass
class Backoff:
    """Counts consecutive failures for the loop: `failed()` gives the next delay, `succeeded()`
    starts over."""

    base: float = DEFAULT_BASE
    cap: float = DEFAULT_CAP
    rng: random.Random | None = None
    failures: int = 0

    def failed(self) -> float:
        self.failures += 1
        return next_delay(self.failures, self.rng, self.base, self.cap)

    def succeeded(self) -> None:
        self.failures = 0
