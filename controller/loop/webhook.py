"""Is this webhook request really from our forge? (SPEC §6 "Triggers").

Pure so it can be tested without a server: headers, raw body and secret in, a bool out.
GitHub signs the body (`X-Hub-Signature-256: sha256=<hex HMAC-SHA256>`); GitLab sends the
shared secret itself (`X-Gitlab-Token`). Both are compared in constant time, and anything
missing or malformed is simply False: the caller answers 401 and triggers nothing."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from pathlib import Path

GITHUB_HEADER = "x-hub-signature-256"
GITLAB_HEADER = "x-gitlab-token"
_GITHUB_PREFIX = "sha256="


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


def secret_from_file(path: str | Path) -> bytes:
    """The secret stored in `path` (a mounted Kubernetes Secret), without trailing newlines."""
    return Path(path).read_bytes().rstrip(b"\r\n")


def _github_ok(signature: str, body: bytes, secret: bytes) -> bool:
    signature = signature.strip()
    if not signature.lower().startswith(_GITHUB_PREFIX):
        return False
    expected = github_signature(body, secret)
    given = _GITHUB_PREFIX + signature[len(_GITHUB_PREFIX):].lower()
    return hmac.compare_digest(given.encode("ascii", "replace"), expected.encode("ascii"))
