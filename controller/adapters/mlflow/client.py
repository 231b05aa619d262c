"""The pieces of MLflow's client this package uses: a registry's two REST stores, and one
wrapper that turns MLflow's errors into the project's own (the cause chained)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from mlflow_gitops.adapters.uris import scrub
from mlflow_gitops.core.errors import (
    InvalidRequest,
    NotFound,
    RegistryError,
    TransientRegistryError,
)

T = TypeVar("T")

_NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "ENDPOINT_NOT_FOUND"}
_INVALID = {"INVALID_PARAMETER_VALUE", "INVALID_STATE", "RESOURCE_ALREADY_EXISTS",
            "PERMISSION_DENIED", "UNAUTHENTICATED", "BAD_REQUEST", "INVALID_REQUEST"}


@dataclass(frozen=True)
class Stores:
    """One registry's MLflow stores, as the copy between registries needs them."""

    name: str
    tracking_uri: str
    registry: Any  # mlflow.store.model_registry.rest_store.RestStore
    tracking: Any  # mlflow.store.tracking.rest_store.RestStore


def call(fn: Callable[[], T]) -> T:
    """Run one MLflow call, translating its errors into the project's own."""
    from mlflow.exceptions import MlflowException

    try:
        return fn()
    except MlflowException as exc:
        raise translate(_scrubbed(exc)) from exc
    except OSError as exc:  # connection refused, DNS, TLS: requests' errors are OSErrors
        raise TransientRegistryError(f"registry unreachable: {short_reason(exc)}") from exc
    except ValueError as exc:  # a 200 that is not MLflow's JSON, e.g. a proxy's login page
        raise TransientRegistryError(
            f"the registry answered with something that is not MLflow JSON "
            f"({_scrubbed(exc)}); check the tracking URI and any proxy in front of it") from exc


def _scrubbed(exc: BaseException) -> BaseException:
    """`exc` with any URI credential masked in its message, in place: MLflow and requests
    put the full request URL (`http://alice:PW@host/api/...`) into their messages, and the
    exception travels on as our error's cause, into tracebacks and logs."""
    exc.args = tuple(scrub(a) if isinstance(a, str) else a for a in exc.args)
    message = getattr(exc, "message", None)
    if isinstance(message, str):
        exc.message = scrub(message)  # type: ignore[attr-defined]
    return exc


class InRefused(InvalidRequest):
    """The registry does not accept `name IN (...)` in a search filter (before MLflow 3)."""


def search(fn: Callable[[], T], filter_string: str) -> T:
    """`call` for one search page: a filter with `name IN` that the server answers with
    INVALID_PARAMETER_VALUE means the server cannot do IN (InRefused: read per model)."""
    try:
        return call(fn)
    except InvalidRequest as exc:
        code = getattr(exc.__cause__, "error_code", "")
        if " IN (" in filter_string and code == "INVALID_PARAMETER_VALUE":
            raise InRefused(str(exc)) from exc
        raise


#: What a failed connection comes down to, read from the (long) requests/urllib3 message.
_REASONS = (
    ("No connection adapters", "the tracking URI has no scheme (http://, https://, ...)"),
    ("Connection refused", "connection refused"),
    ("NameResolutionError", "host name not found"),
    ("Name or service not known", "host name not found"),
    ("Temporary failure in name resolution", "host name not found"),
    ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted"),
    ("timed out", "timed out"),
    ("Timeout", "timed out"),
    ("No route to host", "no route to host"),
    ("Network is unreachable", "network unreachable"),
    ("RemoteDisconnected", "the server closed the connection"),
)


def short_reason(exc: BaseException) -> str:
    """One short phrase for a connection failure, never a URL or its credentials."""
    text = str(exc)
    for needle, reason in _REASONS:
        if needle in text:
            return reason
    return type(exc).__name__


def translate(exc: Any) -> RegistryError:
    code = getattr(exc, "error_code", "") or ""
    text = str(getattr(exc, "message", exc))
    if text.startswith("API request to") and "failed with exception" in text:
        # MLflow's wrapper around a connection failure: the URL (credentials and all) and
        # urllib3's internals, several hundred characters of them.
        return TransientRegistryError(f"registry unreachable: {short_reason(exc)}")
    message = scrub((text.splitlines() or [""])[0][:500])
    if code in _NOT_FOUND:
        return NotFound(message)
    if code in _INVALID:
        return InvalidRequest(message)
    return TransientRegistryError(message)
