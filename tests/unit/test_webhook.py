"""Webhook verification: GitHub HMAC signatures and GitLab tokens."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from mlflow_gitops.adapters.secrets import read_secret
from mlflow_gitops.loop.webhook import github_signature, verify

SECRET = b"s3cret-value"
BODY = b'{"ref": "refs/heads/main"}'


def _github(body: bytes, secret: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def test_good_github_signature_verifies() -> None:
    """A GitHub HMAC-SHA256 of the raw body with the shared secret is accepted."""
    assert verify({"X-Hub-Signature-256": _github(BODY, SECRET)}, BODY, SECRET)


def test_github_header_name_is_case_insensitive() -> None:
    """Header names match whatever their case, as HTTP says they should."""
    assert verify({"x-hub-signature-256": _github(BODY, SECRET)}, BODY, SECRET)
    assert verify({"X-HUB-SIGNATURE-256": _github(BODY, SECRET)}, BODY, SECRET)


def test_github_signature_over_other_body_is_rejected() -> None:
    """A signature of a different body (a replayed or altered payload) is rejected."""
    assert not verify({"X-Hub-Signature-256": _github(b"{}", SECRET)}, BODY, SECRET)


def test_github_signature_with_other_secret_is_rejected() -> None:
    """A signature made with another secret is rejected."""
    assert not verify({"X-Hub-Signature-256": _github(BODY, b"other")}, BODY, SECRET)


def test_malformed_github_signatures_are_rejected() -> None:
    """Missing prefix, sha1 signatures, garbage and empty values are all False, never errors."""
    digest = _github(BODY, SECRET).removeprefix("sha256=")
    for value in (digest, "sha1=" + digest, "sha256=", "sha256=zz", "", "sha256=é"):
        assert not verify({"X-Hub-Signature-256": value}, BODY, SECRET), value


def test_github_signature_helper_matches_hmac() -> None:
    """github_signature builds the same header value GitHub sends."""
    assert github_signature(BODY, SECRET) == _github(BODY, SECRET)


def test_good_gitlab_token_verifies() -> None:
    """GitLab's X-Gitlab-Token equal to the secret is accepted, in any header case."""
    assert verify({"X-Gitlab-Token": "s3cret-value"}, BODY, SECRET)
    assert verify({"x-gitlab-token": "s3cret-value"}, BODY, SECRET)


def test_wrong_gitlab_token_is_rejected() -> None:
    """A GitLab token that differs from the secret, even by a prefix, is rejected."""
    for value in ("s3cret", "s3cret-value-and-more", "", "S3CRET-VALUE"):
        assert not verify({"X-Gitlab-Token": value}, BODY, SECRET), value


def test_missing_headers_are_rejected() -> None:
    """A request with neither header is rejected."""
    assert not verify({"Content-Type": "application/json"}, BODY, SECRET)
    assert not verify({}, BODY, SECRET)


def test_empty_secret_never_verifies() -> None:
    """With an empty secret nothing verifies, not even an HMAC made with the empty key."""
    assert not verify({"X-Hub-Signature-256": _github(BODY, b"")}, BODY, b"")
    assert not verify({"X-Gitlab-Token": ""}, BODY, b"")


def test_bad_github_signature_is_not_rescued_by_gitlab_token() -> None:
    """When a GitHub signature is present it decides, whatever else the request carries."""
    headers = {"X-Hub-Signature-256": _github(BODY, b"other"), "X-Gitlab-Token": "s3cret-value"}
    assert not verify(headers, BODY, SECRET)


@given(body=st.binary(max_size=512), secret=st.binary(min_size=1, max_size=64))
def test_any_body_round_trips(body: bytes, secret: bytes) -> None:
    """For any body and secret, the signature we compute verifies and a flipped byte does not."""
    signature = github_signature(body, secret)
    assert verify({"X-Hub-Signature-256": signature}, body, secret)
    assert not verify({"X-Hub-Signature-256": signature}, body + b"x", secret)


def test_a_secret_file_yields_the_bare_secret(tmp_path: Path) -> None:
    """A secret file written with `echo` (trailing newline, or CRLF) yields the bare secret."""
    (tmp_path / "a").write_bytes(b"s3cret-value\n")
    (tmp_path / "b").write_bytes(b"s3cret-value\r\n")
    (tmp_path / "c").write_bytes(b"s3cret-value")
    (tmp_path / "d").write_bytes(b"  s3cret-value \n\n")
    for name in "abcd":
        assert read_secret(tmp_path / name).encode() == SECRET


def test_mlflow_signature_matches_mlflows_own_helper() -> None:
    """verify_mlflow accepts exactly what mlflow.webhooks.delivery signs, within 5 minutes."""
    from mlflow.webhooks.delivery import _generate_hmac_signature
    from mlflow_gitops.loop.webhook import verify_mlflow

    payload = '{"entity": "model_version_alias", "action": "created", "data": {"x": "é"}}'
    headers = {"X-MLflow-Delivery-Id": "d-1", "X-MLflow-Timestamp": "1700000000",
               "X-MLflow-Signature": _generate_hmac_signature("s3cret", "d-1", "1700000000",
                                                              payload)}
    body = payload.encode("utf-8")
    assert verify_mlflow(headers, body, b"s3cret", now=1700000000 + 299) is None
    assert verify_mlflow(headers, body, b"s3cret", now=1700000000 + 301) is not None
    assert verify_mlflow(headers, body, b"s3cret", now=1700000000 - 301) is not None
    assert verify_mlflow(headers, body, b"other", now=1700000000) == "bad signature"
    assert verify_mlflow({**headers, "X-MLflow-Delivery-Id": "d-2"}, body, b"s3cret",
                         now=1700000000) == "bad signature"
    assert verify_mlflow({}, body, b"s3cret", now=1700000000) is not None
