"""The trigger endpoints: what `POST /webhook`, `POST
/webhook/mlflow` and `POST /sync` accept, and where the trigger goes.

- `/webhook`: GitHub (`X-Hub-Signature-256`) or GitLab (`X-Gitlab-Token`), secret from
  `--webhook-secret-file`.
- `/webhook/mlflow`: MLflow 3.x registry webhooks (`X-MLflow-Signature`, fresh
  `X-MLflow-Timestamp`), secret from `--mlflow-webhook-secret-file`; an alias moved or a tag
  set by hand in MLflow is seen in seconds instead of at the next poll.
- `/sync`: `Authorization: Bearer <token>` from `--sync-token-file`, for `mlflow-gitops
  sync` (as `flux reconcile` / `argocd app sync`), so nobody forges a GitHub signature.

Each is verified here first (401 and nothing triggered when it fails; an endpoint without a
secret is closed). Then, on the leader, the loop is triggered (202). A standby forwards the
verified request unchanged to the leader's address read from the Lease (loop.leader,
`holder_url`) and relays the answer, so a webhook that the Service sent to the standby is
applied as fast as one that reached the leader; a forwarded request is never forwarded
again. No secret, header value or query string is ever logged."""

from __future__ import annotations

import hmac
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mlflow_gitops.loop import webhook

log = logging.getLogger("mlflow_gitops.adapters.http")

ROUTES = ("/webhook", "/webhook/mlflow", "/sync")
FORWARDED = "X-Mlflow-Gitops-Forwarded"
FORWARD_TIMEOUT = 5.0
#: What a forwarded request carries over: the signatures must verify on the leader too.
_KEPT = ("content-type", "x-hub-signature-256", "x-github-event", "x-github-delivery",
         "x-gitlab-token", "x-gitlab-event", "x-mlflow-signature", "x-mlflow-timestamp",
         "x-mlflow-delivery-id", "authorization")
_FLAGS = {"/webhook": "--webhook-secret-file", "/webhook/mlflow": "--mlflow-webhook-secret-file",
          "/sync": "--sync-token-file"}


@dataclass
class Inbound:
    """Verifies and routes triggers; `leader_url()` is None on the leader (or without
    election), "" on a standby that does not know where the leader is, else its URL."""

    trigger: Callable[[str], None]
    webhook_secret: bytes | None = field(default=None, repr=False)
    mlflow_secret: bytes | None = field(default=None, repr=False)
    sync_token: bytes | None = field(default=None, repr=False)
    leader_url: Callable[[], str | None] = lambda: None
    clock: Callable[[], float] = time.time
    deliveries: webhook.DeliveryLedger = field(default_factory=webhook.DeliveryLedger)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def handle(self, route: str, headers: Mapping[str, str], body: bytes,
               client: str) -> tuple[int, bytes]:
        """(HTTP status, plain-text answer) for a POST to one of ROUTES."""
        refused = self._verify(route, headers, body)
        if refused is not None:
            log.warning("rejected POST %s: %s", route, refused,
                        extra={"fields": {"client": client}})
            return 401, (refused + "\n").encode()
        lowered = {k.lower(): v for k, v in headers.items()}
        if route == "/webhook" and lowered.get("x-github-event") == "ping":
            return 200, b"pong\n"
        target = None if lowered.get(FORWARDED.lower()) else self.leader_url()
        if target == "":
            return 503, b"standby: the leader's address is not known yet; retry shortly\n"
        if target:
            return self._forward(target, route, lowered, body)
        if route == "/webhook/mlflow":
            seen = self._admit(lowered)
            if seen is not None:
                return seen
        self.trigger(route)
        log.info("%s accepted: reconcile requested", route,
                 extra={"fields": {"forwarded": bool(lowered.get(FORWARDED.lower()))}})
        return 202, b"reconcile requested\n"

    def _admit(self, headers: Mapping[str, str]) -> tuple[int, bytes] | None:
        """None for a delivery id not seen within the window (now remembered). A replay is
        answered 200 without a trigger: MLflow counts any 2xx as delivered, so a genuine
        retry of a delivery already accepted stops there too, and the replayer learns
        nothing it did not know."""
        delivery = headers.get(webhook.MLFLOW_DELIVERY_ID, "").strip()
        stamp = float(headers.get(webhook.MLFLOW_TIMESTAMP, "0").strip())
        with self._lock:
            seen = self.deliveries.admit(delivery, stamp, self.clock())
        if seen == "replay":
            log.warning("POST /webhook/mlflow: delivery already received; ignored (replay)",
                        extra={"fields": {"delivery_id": delivery[:80]}})
            return 200, b"delivery already received; nothing triggered\n"
        if seen == "full":
            log.warning("POST /webhook/mlflow: too many deliveries within 5 minutes; refused")
            return 503, b"too many deliveries within 5 minutes; retry later\n"
        return None

    def _verify(self, route: str, headers: Mapping[str, str], body: bytes) -> str | None:
        secret = {"/webhook": self.webhook_secret, "/webhook/mlflow": self.mlflow_secret,
                  "/sync": self.sync_token}[route]
        if not secret:
            return f"{route} disabled: the controller has no {_FLAGS[route]}"
        if route == "/webhook":
            ok = webhook.verify(dict(headers), body, secret)
            return None if ok else "bad or missing signature"
        if route == "/webhook/mlflow":
            return webhook.verify_mlflow(headers, body, secret, self.clock())
        given = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                token.strip().encode("utf-8", "replace"), secret):
            return "missing or wrong bearer token"
        return None

    def _forward(self, leader: str, route: str, headers: Mapping[str, str],
                 body: bytes) -> tuple[int, bytes]:
        kept = {name: headers[name] for name in _KEPT if name in headers}
        request = urllib.request.Request(leader.rstrip("/") + route, data=body, method="POST",
                                         headers={**kept, FORWARDED: "1"})
        try:
            with urllib.request.urlopen(request, timeout=FORWARD_TIMEOUT) as answer:
                code, text = answer.status, answer.read(4096)
        except urllib.error.HTTPError as exc:
            code, text = exc.code, exc.read(4096)
        except (OSError, ValueError) as exc:
            log.warning("could not forward POST %s to the leader: %s", route,
                        type(exc).__name__, extra={"fields": {"leader": leader}})
            return 503, b"standby: the leader could not be reached; retry shortly\n"
        log.info("forwarded POST %s to the leader (%s)", route, code,
                 extra={"fields": {"leader": leader}})
        return code, text


def request_sync(controller: str, token: str, timeout: float = 10.0) -> tuple[int, str]:
    """POST /sync to a running controller (`mlflow-gitops sync`); (status, answer text)."""
    request = urllib.request.Request(controller.rstrip("/") + "/sync", data=b"{}",
                                     method="POST", headers={
                                         "Authorization": f"Bearer {token}",
                                         "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read(4096).decode("utf-8", "replace").strip()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(4096).decode("utf-8", "replace").strip()
