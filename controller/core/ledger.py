"""The ledger's values: one record per change written to a registry (what was live when, and
why), chained by hashes so a deleted, edited or reordered record is detected.

An `Entry` is what a writer knows when a change has been applied; the ledger turns it into
a `Record` by giving it the next sequence number and the hash of the record before it. Only
ints and strings: a record read back from MLflow (where every value is a string) hashes to
exactly what was written. Types only; the chain and the metrics live in
mlflow_gitops.planning.ledger and mlflow_gitops.planning.delivery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Why a change was written: a git change (controller or `apply`), drift reverted, a return
#: to a version served before (automatic after a failed verification, or a reverting commit),
#: a verification outcome, a model that left a pruning file, a copy across registries.
Reason = Literal["merge", "heal", "rollback", "verification", "prune", "copy"]
REASONS: tuple[Reason, ...] = ("merge", "heal", "rollback", "verification", "prune", "copy")

#: What was written. Entering actions put `to_version` into the environment; leaving ones
#: take `from_version` out; `verified`/`verify_failed` record an outcome and change nothing;
#: `copy` created `version` in this registry.
Action = Literal["promote", "set_alias", "archive", "unstage", "delete_alias", "verified",
                 "verify_failed", "copy"]
ENTERING: frozenset[str] = frozenset({"promote", "set_alias"})
LEAVING: frozenset[str] = frozenset({"archive", "unstage", "delete_alias"})

Kind = Literal["model", "prompt"]

#: Longest `detail` kept (an MLflow tag value holds far more; a ledger stays small).
DETAIL_LIMIT = 500


@dataclass(frozen=True)
class Entry:
    """One change as its writer knows it right after the registry accepted it."""

    registry: str
    environment: str
    name: str  # the registered model (or prompt)
    action: Action
    version: int  # the version the write touched
    from_version: int | None  # what the environment served before (None: nothing)
    to_version: int | None  # what it serves after this write (None: nothing)
    commit: str  # the commit the change came from ("" where none: a heal of no entry)
    merged_by: str  # the commit's author/merger as git knows it ("" when unknown)
    at_ms: int  # the controller's clock (epoch ms) right after the write succeeded
    reason: Reason
    kind: Kind = "model"
    version_created_ms: int | None = None  # the registry's creation time of `version`
    detail: str = ""  # e.g. the failing measurement of a verification

    @property
    def entering(self) -> bool:
        return self.action in ENTERING

    @property
    def leaving(self) -> bool:
        return self.action in LEAVING


@dataclass(frozen=True)
class Record:
    """An entry as the ledger holds it: position, link to the previous record, own hash."""

    entry: Entry
    seq: int  # 1, 2, 3, ... in the order records were appended
    prev_hash: str  # the hash of record seq-1 ("" for the first)
    hash: str  # sha256 of the canonical form of everything above
    writer: str = ""  # which controller replica (or `apply` run) appended it
    ref: str = ""  # where the store keeps it (an MLflow run id); not hashed

    @property
    def at_ms(self) -> int:
        return self.entry.at_ms


@dataclass(frozen=True)
class Head:
    """The last record a writer chains onto: its sequence number and hash (0, "" if none)."""

    seq: int = 0
    hash: str = ""


@dataclass(frozen=True)
class Query:
    """Which records to read: every field narrows; None means any. Times are epoch ms of the
    controller's clock (`since_ms` inclusive, `until_ms` inclusive)."""

    environment: str | None = None
    name: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    newest_first: bool = False
    limit: int | None = None  # stop after this many records
