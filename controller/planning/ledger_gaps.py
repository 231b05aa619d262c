"""Changes the registry shows as applied that the ledger never recorded, pure.

The executor writes its apply record (`gitops.applied.<env>` = {commit, at} on the version it
put into the environment, mlflow_gitops.policy.evidence) right after the change, in the same
call sequence; the ledger record of that change is queued and written after it. A process
that dies with records queued therefore leaves applied records without a ledger record: a
gap, which this module names so that `audit verify` can fail on it.

An apply record matches a ledger record that put the same version of the same model into
the same environment from the same commit, taken within MATCH_WINDOW_MS after the apply
record's time (the ledger's time is taken a moment after the apply record's; a queued record
keeps the time of its change). The registry keeps only the latest apply record per version
and environment, so only the latest apply of each version is checked. Apply records older
than the ledger's first record predate the ledger (a controller that ran before the ledger
was turned on): counted, not reported as gaps."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from mlflow_gitops.core.ledger import Record
from mlflow_gitops.core.model import Snapshot
from mlflow_gitops.policy import evidence

#: How long after an apply record's time its ledger record may be dated (the apply record is
#: written first; a slow registry can take a while between the two clock readings).
MATCH_WINDOW_MS = 600_000
#: How much earlier than the apply record its ledger record may be dated (rounding).
EARLY_MS = 1_000


@dataclass(frozen=True)
class AppliedChange:
    """An apply record as the registry holds it."""

    registry: str
    environment: str
    name: str
    version: int
    commit: str
    at_ms: int

    def describe(self) -> str:
        at = datetime.fromtimestamp(self.at_ms / 1000, timezone.utc)
        return (f"{self.name} v{self.version} applied to {self.environment} at "
                f"{at:%Y-%m-%d %H:%M:%S} UTC by commit {self.commit[:12] or '-'}")


@dataclass(frozen=True)
class Gaps:
    """What the comparison found: the unrecorded changes, and how many were checked."""

    missing: tuple[AppliedChange, ...]
    checked: int
    before_ledger: int  # apply records older than the ledger's first record

    def messages(self) -> list[str]:
        return [f"gap: {a.describe()} has no ledger record" for a in self.missing]


def applied_changes(snapshot: Snapshot, environments: Iterable[str]) -> list[AppliedChange]:
    """Every genuine apply record in `snapshot` for these environments."""
    out = []
    envs = sorted(set(environments))
    for model in snapshot.models.values():
        for version in model.versions.values():
            for env in envs:
                stint = evidence.read(version, env)
                if stint is not None:
                    out.append(AppliedChange(snapshot.registry, env, model.name,
                                             version.version, stint.commit,
                                             int(round(stint.entered * 1000))))
    return sorted(out, key=lambda a: (a.at_ms, a.environment, a.name, a.version))


def find_gaps(applied: Iterable[AppliedChange], records: Iterable[Record]) -> Gaps:
    """The apply records with no matching ledger record (see the module's docstring)."""
    times: Mapping[tuple[str, str, int, str], list[int]] = defaultdict(list)
    first: int | None = None
    for record in records:
        e = record.entry
        first = e.at_ms if first is None else min(first, e.at_ms)
        if e.entering and e.to_version is not None:
            times[(e.environment, e.name, e.to_version, e.commit)].append(e.at_ms)
    missing, checked, before = [], 0, 0
    for change in applied:
        if first is None or change.at_ms < first - EARLY_MS:
            before += 1
            continue
        checked += 1
        found = times.get((change.environment, change.name, change.version, change.commit), [])
        if not any(change.at_ms - EARLY_MS <= t <= change.at_ms + MATCH_WINDOW_MS
                   for t in found):
            missing.append(change)
    return Gaps(tuple(missing), checked, before)
