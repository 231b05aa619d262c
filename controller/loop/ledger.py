"""Appending to the ledger without ever holding up a registry change.

`Ledger.record(entries)` is the one call every writer makes once its change is in the
registry. Entries wait in a queue per registry; each `record` (and each `flush`, once per
controller pass) chains the queue onto that registry's ledger head and writes it. A write
that fails leaves the unwritten entries queued for the next try: the registry change stands,
the backlog shows as `pending` (/metrics, /status, the log), and the records keep the time of
their change, so a late one is recognisable. Sequence numbers are given at write time, so a
queued entry never leaves a hole in the chain; what a crash loses before its retry is a
change without a record, which `audit verify` finds by comparing the registry's own apply
records with the ledger.

Two writers (replicas around a failover) could chain onto the same head. After each write
the writer reads back the first number it wrote: a second record with that number is a fork,
logged as an error and counted; `audit verify` reports it with both writers. Nothing is
rewritten to hide it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from mlflow_gitops.core.errors import RegistryError
from mlflow_gitops.core.ledger import Entry, Query, Record
from mlflow_gitops.core.ports import LedgerStore
from mlflow_gitops.planning.ledger import Interval, chain, intervals

log = logging.getLogger("mlflow_gitops.ledger")

#: Entries queued per registry before the oldest are dropped (and counted as lost): a ledger
#: that stays down for days must not grow the controller's memory without bound.
MAX_PENDING = 100_000


@dataclass
class LedgerState:
    """What /metrics and /status show about the ledger."""

    written: int = 0
    pending: int = 0
    lost: int = 0
    forks: int = 0
    last_error: str | None = None
    errors: dict[str, str] = field(default_factory=dict)


class Ledger:
    """The controller's (and `apply`'s) ledger writer over one store per registry."""

    def __init__(self, stores: Mapping[str, LedgerStore], writer: str,
                 may_write: Callable[[], bool] | None = None):
        self.stores = dict(stores)
        self._writer = writer
        self._may_write = may_write
        self._queue: dict[str, list[Entry]] = {name: [] for name in stores}
        self._lock = threading.Lock()
        self.state = LedgerState()

    def record(self, entries: Sequence[Entry]) -> None:
        """Queue `entries` and write what can be written now. Never raises."""
        with self._lock:
            for entry in entries:
                queue = self._queue.get(entry.registry)
                if queue is None:
                    continue  # a registry without a ledger (disabled)
                queue.append(entry)
                if len(queue) > MAX_PENDING:
                    queue.pop(0)
                    self.state.lost += 1
        self.flush()

    def flush(self, may_write: Callable[[], bool] | None = None) -> None:
        """Write every queued entry that can be written now, if `may_write` allows (a
        replica without the lease keeps them queued until it may write again). Never
        raises."""
        allowed = may_write or self._may_write
        with self._lock:
            for name, queue in self._queue.items():
                if queue and (allowed is None or allowed()):
                    self._write(name, queue)
            self.state.pending = sum(len(q) for q in self._queue.values())

    def _write(self, registry: str, queue: list[Entry]) -> None:
        store = self.stores[registry]
        try:
            head = store.head()
            records = chain(head, queue, self._writer)
            written, failure = store.write(records)
        except RegistryError as exc:
            written, failure = 0, str(exc)
        except Exception as exc:  # noqa: BLE001 - a ledger bug must not stop reconciling
            written, failure = 0, f"{type(exc).__name__}: {exc}"
        del queue[:written]
        self.state.written += written
        if failure:
            self.state.last_error = self.state.errors[registry] = failure
            log.warning("ledger of registry '%s': %d record(s) not written yet, retried on "
                        "the next pass: %s", registry, len(queue), failure)
        else:
            self.state.errors.pop(registry, None)
        if written:
            self._check_fork(store, registry, records[0].seq)

    def _check_fork(self, store: LedgerStore, registry: str, seq: int) -> None:
        try:
            claims = store.at_seq(seq)
        except RegistryError:
            return  # the next `audit verify` still sees it
        if len(claims) > 1:
            self.state.forks += 1
            writers = ", ".join(sorted({c.writer for c in claims}))
            log.error("ledger of registry '%s' forked at record #%d: written by %s at once "
                      "(two replicas writing?); `mlflow-gitops audit verify` names it",
                      registry, seq, writers)


#: The newest records read for one model's timeline: a page view stays one bounded read.
TIMELINE_RECORDS = 2000


def applied_intervals(stores: Mapping[str, LedgerStore], model: str) -> list[Interval]:
    """The stretches each version of `model` was live in each environment, from the newest
    TIMELINE_RECORDS records of each registry's ledger. Raises RegistryError."""
    records: list[Record] = []
    for store in stores.values():
        records.extend(store.iter(Query(name=model, newest_first=True,
                                        limit=TIMELINE_RECORDS)))
    return intervals(records)
