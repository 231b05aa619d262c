"""What the core needs from the outside world, as protocols. Adapters implement them; tests
of pure code implement them in memory (tests/support/memory_registry.py)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Protocol

from mlflow_gitops.core.facts import PassFacts
from mlflow_gitops.core.feedback import CommitStatus, Notification
from mlflow_gitops.core.ledger import Entry, Head, Query, Record
from mlflow_gitops.core.model import (
    Check,
    DesiredState,
    Environment,
    LiveModel,
    LiveVersion,
    Snapshot,
)
from mlflow_gitops.core.plan import Verdict
from mlflow_gitops.core.trust import EntryTrust

#: The policy's answer for one promotion: may `version` of `model` (a version of the live
#: model) enter the environment? (mlflow_gitops.policy builds one per pass.)
GateCheck = Callable[[Environment, str, int, LiveModel], Verdict]


class RegistryPort(Protocol):
    """One MLflow model registry. Every method raises mlflow_gitops.core.errors.RegistryError."""

    name: str

    def snapshot(self, names: Collection[str], owned_by: Collection[str] = ()) -> Snapshot:
        """The models called `names` (those that exist) and every model with a version that
        carries the ownership tag of an environment in `owned_by` (what prune needs), each
        with all its versions, stages, tags and aliases, read in bulk. The
        registry's other models are not read: the cost grows with the managed set only."""
        ...

    def transition_stage(self, model: str, version: int, stage: str) -> None: ...

    def set_alias(self, model: str, alias: str, version: int) -> None: ...

    def delete_alias(self, model: str, alias: str) -> None: ...

    def set_version_tag(self, model: str, version: int, key: str, value: str) -> None: ...

    def delete_version_tag(self, model: str, version: int, key: str) -> None:
        """Remove a model-version tag; NotFound when the version does not exist."""
        ...

    def set_model_tag(self, model: str, key: str, value: str) -> None:
        """Set a registered-model tag (e.g. the emergency hold); NotFound for no such model."""
        ...

    def delete_model_tag(self, model: str, key: str) -> None: ...

    def run_metrics(self, run_id: str) -> Mapping[str, float]:
        """Latest value of every metric of a run (policy gates, diff)."""
        ...

    def prepare_writes(self) -> None:
        """Load what the first write would otherwise load (a client library), now: the
        controller calls it once at start, before any second thread writes."""
        ...

    def copy_version(self, source: RegistryPort, model: str, version: int, dst_model: str,
                     tags: Mapping[str, str]) -> LiveVersion:
        """Copy `model` v`version` of `source` here as a new version of `dst_model`, with
        `tags` set in the creating call; InvalidRequest where this registry cannot."""
        ...


class VerificationPort(Protocol):
    """The verification sources `verify:` checks query (adapters.verification.Sources)."""

    def measure(self, check: Check, values: Mapping[str, str]) -> tuple[float | None, str]:
        """The check's value now with `values` ({model}, {version}, {environment}) filled
        in, or (None, why): no data or the source down. Never raises."""
        ...


class TrustPort(Protocol):
    """The facts trust at apply judges (mlflow_gitops.policy.trust): never raises; a fact
    that cannot be read is an `EntryTrust` with `error` (and when it is read again)."""

    def entry_trust(self, environment: Environment, key: str, version: int, commit: str,
                    approvals: bool = True) -> EntryTrust:
        """About the change that made `environment`'s file assign `version` to the entry
        `key` as of `commit`: the commit that last changed that entry, the branch's commit
        that brought it, their signatures and (unless `approvals` is False, e.g. for a
        rollback) the pull request's approvals."""
        ...


class ProposerPort(Protocol):
    """A proposal round: new qualifying versions become pull requests.
    Raises mlflow_gitops.core.errors.GitOpsError when git, the forge or a registry fails."""

    def run(self) -> list[str]:
        """One line per (environment, model) saying what was proposed, or why nothing."""
        ...


class MetricsPort(Protocol):
    """What the loop reports; the adapter decides counters, gauges and labels."""

    def reconciled(self, result: str, seconds: float) -> None:
        """result: success, waiting, held, refused, error, invalid or skipped."""
        ...

    def transition(self, environment: str, action: str, count: int = 1) -> None: ...

    def out_of_sync(self, counts: Mapping[str, int]) -> None: ...

    def states(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Entries per (environment, state), every environment of the desired state."""
        ...

    def applied(self, timestamp: float | None = None) -> None: ...

    def commit(self, sha: str) -> None: ...

    def leader(self, is_leader: bool) -> None: ...

    def invalid_commit(self, invalid: bool) -> None: ...


class FeedbackPort(Protocol):
    """Delivers feedback in the background: both methods return at once, never
    raise and never block a pass; delivery is retried with backoff by the adapter."""

    def commit_status(self, status: CommitStatus) -> None: ...

    def notify(self, notification: Notification) -> None: ...


#: Builds one pass's GateCheck from that pass's desired state and facts (read beforehand,
#: mlflow_gitops.core.facts); None = no gates. Pure: it reads no port.
PolicyFactory = Callable[[DesiredState, PassFacts], GateCheck | None]


class LedgerStore(Protocol):
    """Where one registry's ledger records live (adapters.mlflow.ledger: an MLflow
    experiment). Reads raise mlflow_gitops.core.errors.RegistryError."""

    def head(self) -> Head:
        """The record to chain onto (the furthest of the stored head and the newest record)."""
        ...

    def write(self, records: Sequence[Record]) -> tuple[int, str | None]:
        """Append in order: how many were written, and the error that stopped the rest."""
        ...

    def at_seq(self, seq: int) -> list[Record]:
        """Every record that claims `seq` (more than one: two writers forked the chain)."""
        ...

    def iter(self, query: Query) -> Iterator[Record]: ...


class LedgerSink(Protocol):
    """What every writer to a registry calls once a change is in (mlflow_gitops.loop.ledger
    implements it): returns at once, never raises, never undoes or blocks the change; a record
    that cannot be written now is kept and retried, and the backlog is visible."""

    def record(self, entries: Sequence[Entry]) -> None: ...
