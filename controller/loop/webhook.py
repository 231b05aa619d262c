"""Is this webhook request really from our forge?.

Pure so it can be tested without a server: headers, raw body and secret in, a bool out.
GitHub signs the body (`X-Hub-Signature-256: sha256=<hex HMAC-SHA256>`); GitLab sends the
shared secret itself (`X-Gitlab-Token`). Both are compared in constant time, and anything
missing or malformed is simply False: the caller answers 401 and triggers nothing.

MLflow 3.x registry webhooks (`POST /webhook/mlflow`) follow Standard Webhooks: headers
`X-MLflow-Delivery-Id`, `X-MLflow-Timestamp` (Unix seconds) and `X-MLflow-Signature` =
`v1,` + base64(HMAC-SHA256(secret, "{delivery_id}.{timestamp}.{body}")), exactly as
mlflow/webhooks/delivery.py `_generate_hmac_signature` computes it (the body is the UTF-8
JSON MLflow posts). A timestamp more than five minutes old or ahead is refused, and within
those five minutes each delivery id is accepted once (`DeliveryLedger`), so a captured
delivery cannot be replayed. https://mlflow.org/docs/latest/ml/webhooks/"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

GITHUB_HEADER = "x-hub-signature-256"
GITLAB_HEADER = "x-gitlab-token"
_GITHUB_PREFIX = "sha256="
MLFLOW_SIGNATURE = "x-mlflow-signature"
MLFLOW_TIMESTAMP = "x-mlflow-timestamp"
MLFLOW_DELIVERY_ID = "x-mlflow-delivery-id"
MLFLOW_TOLERANCE = 300.0  # seconds a delivery may be old (or ahead, for clock skew)


def verify(headers: Mapping[str, str], body: bytes, secret: bytes) -> bool:
    """True when a GitHub signature or a GitLab token in `headers` matches `secret`.

    Header names are matched case-insensitively. An empty secret never verifies, so a
    misconfigured controller fails closed."""
    if not secret:
        return False
    lowered = {name.lower(): value for name, value in headers.items()}
    signature = lowered.get(GITHUB_HEADER)
    if signature is not None:
        return _github_ok(signature, body, secret)
    token = lowered.get(GITLAB_HEADER)
    if token is not None:
        return hmac.compare_digest(token.strip().encode("utf-8"), secret)
    return False


def github_signature(body: bytes, secret: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub would send for `body` (tests, the demo)."""
    return _GITHUB_PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _github_ok(signature: str, body: bytes, secret: bytes) -> bool:
    signature = signature.strip()
    if not signature.lower().startswith(_GITHUB_PREFIX):
        return False
    expected = github_signature(body, secret)
    given = _GITHUB_PREFIX + signature[len(_GITHUB_PREFIX):].lower()
    return hmac.compare_digest(given.encode("ascii", "replace"), expected.encode("ascii"))


def mlflow_signature(secret: bytes, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The `X-MLflow-Signature` MLflow sends (tests, and the check below)."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify_mlflow(headers: Mapping[str, str], body: bytes, secret: bytes,
                  now: float) -> str | None:
    """None when this is a genuine, fresh MLflow delivery; else why not (for the 401 body
    and the log, never containing the secret)."""
    if not secret:
        return "no secret configured"
    lowered = {name.lower(): value for name, value in headers.items()}
    given = lowered.get(MLFLOW_SIGNATURE, "").strip()
    timestamp = lowered.get(MLFLOW_TIMESTAMP, "").strip()
    delivery_id = lowered.get(MLFLOW_DELIVERY_ID, "").strip()
    if not given or not timestamp or not delivery_id:
        return "missing X-MLflow-Signature, X-MLflow-Timestamp or X-MLflow-Delivery-Id"
    if len(delivery_id) > 128:
        return "malformed X-MLflow-Delivery-Id (longer than 128 characters)"
    if not timestamp.isdigit() or len(timestamp) > 12:
        return "malformed X-MLflow-Timestamp"
    if abs(now - int(timestamp)) > MLFLOW_TOLERANCE:
        return "stale or future X-MLflow-Timestamp (more than 5 minutes off)"
    expected = mlflow_signature(secret, delivery_id, timestamp, body)
    # Standard Webhooks allows several space-separated signatures; any may match.
    for candidate in given.split():
        if hmac.compare_digest(candidate.encode("ascii", "replace"), expected.encode("ascii")):
            return None
    return "bad signature"


class DeliveryLedger:
    """The MLflow delivery ids accepted within the acceptance window, so that the same
    captured delivery (id, timestamp and signature replayed unchanged) triggers one pass
    only: a timestamp check alone lets it through again and again for five minutes.

    An id is remembered until its timestamp leaves the window (it could not verify after
    that anyway), and at most `capacity` ids at once: when that many unexpired deliveries
    are held, a new one is refused (the caller answers 503 and MLflow retries) rather than
    forgetting one that could then be replayed. Only verified deliveries are recorded, so
    filling it takes the secret. Not thread-safe: the caller holds a lock."""

    def __init__(self, capacity: int = 10_000, window: float = MLFLOW_TOLERANCE) -> None:
        self.capacity = capacity
        self.window = window
        self._expires: dict[str, float] = {}  # delivery id → when it may be forgotten

    def admit(self, delivery_id: str, timestamp: float, now: float) -> str | None:
        """None when `delivery_id` is new (it is now remembered); else "replay" or "full"."""
        if len(self._expires) >= self.capacity:
            self._expires = {k: t for k, t in self._expires.items() if t > now}
        if delivery_id in self._expires:
            return "replay"
        if len(self._expires) >= self.capacity:
            return "full"
        self._expires[delivery_id] = timestamp + self.window + 1.0
        return None

    def __len__(self) -> int:
        return len(self._expires)
