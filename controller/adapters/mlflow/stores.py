"""Which way a tracking URI is read.

`http(s)://` goes through the REST fast path (adapters.mlflow.registry). Every other URI
MLflow accepts (`sqlite:///…`, `file:…`, `postgresql://…`, `databricks`, `databricks-uc`)
goes through MLflow's own stores for that URI, the ones `MlflowClient` would use, searched
page by page like the REST path. A URI without a scheme is refused with the fix: MLflow
would silently take it for a local folder."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from mlflow_gitops.adapters.mlflow import client, search
from mlflow_gitops.adapters.mlflow.client import call
from mlflow_gitops.core.errors import ConfigError, NotFound
from mlflow_gitops.core.model import LiveVersion, evaluation_run, frozen_map

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_BARE = ("databricks", "databricks-uc")
#: MLflow's largest page for each search of its SQL store (SEARCH_*_MAX_RESULTS_THRESHOLD).
STORE_MODEL_PAGE = 1000
STORE_VERSION_PAGE = 10000


def is_rest(uri: str) -> bool:
    return urlsplit(uri).scheme.lower() in ("http", "https")


def has_stages(uri: str) -> bool:
    """Unity Catalog registries (`databricks-uc`, `uc:`) have aliases but no stages."""
    scheme = uri.split(":", 1)[0].lower()
    return scheme not in ("databricks-uc", "uc")


#: Database URI schemes MLflow's SQL store reads (a driver may follow: postgresql+psycopg2).
_SQL = ("sqlite", "postgresql", "mysql", "mssql")
SQL_HINT = "run: pip install 'mlflow-gitops[sqlite]' (the full MLflow, with its SQL store)"


def check_uri(uri: str, registry: str) -> None:
    """A one-line ConfigError for a tracking URI MLflow would misread."""
    if uri in _BARE or (_SCHEME.match(uri) and not re.match(r"^[^:/]+:\d+(/|$)", uri)):
        return
    raise ConfigError(
        f"registry '{registry}': tracking URI {shown(uri)!r} has no scheme; write "
        f"http://{shown(uri)} for a tracking server, or sqlite:///path/mlflow.db or "
        "file:///path/mlruns for a local registry")


def shown(uri: str) -> str:
    """The URI without credentials (user:password@)."""
    parts = urlsplit(uri)
    if parts.password is None and parts.username is None:
        return uri
    host = parts.hostname or ""
    return parts._replace(netloc=f"***@{host}{f':{parts.port}' if parts.port else ''}").geturl()


def open_stores(uri: str, registry: str) -> tuple[Any, Any]:
    """MLflow's registry and tracking stores for a non-HTTP URI."""
    from mlflow.exceptions import MlflowException

    try:
        from mlflow.tracking._model_registry.utils import _get_store as registry_store
        from mlflow.tracking._tracking_service.utils import _get_store as tracking_store

        return registry_store(uri), tracking_store(uri)
    except ImportError as exc:
        raise ConfigError(
            f"registry '{registry}': tracking URI {shown(uri)!r} needs the full MLflow "
            f"package ({exc.name or exc} is not installed); {SQL_HINT}"
        ) from None
    except (MlflowException, ValueError, OSError) as exc:
        message = str(getattr(exc, "message", exc)).splitlines()[0][:300]
        if "unsupported URI" in message and urlsplit(uri).scheme.split("+")[0] in _SQL:
            message = f"this install has no SQL store (the slim install leaves it out); {SQL_HINT}"
        elif "MLFLOW_ALLOW_FILE_STORE" in message:
            message = ("MLflow 3 keeps the file store in maintenance mode; set "
                       "MLFLOW_ALLOW_FILE_STORE=true to use it, or move to sqlite:///mlflow.db "
                       "with `mlflow migrate-filestore`")
        raise ConfigError(f"registry '{registry}': cannot open tracking URI "
                          f"{shown(uri)!r}: {message}") from None


class StoreSearcher:
    """search.Searcher over an MLflow registry store (SQL, file, Databricks)."""

    def __init__(self, store: Any):
        self._store = store

    def models(self, filter_string: str, token: str | None
               ) -> tuple[list[search.Head], str | None]:
        page = client.search(lambda: self._store.search_registered_models(
            filter_string=filter_string, max_results=STORE_MODEL_PAGE, order_by=["name ASC"],
            page_token=token), filter_string)
        return [_head(rm) for rm in page], page.token

    def versions(self, filter_string: str, token: str | None
                 ) -> tuple[list[LiveVersion], str | None]:
        page = client.search(lambda: self._store.search_model_versions(
            filter_string=filter_string, max_results=STORE_VERSION_PAGE,
            order_by=["name ASC", "version_number ASC"], page_token=token), filter_string)
        return [live_version(mv) for mv in page], page.token

    def model(self, name: str) -> search.Head | None:
        try:
            return _head(call(lambda: self._store.get_registered_model(name)))
        except NotFound:
            return None


def _head(rm: Any) -> search.Head:
    return search.Head(rm.name, {a: int(v) for a, v in (rm.aliases or {}).items()},
                       dict(rm.tags or {}))


def live_version(mv: Any) -> LiveVersion:
    """A ModelVersion entity as the core's LiveVersion."""
    return LiveVersion(
        model=mv.name,
        version=int(mv.version),
        stage=mv.current_stage or "None",
        status=mv.status or "READY",
        run_id=evaluation_run(mv.run_id, mv.tags or {}),
        source=mv.source,
        tags=frozen_map(mv.tags or {}),
        created_ms=mv.creation_timestamp,
        updated_ms=mv.last_updated_timestamp,
    )
