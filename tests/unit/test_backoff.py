"""Backoff after failures: exponential, fully jittered, capped."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st
from mlflow_gitops.loop.backoff import Backoff, ceiling, next_delay


def test_no_failures_means_no_delay() -> None:
    """Before any failure the loop does not wait."""
    assert next_delay(0, random.Random(1)) == 0.0
    assert ceiling(0) == 0.0


def test_ceiling_doubles_from_base_until_the_cap() -> None:
    """The largest possible delay is base, 2·base, 4·base … and then stays at the cap."""
    assert [ceiling(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    assert ceiling(9) == 256.0
    assert ceiling(10) == 300.0
    assert ceiling(10_000) == 300.0


def test_custom_base_and_cap() -> None:
    """Base and cap are parameters."""
    assert ceiling(1, base=0.5, cap=10) == 0.5
    assert ceiling(6, base=0.5, cap=10) == 10


@given(failures=st.integers(min_value=1, max_value=5000), seed=st.integers())
def test_delay_is_within_zero_and_the_ceiling(failures: int, seed: int) -> None:
    """Full jitter: every delay lies in [0, ceiling(failures)], never above the cap."""
    delay = next_delay(failures, random.Random(seed))
    assert 0.0 <= delay <= ceiling(failures) <= 300.0


def test_jitter_spreads_delays() -> None:
    """Replicas failing together do not retry together: delays for one count differ."""
    rng = random.Random(7)
    delays = {round(next_delay(8, rng), 6) for _ in range(50)}
    assert len(delays) > 40
    assert min(delays) < 64 < max(delays)


def test_same_seed_same_delays() -> None:
    """With the random source passed in, delays are reproducible."""
    a = [next_delay(n, random.Random(3)) for n in range(1, 10)]
    b = [next_delay(n, random.Random(3)) for n in range(1, 10)]
    assert a == b


def test_backoff_counts_failures_and_resets_on_success() -> None:
    """Backoff grows with consecutive failures and starts over after a success."""
    backoff = Backoff(rng=random.Random(5))
    for _ in range(12):
        backoff.failed()
    assert backoff.failures == 12
    assert backoff.failed() <= 300.0
    backoff.succeeded()
    assert backoff.failures == 0
    assert backoff.failed() <= 1.0
