"""Leader election over a `coordination.k8s.io/v1` Lease, so two replicas never write at once.

The algorithm is client-go's (`tools/leaderelection`): acquire by creating the Lease, renew
by replacing it guarded by its `resourceVersion` (a 409 means another candidate wrote first),
and take over someone else's Lease only when it has not changed for `leaseDurationSeconds`
as measured on *our* clock from the moment we observed the change, so clock skew between
nodes cannot shorten a lease. A leader that cannot renew within the renew deadline stops
leading (and `is_leader` turns false on its own even if the renewing thread is stuck); on
shutdown it releases the Lease (empty holder) so the standby takes over at once. The Lease
itself is reached through the `LeaseStore` port; `controller/adapters/kube.py` implements it
with the kubernetes client. This module imports no client library.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Protocol

from mlflow_gitops.core.errors import (  # noqa: F401 - re-exported for the Lease store
    ConfigError,
    GitOpsError,
    LeaseConflict,
    LeaseError,
    LeaseNotFound,
)

log = logging.getLogger(__name__)

JITTER = 1.2  # client-go's JitterFactor for the acquire loop


@dataclass(frozen=True)
class LeaseRecord:
    """The election fields of a Lease's spec, plus the resourceVersion it was read at."""

    holder: str
    lease_duration_seconds: int
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    transitions: int = 0
    resource_version: str | None = None
    #: Where the holder takes forwarded triggers (a Lease annotation): a standby sends the
    #: webhooks it receives there, so any replica's webhook is applied at once.
    holder_url: str = ""

    def spec_key(self) -> tuple[object, ...]:
        """What a candidate compares to notice that the holder renewed."""
        return (self.holder, self.lease_duration_seconds, self.acquire_time,
                self.renew_time, self.transitions)


class LeaseStore(Protocol):
    """One named Lease in one namespace."""

    def read(self) -> LeaseRecord:
        """The current record; raises LeaseNotFound."""
        ...

    def create(self, record: LeaseRecord) -> LeaseRecord:
        """Create the Lease; raises LeaseConflict when it already exists."""
        ...

    def replace(self, record: LeaseRecord) -> LeaseRecord:
        """Replace at `record.resource_version`; raises LeaseConflict when that is stale."""
        ...


@dataclass(frozen=True)
class ElectionConfig:
    """Identity and timings (seconds), with client-go's defaults and constraints."""

    identity: str
    lease_duration: int = 15
    url: str = ""  # this replica's own address for forwarded triggers (--advertise-url)
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.identity:
            raise ConfigError("leader election needs an identity: set POD_NAME")
        if not self.lease_duration > self.renew_deadline > self.retry_period * JITTER > 0:
            raise ConfigError(
                "leader election timings must satisfy lease-duration > renew-deadline > "
                f"1.2 x retry-period > 0; got {self.lease_duration}, {self.renew_deadline}, "
                f"{self.retry_period}")


Callback = Callable[[], None]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class LeaderElector:
    """Runs the election in a daemon thread; `is_leader` says whether to write right now."""

    def __init__(self, store: LeaseStore, config: ElectionConfig, *,
                 on_started_leading: Callback | None = None,
                 on_stopped_leading: Callback | None = None,
                 on_new_leader: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = utc_now) -> None:
        self.store = store
        self.config = config
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._on_new_leader = on_new_leader
        self._clock = clock
        self._now = now
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._release_on_stop = True
        self._leading = False
        self._renewed_at = float("-inf")  # clock() at the start of the last successful write
        self._record: LeaseRecord | None = None  # the last record we read or wrote
        self._observed_at = float("-inf")  # clock() when that record's spec last changed
        self._leader = ""

    @property
    def identity(self) -> str:
        return self.config.identity

    @property
    def is_leader(self) -> bool:
        """True only while we hold the Lease and renewed it within the renew deadline."""
        with self._lock:
            fresh = self._clock() - self._renewed_at < self.config.renew_deadline
            return self._leading and fresh

    def lease_remaining(self) -> float:
        """Seconds this replica may still write before another could take the Lease over: our
        lease duration from the start of our last successful renewal (0 when not leading).
        A write should start only when it fits, whole, inside this."""
        with self._lock:
            if not self._leading:
                return 0.0
            left = self._renewed_at + self.config.lease_duration - self._clock()
            fresh = self._clock() - self._renewed_at < self.config.renew_deadline
            return max(0.0, left) if fresh else 0.0

    @property
    def leader(self) -> str:
        """The holder we last observed ("" when none)."""
        with self._lock:
            return self._leader

    @property
    def leader_url(self) -> str:
        """Where another replica that leads takes forwarded triggers ("" when we lead,
        nobody does, or the holder did not say)."""
        with self._lock:
            record = self._record
            if record is None or not record.holder or record.holder == self.identity:
                return ""
            return record.holder_url

    def start(self) -> None:
        """Start campaigning in a daemon thread."""
        if self._thread is not None:
            raise RuntimeError("LeaderElector.start() called twice")
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self._thread.start()

    def stop(self, *, release: bool = True, timeout: float | None = None) -> None:
        """Stop campaigning; with `release`, give the Lease up so a standby takes over now."""
        self._release_on_stop = release
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._acquire():
                break
            self._set_leading(True)
            self._call(self._on_started, "on_started_leading")
            self._renew_loop()
            self._set_leading(False)
            self._call(self._on_stopped, "on_stopped_leading")
        if self._release_on_stop and self._record is not None:
            self._release()

    def _acquire(self) -> bool:
        """Try until we hold the Lease (True) or are told to stop (False)."""
        while not self._stop.is_set():
            if self.try_acquire_or_renew():
                log.info("acquired lease", extra={"fields": {"identity": self.identity}})
                return True
            period = self.config.retry_period
            self._stop.wait(period + random.uniform(0, period * JITTER))
        return False

    def _renew_loop(self) -> None:
        """Renew every retry period until stopped, out-raced, or past the renew deadline."""
        while not self._stop.wait(self.config.retry_period):
            if self.try_acquire_or_renew():
                continue
            with self._lock:
                lost_to = self._leader if self._leader != self.identity else ""
                late = self._clock() - self._renewed_at >= self.config.renew_deadline
            if lost_to or late:
                reason = f"lease taken by {lost_to}" if lost_to else "renew deadline passed"
                log.warning("stopped leading: %s", reason,
                            extra={"fields": {"identity": self.identity, "reason": reason}})
                return

    # -- one step ---------------------------------------------------------------------------

    def try_acquire_or_renew(self) -> bool:
        """One attempt to create, renew or take over the Lease; True when we hold it now.
        The election thread calls this; call it directly only when no thread is running."""
        started = self._clock()
        now = self._now()
        cfg = self.config
        mine = self._record
        if self._leading and mine is not None and mine.holder == self.identity:
            # Fast path, as client-go: renew straight from our last write.
            renewed = replace(mine, renew_time=now, lease_duration_seconds=cfg.lease_duration,
                              holder_url=cfg.url)
            return self._write(self.store.replace, renewed, started)
        try:
            current = self.store.read()
        except LeaseNotFound:
            fresh = LeaseRecord(self.identity, cfg.lease_duration, now, now, 0,
                                holder_url=cfg.url)
            return self._write(self.store.create, fresh, started)
        except LeaseError as exc:
            log.warning("cannot read lease: %s", exc)
            return False
        self._observe(current)
        if current.holder and current.holder != self.identity:
            with self._lock:
                valid = self._observed_at + current.lease_duration_seconds > self._clock()
            if valid:
                return False
        if current.holder == self.identity:
            wanted = replace(current, renew_time=now, lease_duration_seconds=cfg.lease_duration,
                             holder_url=cfg.url)
        else:
            wanted = replace(current, holder=self.identity, acquire_time=now, renew_time=now,
                             lease_duration_seconds=cfg.lease_duration,
                             transitions=current.transitions + 1, holder_url=cfg.url)
        return self._write(self.store.replace, wanted, started)

    def _release(self) -> bool:
        """Give up a Lease we hold: empty holder, so any candidate may take it at once."""
        mine = self._record
        if mine is None or mine.holder != self.identity:
            return False
        now = self._now()
        freed = replace(mine, holder="", lease_duration_seconds=1, acquire_time=now,
                        renew_time=now, holder_url="")
        try:
            self._observe(self.store.replace(freed))
        except LeaseError as exc:
            log.warning("could not release lease (the standby waits for it to expire): %s", exc)
            return False
        log.info("released lease", extra={"fields": {"identity": self.identity}})
        return True

    def _write(self, op: Callable[[LeaseRecord], LeaseRecord], record: LeaseRecord,
               started: float) -> bool:
        try:
            written = op(record)
        except LeaseConflict:
            # Someone else wrote first; forget our copy so the next try reads the Lease.
            self._observe(None)
            with self._lock:
                self._leader = "" if self._leader == self.identity else self._leader
            return False
        except LeaseError as exc:
            log.warning("cannot write lease: %s", exc)
            return False
        self._observe(written)
        with self._lock:
            self._renewed_at = started
        return True

    def _observe(self, record: LeaseRecord | None) -> None:
        changed = record is None or self._record is None or \
            record.spec_key() != self._record.spec_key()
        self._record = record
        if record is None:
            return
        with self._lock:
            if changed:
                self._observed_at = self._clock()
            previous, self._leader = self._leader, record.holder
        if record.holder != previous and record.holder and self._on_new_leader is not None:
            try:
                self._on_new_leader(record.holder)
            except Exception:  # a callback must not end the election
                log.exception("on_new_leader failed")

    def _set_leading(self, leading: bool) -> None:
        with self._lock:
            self._leading = leading

    def _call(self, callback: Callback | None, name: str) -> None:
        if callback is None:
            return
        try:
            callback()
        except Exception:  # a callback must not end the election
            log.exception("%s failed", name)
