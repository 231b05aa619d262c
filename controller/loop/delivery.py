"""The four delivery metrics as the controller shows them (/metrics gauges, the page's
table): read from the ledgers over a trailing window, at most every `every` seconds, so a
large ledger costs one bounded read per few minutes, never one per pass."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from mlflow_gitops.core.errors import RegistryError
from mlflow_gitops.core.ledger import Entry, Query
from mlflow_gitops.core.ports import LedgerStore
from mlflow_gitops.planning.delivery import DeliveryMetrics, report

log = logging.getLogger("mlflow_gitops.ledger")

WINDOW_SECONDS = 30 * 86400.0
EVERY_SECONDS = 300.0

Rows = list[tuple[DeliveryMetrics, list[DeliveryMetrics]]]


class DeliverySink(Protocol):
    """Where the figures go (adapters.metrics.Metrics.delivery)."""

    def delivery(self, rows: Sequence[DeliveryMetrics]) -> None: ...


class DeliveryWatch:
    """Keeps the last computed figures per environment; `refresh` recomputes when due."""

    def __init__(self, stores: Mapping[str, LedgerStore], sink: DeliverySink | None = None,
                 window: float = WINDOW_SECONDS, every: float = EVERY_SECONDS,
                 clock: Callable[[], float] = time.time):
        self._stores = dict(stores)
        self._sink = sink
        self.window = window
        self._every = every
        self._clock = clock
        self._next = 0.0
        self.rows: Rows = []
        self.computed_at: float | None = None
        self.error: str | None = None

    def refresh(self, environments: Sequence[str] = (), force: bool = False) -> None:
        """Recompute from the ledgers when due (or `force`). Never raises: a ledger that
        cannot be read keeps the last figures and says why."""
        now = self._clock()
        if not force and now < self._next:
            return
        self._next = now + self._every
        since_ms = int((now - self.window) * 1000)
        entries: list[Entry] = []
        try:
            for store in self._stores.values():
                entries.extend(r.entry for r in store.iter(Query(since_ms=since_ms)))
        except RegistryError as exc:
            self.error = str(exc)
            log.warning("delivery metrics not refreshed: the ledger cannot be read: %s", exc)
            return
        self.error = None
        self.rows = report(entries, since_ms, int(now * 1000), environments=environments)
        self.computed_at = now
        if self._sink is not None:
            self._sink.delivery([env for env, _ in self.rows])
