"""What the end-to-end tests share: the controller processes a test started are killed when
it ends, however it ends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture()
def controllers() -> Iterator[list[Any]]:
    """Processes (anything with `kill()`) a test starts; each is killed after the test."""
    started: list[Any] = []
    yield started
    for proc in started:
        proc.kill()
