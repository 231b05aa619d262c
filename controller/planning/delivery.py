"""The four delivery metrics for model versions, computed from ledger records. Pure.

Definitions (docs/ledger.md says the same in prose):
- a *deployment* is a record that put a version into an environment because of a git change
  (`promote` or `set_alias`, reason `merge`); rollbacks, heals and copies are not;
- *lead time* of a deployment: from the version's creation in the registry to the record's
  time (the controller's clock right after the write); median and 90th percentile (linear
  interpolation between the closest ranks);
- a deployment *failed* when, before the environment moved on to another version, its
  version failed verification (`verify_failed`) or the environment was rolled back (the next
  version to enter came with reason `rollback`); *change failure rate* = failed / deployments;
- *time to restore* a failed deployment: from its time to when the environment next served
  another version (the rollback, or a fix that went forward); median over the restored ones.
Only deployments inside the window count; what happened after them (a rollback) is read up
to the newest record given."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mlflow_gitops.core.ledger import Entry


@dataclass(frozen=True)
class DeliveryMetrics:
    environment: str
    model: str | None  # None: the whole environment
    deployments: int
    lead_time_median: float | None
    lead_time_p90: float | None
    change_failure_rate: float | None  # None: no deployments
    time_to_restore_median: float | None
    failures: int = 0
    restored: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "environment": self.environment,
            "deployments": self.deployments,
            "lead_time_seconds": {"median": self.lead_time_median, "p90": self.lead_time_p90},
            "change_failure_rate": self.change_failure_rate,
            "time_to_restore_seconds": {"median": self.time_to_restore_median},
            "failures": self.failures,
        }
        if self.model is not None:
            out = {"model": self.model, **out}
        return out


@dataclass(frozen=True)
class _Outcome:
    lead_seconds: float | None
    failed: bool
    restore_seconds: float | None


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation (numpy's default); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def outcomes(entries: Iterable[Entry], since_ms: int, until_ms: int,
             created_ms: Mapping[tuple[str, int], int] | None = None
             ) -> dict[tuple[str, str], list[_Outcome]]:
    """Each deployment inside [since_ms, until_ms] with its lead time and fate, by
    (environment, model). `created_ms` fills creation times the records lack."""
    created = created_ms or {}
    by_key: dict[tuple[str, str], list[Entry]] = defaultdict(list)
    for e in sorted(entries, key=lambda e: e.at_ms):
        by_key[(e.environment, e.name)].append(e)
    out: dict[tuple[str, str], list[_Outcome]] = {}
    for key, stream in by_key.items():
        results = []
        for i, e in enumerate(stream):
            if not (e.entering and e.reason == "merge" and since_ms <= e.at_ms <= until_ms):
                continue
            results.append(_fate(e, stream[i + 1:], created))
        if results:
            out[key] = results
    return out


def _fate(deployed: Entry, later: list[Entry], created: Mapping[tuple[str, int], int]
          ) -> _Outcome:
    version = deployed.to_version
    born = deployed.version_created_ms
    if born is None and version is not None:
        born = created.get((deployed.name, version))
    lead = max(0.0, (deployed.at_ms - born) / 1000) if born is not None else None
    failed = False
    for e in later:
        if e.action == "verify_failed" and e.version == version:
            failed = True
        if e.entering and e.to_version != version:
            failed = failed or e.reason == "rollback"
            restore = (e.at_ms - deployed.at_ms) / 1000 if failed else None
            return _Outcome(lead, failed, restore)
    return _Outcome(lead, failed, None)


def _summarize(environment: str, model: str | None, results: list[_Outcome]
               ) -> DeliveryMetrics:
    leads = [r.lead_seconds for r in results if r.lead_seconds is not None]
    restores = [r.restore_seconds for r in results if r.restore_seconds is not None]
    failures = sum(r.failed for r in results)
    return DeliveryMetrics(
        environment, model, len(results), percentile(leads, 50), percentile(leads, 90),
        failures / len(results) if results else None, percentile(restores, 50), failures,
        len(restores))


def report(entries: Iterable[Entry], since_ms: int, until_ms: int,
           created_ms: Mapping[tuple[str, int], int] | None = None,
           environments: Iterable[str] = ()
           ) -> list[tuple[DeliveryMetrics, list[DeliveryMetrics]]]:
    """Per environment (sorted), its metrics and its models' metrics. `environments` are
    listed even without deployments (zero, no figures)."""
    found = outcomes(entries, since_ms, until_ms, created_ms)
    names = sorted({env for env, _ in found} | set(environments))
    out = []
    for env in names:
        models = sorted((m, results) for (e, m), results in found.items() if e == env)
        every = [r for _, results in models for r in results]
        out.append((_summarize(env, None, every),
                    [_summarize(env, m, results) for m, results in models]))
    return out


def to_json(rows: list[tuple[DeliveryMetrics, list[DeliveryMetrics]]]) -> dict[str, Any]:
    """The report as `{"environments": [...]}`, each with its models under "models"."""
    return {"environments": [{**env.to_dict(), "models": [m.to_dict() for m in models]}
                             for env, models in rows]}
