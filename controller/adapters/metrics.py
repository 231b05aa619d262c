"""The controller's Prometheus metrics, behind methods the loop calls.

Everything lives on a dedicated CollectorRegistry, not prometheus_client's global one, so
two controllers in one test process never share counters and `/metrics` shows only ours.
The loop speaks in events (a reconcile finished, a transition was applied, the commit
changed); this module decides how they map onto counters, gauges and labels.

Also exposed: `process_*` (CPU, memory, open files) and `python_*` (interpreter, garbage
collector) as every Prometheus client does, and `mlflow_gitops_build_info{version,python}`
at 1. No `*_created` series: prometheus_client's `disable_created_metrics()` is called once at
import, as they double the series count and no dashboard or alert of ours reads them."""

from __future__ import annotations

import contextlib
import platform
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from mlflow_gitops import __version__
from mlflow_gitops.core.states import RESULTS as STATE_RESULTS
from mlflow_gitops.core.states import STATES
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

disable_created_metrics()

#: A pass's result: `waiting` (a soak or a window), `held` and `refused` are not errors,
#: so an error-rate alert does not fire on a promotion that only waits.
RESULTS = (*STATE_RESULTS, "invalid", "skipped")
# Reconciles range from a no-op (milliseconds) to a large registry snapshot (minutes).
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class Metrics:
    """Every metric on one private registry; thread-safe like prometheus_client."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._reconciles = Counter(
            "mlflow_gitops_reconcile_total", "Reconcile passes by result.", ["result"],
            registry=r)
        self._duration = Histogram(
            "mlflow_gitops_reconcile_duration_seconds", "Duration of a reconcile pass.",
            buckets=DURATION_BUCKETS, registry=r)
        self._transitions = Counter(
            "mlflow_gitops_transitions_total",
            "Changes applied to the registry, by environment and action.",
            ["environment", "action"], registry=r)
        self._out_of_sync = Gauge(
            "mlflow_gitops_out_of_sync", "Models not Synced, by environment.",
            ["environment"], registry=r)
        self._last_applied = Gauge(
            "mlflow_gitops_last_applied_timestamp_seconds",
            "Unix time of the last reconcile that applied a commit.", registry=r)
        self._commit = Gauge(
            "mlflow_gitops_git_commit_info", "The branch tip commit last seen (value 1).",
            ["sha"], registry=r)
        self._leader = Gauge(
            "mlflow_gitops_leader", "1 while this replica holds the leader lease.", registry=r)
        self._invalid = Gauge(
            "mlflow_gitops_invalid_commit",
            "1 while the branch tip is invalid and the last good state stays in force.",
            registry=r)
        self._states = Gauge(
            "mlflow_gitops_entries", "Entries (environment x model) per state.",
            ["environment", "state"], registry=r)
        self._delivery = {
            "deployments": Gauge(
                "mlflow_gitops_deployments", "Deployments (versions put live by a merge) in "
                "the trailing window, from the ledger.", ["environment"], registry=r),
            "lead": Gauge(
                "mlflow_gitops_lead_time_seconds", "Lead time from model version creation to "
                "live over the trailing window (quantile 0.5 and 0.9).",
                ["environment", "quantile"], registry=r),
            "cfr": Gauge(
                "mlflow_gitops_change_failure_rate", "Deployments rolled back or failing "
                "verification, over deployments, in the trailing window.", ["environment"],
                registry=r),
            "restore": Gauge(
                "mlflow_gitops_time_to_restore_seconds", "Median time from a failed deployment "
                "to the next version live, in the trailing window.", ["environment"],
                registry=r),
        }
        self._ledger_pending = Gauge(
            "mlflow_gitops_ledger_pending_records", "Applied changes whose ledger record is "
            "not written yet (retried each pass).", registry=r)
        self._ledger_forks = Gauge(
            "mlflow_gitops_ledger_forks", "Forks of the ledger's chain this replica saw "
            "(two writers at once).", registry=r)
        self._delivery_envs: set[str] = set()
        build = Gauge("mlflow_gitops_build_info", "The running controller's version (value 1).",
                      ["version", "python"], registry=r)
        build.labels(version=__version__, python=platform.python_version()).set(1)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self._lock = threading.Lock()
        self._state_envs: set[str] = set()
        self._sha: str | None = None
        self._environments: set[str] = set()
        for result in RESULTS:  # exposed at 0 from the start, so rate() works at once
            self._reconciles.labels(result=result)

    def reconciled(self, result: str, seconds: float) -> None:
        """One reconcile pass ended with `result` (one of RESULTS)."""
        if result not in RESULTS:
            raise ValueError(f"unknown reconcile result {result!r}; expected one of {RESULTS}")
        self._reconciles.labels(result=result).inc()
        self._duration.observe(seconds)

    def transition(self, environment: str, action: str, count: int = 1) -> None:
        """`count` changes of kind `action` (e.g. transition_stage, set_alias) were applied."""
        self._transitions.labels(environment=environment, action=action).inc(count)

    def out_of_sync(self, counts: Mapping[str, int]) -> None:
        """Models not Synced per environment; environments absent from `counts` are dropped."""
        with self._lock:
            for gone in self._environments - set(counts):
                self._out_of_sync.remove(gone)
            for environment, count in counts.items():
                self._out_of_sync.labels(environment=environment).set(count)
            self._environments = set(counts)

    def states(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Entries per (environment, state); every state of a known environment is exposed
        (0 when empty) and environments no longer in `counts` are dropped."""
        environments = {environment for environment, _ in counts}
        with self._lock:
            for gone in self._state_envs - environments:
                for state in STATES:
                    self._states.remove(gone, state)
            for environment in environments:
                for state in STATES:
                    self._states.labels(environment=environment, state=state).set(
                        counts.get((environment, state), 0))
            self._state_envs = environments

    def applied(self, timestamp: float | None = None) -> None:
        """A commit was applied (now, or at `timestamp` seconds since the epoch)."""
        self._last_applied.set(time.time() if timestamp is None else timestamp)

    def commit(self, sha: str) -> None:
        """The branch tip is now `sha`: only that sha's series is exposed, at 1."""
        with self._lock:
            if self._sha is not None and self._sha != sha:
                self._commit.remove(self._sha)
            self._commit.labels(sha=sha).set(1)
            self._sha = sha

    def leader(self, is_leader: bool) -> None:
        self._leader.set(1 if is_leader else 0)

    def invalid_commit(self, invalid: bool) -> None:
        self._invalid.set(1 if invalid else 0)

    def delivery(self, rows: Sequence[Any]) -> None:
        """The four delivery metrics per environment (planning.delivery.DeliveryMetrics); a
        figure without data (no deployments, nothing restored) is not exposed."""
        with self._lock:
            for gone in self._delivery_envs:
                for name, gauge in self._delivery.items():
                    for q in (("0.5", "0.9") if name == "lead" else (None,)):
                        with contextlib.suppress(KeyError):
                            gauge.remove(gone, q) if q else gauge.remove(gone)
            for row in rows:
                env = row.environment
                self._delivery["deployments"].labels(environment=env).set(row.deployments)
                for q, value in (("0.5", row.lead_time_median), ("0.9", row.lead_time_p90)):
                    if value is not None:
                        self._delivery["lead"].labels(environment=env, quantile=q).set(value)
                if row.change_failure_rate is not None:
                    self._delivery["cfr"].labels(environment=env).set(row.change_failure_rate)
                if row.time_to_restore_median is not None:
                    self._delivery["restore"].labels(environment=env).set(
                        row.time_to_restore_median)
            self._delivery_envs = {row.environment for row in rows}

    def ledger(self, pending: int, forks: int) -> None:
        self._ledger_pending.set(pending)
        self._ledger_forks.set(forks)

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type, for `GET /metrics`."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
