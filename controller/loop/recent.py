"""The last N changes the controller applied, in memory, for the web page: a small bounded
ring (a restart forgets it; the lineage tags and the git log are the durable record)."""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timezone

from mlflow_gitops.loop.executor import Applied
from mlflow_gitops.planning.timeline import ApplyRecord

DEFAULT_SIZE = 50


class RecentChanges:
    """Appended to by the loop thread, read by HTTP threads; `items()` is a snapshot."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._ring: deque[ApplyRecord] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, done: Applied, at: datetime | None = None) -> None:
        c = done.change
        record = ApplyRecord(at or datetime.now(timezone.utc), c.environment, c.model,
                             c.version, c.action, done.commit, c.describe(), c.reason)
        with self._lock:
            self._ring.append(record)

    def items(self) -> tuple[ApplyRecord, ...]:
        """Newest first."""
        with self._lock:
            return tuple(reversed(self._ring))
