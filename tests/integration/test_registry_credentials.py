"""Registry credentials against a real MLflow server: MLflow's own
variables go to the default registry only, and a password inside a tracking URI never
reaches an error, its cause or a log line."""

from __future__ import annotations

import base64
import io
import logging
import traceback
from pathlib import Path
from typing import Any

import pytest
from mlflow_gitops.adapters.logs import configure
from mlflow_gitops.adapters.mlflow.registry import MlflowRegistry
from mlflow_gitops.core.errors import RegistryError

from tests.support.counting_proxy import CountingProxy
from tests.support.servers import free_port


def test_mlflow_env_credentials_go_to_the_default_registry_only(
        tmp_path: Path, mlflow_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLFLOW_TRACKING_TOKEN reaches the default registry; another registry gets nothing, or
    exactly its own token_file."""
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "env-token-abc")
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    (tmp_path / "token").write_text("file-token-xyz\n")
    with CountingProxy(mlflow_server.uri) as default, CountingProxy(mlflow_server.uri) as bare, \
            CountingProxy(mlflow_server.uri) as own:
        MlflowRegistry(default.uri, name="default").snapshot(["x"])
        MlflowRegistry(bare.uri, name="prod").snapshot(["x"])
        MlflowRegistry(own.uri, name="eu", token_file=str(tmp_path / "token")).snapshot(["x"])
    assert default.authorizations == {"Bearer env-token-abc"}
    assert bare.authorizations == {None}
    assert own.authorizations == {"Bearer file-token-xyz"}


def test_basic_auth_from_env_goes_to_the_default_registry_only(
        mlflow_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a token, MLflow's username/password are Basic auth for the default only."""
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "env-password")
    with CountingProxy(mlflow_server.uri) as default, CountingProxy(mlflow_server.uri) as other:
        MlflowRegistry(default.uri, name="default").snapshot(["x"])
        MlflowRegistry(other.uri, name="prod").snapshot(["x"])
    basic = "Basic " + base64.b64encode(b"alice:env-password").decode()
    assert default.authorizations == {basic}
    assert other.authorizations == {None}


def test_a_password_in_the_tracking_uri_never_reaches_errors_or_logs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreachable http://alice:PW@host registry: the error, its chained cause, the
    traceback and the log line never show PW (the error is one short line; the CLI adds the
    scrubbed URI, as tests/e2e/test_cli_firsthour.py pins)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    registry = MlflowRegistry(f"http://alice:Pa55w0rdXyz@127.0.0.1:{free_port()}", name="prod")
    assert "Pa55w0rdXyz" not in repr(registry)
    with pytest.raises(RegistryError) as caught:
        registry.snapshot(["x"])
    text = "".join(traceback.format_exception(caught.value))
    assert "Pa55w0rdXyz" not in text and "registry unreachable" in text
    out = io.StringIO()
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    configure("json", "INFO", stream=out)
    try:
        logging.getLogger("test").error("registry failed: %s", caught.value,
                                        exc_info=caught.value)
    finally:
        for handler in root.handlers[:]:
            if handler not in saved[0]:
                root.removeHandler(handler)
        root.setLevel(saved[1])
    assert "Pa55w0rdXyz" not in out.getvalue() and "registry failed" in out.getvalue()
