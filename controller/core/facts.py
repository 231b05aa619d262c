"""What a pass knows of the world, read once in its first phase (mlflow_gitops.loop.facts)
and handed to the pure phases after it: the registries' snapshots, which registries could
not be read, the source-run metrics the policy's gates need, and the clock. Planning and
the policy read these values and never a port. Types only.

To add a fact: a field here, read in `mlflow_gitops.loop.facts`, used where the plan or
the policy needs it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mlflow_gitops.core.model import Snapshot, frozen_map
from mlflow_gitops.core.trust import EntryTrust

#: (registry, run id): one source run, in the registry that tracks it.
RunKey = tuple[str, str]

#: (environment, entry key, version the file assigns, a rollback): one change trust at
#: apply judges. A rollback needs signatures only, so it is read without approvals.
TrustKey = tuple[str, str, int, bool]


@dataclass(frozen=True)
class RunRead:
    """A run's metrics as read in the facts phase, or why they could not be."""

    metrics: Mapping[str, float] | None
    error: str = ""


@dataclass(frozen=True)
class PassFacts:
    snapshots: Mapping[str, Snapshot]
    registry_errors: Mapping[str, str] = field(default_factory=frozen_map)
    now: float = 0.0  # epoch seconds: the pass's one reading of the clock
    runs: Mapping[RunKey, RunRead] = field(default_factory=frozen_map)
    #: trust at apply's facts about each change into a guarded environment the planner
    #: judges (read by the controller only; empty for `plan`, `apply` and `diff`)
    trust: Mapping[TrustKey, EntryTrust] = field(default_factory=frozen_map)
