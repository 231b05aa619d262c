"""The REST fast path's reads, with `requests` alone: a `plan` (or an `apply` with nothing to
change) never imports the `mlflow` package, whose `__init__` costs a process one to several
seconds (BENCHMARKS.md, measurement 7). Writes still go through MLflow's RestStore, imported
on the first write.

Authentication is MLflow's own for the common cases (MLflow's `get_default_host_creds`):
a bearer token (the registry's token file, else MLFLOW_TRACKING_TOKEN), basic auth
(MLFLOW_TRACKING_USERNAME/PASSWORD), MLFLOW_TRACKING_INSECURE_TLS, and the server and client
certificate paths. Where MLflow would do more (an auth plugin in MLFLOW_TRACKING_AUTH, AWS
SigV4, or a ~/.mlflow/credentials file), `simple_auth()` is False and the registry reads
through MLflow's own http_request instead."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mlflow_gitops.adapters.mlflow.client import InRefused, short_reason
from mlflow_gitops.adapters.secrets import read_secret
from mlflow_gitops.core.errors import (
    InvalidRequest,
    NotFound,
    RegistryError,
    TransientRegistryError,
)

_NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "ENDPOINT_NOT_FOUND"}
_INVALID = {"INVALID_PARAMETER_VALUE", "INVALID_STATE", "RESOURCE_ALREADY_EXISTS",
            "PERMISSION_DENIED", "UNAUTHENTICATED", "BAD_REQUEST", "INVALID_REQUEST"}
_RETRY_STATUS = (429, 500, 502, 503, 504)  # MLflow's _TRANSIENT_FAILURE_RESPONSE_CODES


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


def _true(name: str) -> bool:
    return (_env(name) or "").lower() in ("1", "true", "yes")


def simple_auth() -> bool:
    """True when these reads authenticate exactly as MLflow would."""
    return not (_env("MLFLOW_TRACKING_AUTH") or _true("MLFLOW_TRACKING_AWS_SIGV4")
                or (Path.home() / ".mlflow" / "credentials").exists())


class RestReader:
    """GETs of one tracking server's REST API as plain JSON, with retries and a timeout."""

    def __init__(self, tracking_uri: str, token_file: str | None = None,
                 mlflow_env: bool = True):
        """`mlflow_env=False`: MLflow's credential variables are not this registry's (they
        belong to the default registry only): its token file or nothing."""
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        self._uri = tracking_uri
        self._token_file = token_file
        self._mlflow_env = mlflow_env
        retries = int(_env("MLFLOW_HTTP_REQUEST_MAX_RETRIES") or 7)
        backoff = float(_env("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR") or 2)
        self._timeout = float(_env("MLFLOW_HTTP_REQUEST_TIMEOUT") or 120)
        self._session = requests.Session()
        self._session.mount(tracking_uri, HTTPAdapter(max_retries=Retry(
            total=retries, backoff_factor=backoff, status_forcelist=_RETRY_STATUS,
            allowed_methods=None, raise_on_status=False)))

    def _auth(self) -> dict[str, Any]:
        out: dict[str, Any] = {"headers": {"User-Agent": "mlflow-gitops"}}
        # Read on every call so a rotated Kubernetes Secret is picked up without restart.
        mine = self._mlflow_env
        token = (read_secret(self._token_file) if self._token_file
                 else _env("MLFLOW_TRACKING_TOKEN") if mine else None)
        user = _env("MLFLOW_TRACKING_USERNAME") if mine else None
        password = _env("MLFLOW_TRACKING_PASSWORD") if mine else None
        if token:
            out["headers"]["Authorization"] = f"Bearer {token}"
        elif user and password:
            out["auth"] = (user, password)
        if _true("MLFLOW_TRACKING_INSECURE_TLS"):
            out["verify"] = False
        elif _env("MLFLOW_TRACKING_SERVER_CERT_PATH"):
            out["verify"] = _env("MLFLOW_TRACKING_SERVER_CERT_PATH")
        if mine and _env("MLFLOW_TRACKING_CLIENT_CERT_PATH"):
            out["cert"] = _env("MLFLOW_TRACKING_CLIENT_CERT_PATH")
        return out

    def get(self, endpoint: str, params: dict[str, Any], uses_in: bool = False) -> Any:
        """The JSON body of GET /api/2.0/mlflow/<endpoint>; the project's errors otherwise
        (InRefused when a `name IN` filter is answered with INVALID_PARAMETER_VALUE)."""
        return self._request("GET", endpoint, uses_in, params=params)

    def post(self, endpoint: str, body: dict[str, Any]) -> Any:
        """The JSON answer of a read that MLflow serves as POST (runs/search)."""
        return self._request("POST", endpoint, False, json=body)

    def _request(self, method: str, endpoint: str, uses_in: bool, **kwargs: Any) -> Any:
        import requests

        try:
            response = self._session.request(method, f"{self._uri}/api/2.0/mlflow/{endpoint}",
                                             timeout=self._timeout, **kwargs, **self._auth())
        except requests.RequestException as exc:
            raise TransientRegistryError(f"registry unreachable: {short_reason(exc)}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200:
            raise error(response.status_code, body, uses_in)
        if not isinstance(body, dict):
            raise TransientRegistryError(
                "the registry answered with something that is not MLflow JSON; check the "
                "tracking URI and any proxy in front of it")
        return body


def error(status: int, body: Any, uses_in: bool = False) -> RegistryError:
    """MLflow's JSON error answer as the project's error (as client.translate does)."""
    code = body.get("error_code", "") if isinstance(body, dict) else ""
    message = str(body.get("message", "")) if isinstance(body, dict) else ""
    message = (message.splitlines() or [""])[0][:500] or f"HTTP {status}"
    text = f"{code}: {message}" if code else message
    if uses_in and code == "INVALID_PARAMETER_VALUE":
        return InRefused(text)
    if code in _NOT_FOUND or (not code and status == 404):
        return NotFound(text)
    if code in _INVALID or (not code and status in (400, 401, 403)):
        return InvalidRequest(text)
    return TransientRegistryError(text)
