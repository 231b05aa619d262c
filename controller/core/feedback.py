"""What the controller tells people outside its logs, as values: a commit status
for one environment on one commit, and a notification of one event. The loop decides them
(mlflow_gitops.loop.feedback); adapters deliver them (forge commit statuses, webhooks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: The forge-neutral status: GitHub `pending|success|failure`, GitLab
#: `pending|success|failed` (adapters.forge maps the names).
StatusState = Literal["pending", "success", "failure"]
#: The events a notification receiver can ask for.
EventKind = Literal["applied", "refused", "waiting", "held", "error", "drift", "invalid_commit",
                    "verified", "rolled_back"]
EVENT_KINDS: tuple[EventKind, ...] = ("applied", "refused", "waiting", "held", "error", "drift",
                                      "invalid_commit", "verified", "rolled_back")


@dataclass(frozen=True)
class CommitStatus:
    """`state` for context `mlflow-gitops/<environment>` on commit `sha`; `word` is the
    controller's own name for it (Applying, Synced, Waiting, Held, Refused, Error, …)."""

    sha: str
    environment: str
    state: StatusState
    word: str
    description: str

    @property
    def context(self) -> str:
        return f"mlflow-gitops/{self.environment}"


@dataclass(frozen=True)
class Notification:
    """One event for one (commit, environment, model); model "" for a whole commit."""

    event: EventKind
    commit: str
    environment: str
    model: str
    state: str  # the entry's state when it was sent
    message: str
    until: float | None = None  # Waiting: when it expects to proceed, epoch seconds
    changes: tuple[str, ...] = ()  # applied / drift: what was changed, one line each
