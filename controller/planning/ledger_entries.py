"""Which ledger entries a pass's applied changes make, pure: one entry per change written to a
registry, plus one per version copied into a registry.

`from_version` and `to_version` describe the environment: what it served before the write
and after it. An alias move knows its previous version; a stage promotion takes it from the
live state read before the pass (the other version in that stage); a move out takes the
version out (to nothing)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mlflow_gitops.core.ledger import Entry, Reason
from mlflow_gitops.core.model import Snapshot
from mlflow_gitops.core.plan import Change

#: A change made because verification failed is the automatic rollback.
_REASONS: dict[str, Reason] = {"git": "merge", "drift": "heal", "prune": "prune",
                               "replaced": "merge", "verification": "rollback"}


def reason_of(change: Change) -> Reason:
    """A git change back to a version the environment served before is a rollback (the
    policy's note says so), and so is the automatic one after a failed verification."""
    if change.reason == "git" and change.note.startswith("rollback"):
        return "rollback"
    return _REASONS.get(change.reason, "merge")


def entry_for(change: Change, commit: str, at: float, snapshots: Mapping[str, Snapshot],
              merged_by: str = "") -> Entry:
    """The entry for `change`, applied at `at` (epoch s, the controller's clock)."""
    snapshot = snapshots.get(change.registry)
    live = snapshot.model(change.model) if snapshot is not None else None
    version = live.versions.get(change.version) if live is not None else None
    if change.action == "set_alias":
        before, after = change.previous_version, change.version
    elif change.action == "promote":
        others = live.in_stage(change.to_stage or "") if live is not None else ()
        before = max((v for v in others if v != change.version), default=None)
        after = change.version
    else:
        before, after = change.version, None
    return Entry(change.registry, change.environment, change.model, change.action,
                 change.version, before, after, commit, merged_by, int(at * 1000),
                 reason_of(change),
                 kind=getattr(change, "kind", "model"),  # prompts: Change.kind
                 version_created_ms=version.created_ms if version is not None else None,
                 detail=change.note)


def entries_for(applied: Iterable[tuple[Change, float]], commit: str,
                snapshots: Mapping[str, Snapshot], merged_by: str = "") -> list[Entry]:
    """One entry per applied (change, when), in the order they were written."""
    return [entry_for(change, commit, at, snapshots, merged_by) for change, at in applied]


def copy_entry(environment: str, registry: str, model: str, version: int, source: str,
               commit: str, at: float, merged_by: str = "") -> Entry:
    """A version copied into `registry` for `environment` (from `source`, "registry/model
    vN"): it serves nowhere yet; the promotion that follows has its own entry."""
    return Entry(registry, environment, model, "copy", version, None, None, commit,
                 merged_by, int(at * 1000), "copy", detail=f"copied from {source}")
