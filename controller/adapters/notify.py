"""Outgoing notifications: one POST per event to each receiver that asked for it.

- `format: slack`: a Slack incoming webhook, `POST <webhook URL>` with
  `Content-Type: application/json` and `{"text": "..."}`; Slack answers 200 `ok`, or 400
  `invalid_payload`, 403 `action_prohibited`, 404 `no_service`, 410 `channel_is_archived`.
  https://api.slack.com/messaging/webhooks and
  https://api.slack.com/messaging/webhooks#handling_errors. The webhook URL is itself the
  credential, so it is read from `url_file` and never logged (logs name the host only).
- `format: json`: the event as a JSON object (`event`, `commit`, `environment`, `model`,
  `state`, `message`, `until`, `changes`), signed when a `secret_file` is given:
  `X-Mlflow-Gitops-Signature: sha256=<hex HMAC-SHA256 of the exact body>`, as GitHub signs
  its webhooks (https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries).
  `X-Mlflow-Gitops-Event` names the event."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
from mlflow_gitops.core.errors import DeliveryError
from mlflow_gitops.core.feedback import Notification

TIMEOUT_SECONDS = 10.0
SIGNATURE_HEADER = "X-Mlflow-Gitops-Signature"
EVENT_HEADER = "X-Mlflow-Gitops-Event"
_ICONS = {"applied": ":white_check_mark:", "refused": ":no_entry:", "waiting": ":hourglass:",
          "held": ":double_vertical_bar:", "error": ":x:", "drift": ":warning:",
          "invalid_commit": ":x:"}


@dataclass(frozen=True)
class Receiver:
    url: str = field(repr=False)
    format: Literal["slack", "json"]
    events: frozenset[str]
    secret: bytes | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """What logs may say about this receiver: its scheme and host, never the path."""
        parts = urlsplit(self.url)
        return f"{self.format} receiver {parts.scheme}://{parts.hostname or '?'}"


def event_json(n: Notification) -> dict[str, Any]:
    until = None if n.until is None else \
        datetime.fromtimestamp(n.until, timezone.utc).isoformat(timespec="seconds")
    return {"event": n.event, "commit": n.commit, "environment": n.environment,
            "model": n.model, "state": n.state, "message": n.message, "until": until,
            "changes": list(n.changes)}


def slack_escape(text: str) -> str:
    """`&`, `<` and `>` as HTML entities, the three characters Slack parses as control
    sequences (https://api.slack.com/reference/surfaces/formatting#escaping): a model named
    `<!channel>` must not ping a channel, nor `<http://evil|click>` hide a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(n: Notification) -> str:
    """The Slack message; every part that comes from git or the registry (names, commit
    text, hold reasons, change lines) is escaped, only the icon and the event are ours."""
    where = f"{n.environment}/{n.model}" if n.model else (n.environment or "commit")
    head = f"{_ICONS.get(n.event, '')} *{n.event}* {slack_escape(where)} at " \
           f"`{slack_escape(n.commit[:12])}`"
    lines = [head.strip(), slack_escape(n.message),
             *[f"• {slack_escape(c)}" for c in n.changes]]
    return "\n".join(line for line in lines if line)


def request_for(receiver: Receiver, n: Notification) -> tuple[bytes, dict[str, str]]:
    """The exact body and headers sent to `receiver` for `n`."""
    payload = {"text": slack_text(n)} if receiver.format == "slack" else event_json(n)
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = {"Content-Type": "application/json", "User-Agent": "mlflow-gitops"}
    if receiver.format == "json":
        headers[EVENT_HEADER] = n.event
        if receiver.secret:
            digest = hmac.new(receiver.secret, body, hashlib.sha256).hexdigest()
            headers[SIGNATURE_HEADER] = f"sha256={digest}"
    return body, headers


def send(receiver: Receiver, n: Notification) -> None:
    """Deliver one notification; DeliveryError (never with the URL in it) when it fails."""
    body, headers = request_for(receiver, n)
    try:
        response = requests.post(receiver.url, data=body, headers=headers,
                                 timeout=TIMEOUT_SECONDS, allow_redirects=False)
    except requests.RequestException as exc:
        raise DeliveryError(f"cannot reach the {receiver.name} ({type(exc).__name__})") \
            from None  # the cause's text carries the URL, which may be a secret
    code = response.status_code
    if 200 <= code < 300:
        return
    said = response.text.strip()[:100] if receiver.format == "slack" else ""
    raise DeliveryError(f"the {receiver.name} answered {code}{': ' + said if said else ''}",
                        transient=code == 429 or code >= 500)
