"""The FeedbackPort for the controller: commit statuses to GitHub or GitLab and
notifications to the configured receivers, each through its own background Outbox (one per
receiver, so a receiver that hangs delays only its own deliveries), so a pass only ever
queues. Built from the config; every secret it reads (the forge token, Slack
URLs, HMAC keys) is handed to the log redactor and kept out of reprs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from mlflow_gitops.adapters import notify
from mlflow_gitops.adapters.config import CommitStatusConfig, ControllerConfig, ForgeConfig
from mlflow_gitops.adapters.forge import StatusTarget, post_commit_status
from mlflow_gitops.adapters.forge_target import ForgeTarget, configured, resolve
from mlflow_gitops.adapters.outbox import Outbox
from mlflow_gitops.adapters.secrets import secret_file
from mlflow_gitops.core.feedback import CommitStatus, Notification

log = logging.getLogger(__name__)

RECEIVER_QUEUE = 500  # notifications waiting per receiver; beyond, the oldest is dropped


class FeedbackSender:
    """Queues commit statuses and notifications; delivery happens on worker threads."""

    def __init__(self, target: StatusTarget | None, receivers: list[notify.Receiver],
                 retry_base: float = 1.0) -> None:
        self.target = target
        self.receivers = receivers
        self.statuses: Outbox[CommitStatus] | None = None
        if target is not None:
            self.statuses = Outbox("commit-status", lambda s: post_commit_status(target, s),
                                   base=retry_base).start()
        # One worker and one bounded queue per receiver: a receiver that hangs for its whole
        # timeout on every event only ever delays its own queue (which then drops its oldest).
        self.notifications: list[Outbox[Notification]] = [
            Outbox(f"notifications-{index}", _sender(receiver), base=retry_base,
                   capacity=RECEIVER_QUEUE).start()
            for index, receiver in enumerate(receivers)]

    def commit_status(self, status: CommitStatus) -> None:
        if self.statuses is not None:
            # A newer status of the same (commit, context) supersedes one still queued.
            self.statuses.put(status, f"status {status.context}={status.state} on "
                              f"{status.sha[:12]}", group=f"{status.sha}/{status.context}")

    def notify(self, notification: Notification) -> None:
        for receiver, outbox in zip(self.receivers, self.notifications, strict=True):
            if notification.event in receiver.events:
                outbox.put(notification, f"{notification.event} to the {receiver.name}")

    def stop(self, timeout: float = 5.0) -> None:
        outboxes = [self.statuses, *self.notifications]
        deadline = time.monotonic() + timeout
        for outbox in outboxes:  # one shared deadline: a hung receiver does not multiply it
            if outbox is not None:
                outbox.stop(max(0.1, deadline - time.monotonic()))


def _sender(receiver: notify.Receiver) -> Callable[[Notification], None]:
    return lambda n: notify.send(receiver, n)


def _read(path: str, what: str) -> str:
    return secret_file(path, what)


def status_target(config: CommitStatusConfig, repo_url: str,
                  forge: ForgeTarget | None = None) -> StatusTarget:
    """Where statuses go: `forge` (the `forge:` section), else what an old-style
    `commit_status:` names itself."""
    if forge is None:
        forge = resolve(config.legacy_forge or ForgeConfig(), repo_url, "commit_status")
    return StatusTarget(forge.remote, forge.api_url, forge.token, config.target_url)


def build(config: ControllerConfig, repo_url: str,
          add_secret: Callable[[str], None]) -> FeedbackSender | None:
    """The sender for `config`, or None when neither statuses nor notifications are set."""
    target = None
    statuses = config.commit_status or (CommitStatusConfig() if config.forge else None)
    if statuses is not None and statuses.enabled:
        target = status_target(statuses, repo_url, configured(config, repo_url))
        add_secret(target.token)
    receivers = []
    for i, n in enumerate(config.notifications):
        url = n.url if n.url is not None else _read(n.url_file or "",
                                                   f"notifications[{i}].url_file")
        if n.url_file is not None:
            add_secret(url)
            parts = urlsplit(url)  # HTTP client debug lines show the path without the host
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            if len(path) > 8:  # never mask a bare "/" everywhere
                add_secret(path)
        secret = _read(n.secret_file, f"notifications[{i}].secret_file").encode() \
            if n.secret_file else None
        if secret:
            add_secret(secret.decode())
        receivers.append(notify.Receiver(url, n.format, frozenset(n.events), secret))
    if target is None and not receivers:
        return None
    log.info("feedback configured", extra={"fields": {
        "commit_status": f"{target.remote.label} {target.remote.owner}/{target.remote.repo}"
        if target else None, "receivers": [r.name for r in receivers]}})
    return FeedbackSender(target, receivers)
