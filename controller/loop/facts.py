"""The first phase of a pass: every read the pass needs, once, through the ports: the
snapshots of what the desired state manages, the source-run metrics the policy's gates may
judge, and the clock. The phases after it (routing, planning, the policy) are pure and read
only the `PassFacts` value this returns.

To add a fact: a field of mlflow_gitops.core.facts.PassFacts, read here."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping

from mlflow_gitops.core.errors import RegistryError
from mlflow_gitops.core.facts import PassFacts, RunKey, RunRead
from mlflow_gitops.core.model import DesiredState, Snapshot, frozen_map
from mlflow_gitops.core.ports import RegistryPort
from mlflow_gitops.desired.managed import read_sets
from mlflow_gitops.policy import controls
from mlflow_gitops.policy.facts import runs_needed


def gather(desired: DesiredState, registries: Mapping[str, RegistryPort], *,
           gates: bool = True, clock: Callable[[], float] = time.time) -> PassFacts:
    """The pass's facts. `gates`: read the run metrics the policy's metric gates need.
    A rejection is followed across registry copies here, once, so that every phase after
    (routing's copies, the planner, verification's rollback) sees a copy of a rejected
    version as rejected."""
    read, errors = read_live(registries, desired)
    snapshots = dict(controls.follow_rejections(read))
    runs = read_runs(runs_needed(desired, snapshots), registries) if gates else {}
    return PassFacts(frozen_map(snapshots), frozen_map(errors), clock(), frozen_map(runs))


def read_live(registries: Mapping[str, RegistryPort], desired: DesiredState
              ) -> tuple[dict[str, Snapshot], dict[str, str]]:
    """Snapshot what `desired` manages in each registry (desired.managed: the listed models
    and what prune needs, never the whole registry); an unreachable registry is an error
    for its models only."""
    snapshots: dict[str, Snapshot] = {}
    errors: dict[str, str] = {}
    for name, reads in read_sets(desired).items():
        try:
            snapshots[name] = registries[name].snapshot(reads.names, reads.owned_by)
        except RegistryError as exc:
            errors[name] = str(exc)
    return snapshots, errors


def read_runs(keys: Collection[RunKey], registries: Mapping[str, RegistryPort],
              known: Mapping[RunKey, RunRead] | None = None) -> dict[RunKey, RunRead]:
    """The metrics of each run in `keys` not already in `known` (each run read once), and
    `known`'s; a run that cannot be read says why."""
    out = dict(known or {})
    for registry, run_id in sorted(set(keys) - set(out)):
        port = registries.get(registry)
        if port is None:
            out[(registry, run_id)] = RunRead(None, f"registry '{registry}' is not configured")
            continue
        try:
            out[(registry, run_id)] = RunRead(dict(port.run_metrics(run_id)))
        except RegistryError as exc:
            out[(registry, run_id)] = RunRead(None, str(exc))
    return out
