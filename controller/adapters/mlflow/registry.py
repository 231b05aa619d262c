"""The MLflow registry adapter: a bulk snapshot and the write calls.

It talks to MLflow's REST stores directly so each registry can carry its own credentials
(a token file per registry), and it turns MlflowException into the project's errors."""

from __future__ import annotations

import os
import warnings
from collections.abc import Collection, Mapping
from typing import Any

from mlflow_gitops.adapters.mlflow import client, rest, search, stores
from mlflow_gitops.adapters.mlflow.client import Stores, call
from mlflow_gitops.adapters.mlflow.rest import RestReader
from mlflow_gitops.adapters.secrets import read_secret
from mlflow_gitops.adapters.uris import without_credentials
from mlflow_gitops.core.errors import ConfigError, InvalidRequest, NotFound
from mlflow_gitops.core.model import (
    DEFAULT_REGISTRY,
    LiveVersion,
    Snapshot,
    evaluation_run,
    frozen_map,
)
from mlflow_gitops.core.ports import RegistryPort

MODEL_PAGE = 1000  # the server's cap for search_registered_models
VERSION_PAGE = 10000  # the server's default (cap 200,000) for search_model_versions



#: MLflow's HTTP client settings for a controller (mlflow.environment_variables): each call
#: may take at most timeout × attempts plus the backoff between them (`write_budget`), which
#: has to fit inside the leader lease and the shutdown grace period.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",  # seconds per attempt (MLflow reads an int)
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",  # two attempts in all
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",  # an int for MLflow
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    # A server's Retry-After would let it stretch one call past any bound: ignore it.
    "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER": "false",
}
_BACKOFF_CAP = 120.0  # urllib3's DEFAULT_BACKOFF_MAX


def configure_http_defaults() -> None:
    """MLflow retries a failed call for minutes by default; a controller wants to fail fast
    and back off itself. Users can still override through the same variables."""
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)


def fit_http_to(seconds: float) -> float | None:
    """Lower MLflow's retries, then its timeout, until one call's whole budget fits in
    `seconds` (leader election: a write must end inside the lease); the new budget, or None
    when not even one attempt of one second fits."""
    if write_budget() < seconds:
        return write_budget()
    timeout = int(seconds) if seconds >= 1 else 0
    if timeout < 1:
        return None
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    if write_budget() >= seconds:
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(timeout if timeout < seconds
                                                        else timeout - 1)
    budget = write_budget()
    return budget if 0 < budget < seconds else None


def write_budget() -> float:
    """The longest one registry call may take with the current settings, in seconds:
    timeout × attempts + the backoff (with jitter) before each retry."""
    def number(name: str) -> float:
        raw = os.environ.get(name, HTTP_DEFAULTS[name])
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a number") from None
        if value < 0 or value != value or value == float("inf"):
            raise ConfigError(f"{name}={raw!r} must be a finite number >= 0")
        return value

    timeout = number("MLFLOW_HTTP_REQUEST_TIMEOUT")
    retries = int(number("MLFLOW_HTTP_REQUEST_MAX_RETRIES"))
    factor = number("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR")
    jitter = number("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER")
    backoff = sum(min(_BACKOFF_CAP, factor * 2.0 ** i) + jitter for i in range(retries))
    return timeout * (retries + 1) + backoff


class MlflowRegistry:
    """One registry (tracking URI + optional token file) behind core.ports.RegistryPort:
    REST for http(s)://, MLflow's own stores for any other URI (adapters.mlflow.stores).
    `name_in=False` reads one model at a time, as for a server that refuses `name IN`."""

    def __init__(self, tracking_uri: str, name: str = "default", token_file: str | None = None,
                 model_page: int = MODEL_PAGE, version_page: int = VERSION_PAGE,
                 name_in: bool = True):
        stores.check_uri(tracking_uri, name)
        self.name = name
        self.tracking_uri = tracking_uri.rstrip("/") if stores.is_rest(tracking_uri) \
            else tracking_uri
        self.has_stages = stores.has_stages(tracking_uri)
        self._token_file = token_file
        self._model_page = model_page
        self._version_page = version_page
        self._use_in = name_in
        self._searcher: search.Searcher
        self._stores: tuple[Any, Any] | None = None
        self._reader: RestReader | None = None
        if stores.is_rest(tracking_uri):
            # Reads need no `mlflow` import (adapters.mlflow.rest); writes import it lazily.
            default = name == DEFAULT_REGISTRY
            if rest.simple_auth() or not default:
                self._reader = RestReader(self.tracking_uri, token_file, mlflow_env=default)
            self._searcher = _RestSearcher(self)
        else:
            if token_file:
                raise ConfigError(
                    f"registry '{name}': token_file applies to http(s):// tracking URIs only; "
                    "MLflow's own configuration authenticates "
                    f"{tracking_uri.split(':', 1)[0]} URIs")
            self._stores = stores.open_stores(tracking_uri, name)
            self._searcher = stores.StoreSearcher(self._stores[0])

    @property
    def _registry(self) -> Any:
        return self._mlflow_stores()[0]

    @property
    def _tracking(self) -> Any:
        return self._mlflow_stores()[1]

    def prepare_writes(self) -> None:
        """Import and build the write path now (MLflow's stores: most of `mlflow`), off
        the path of the first write, which would otherwise pay for it (about a second)."""
        self._mlflow_stores()
        from mlflow.entities.model_registry import ModelVersionTag  # noqa: F401
        from mlflow.store.artifact.artifact_repository_registry import (  # noqa: F401
            get_artifact_repository,  # a cross-registry copy's artifacts
        )

    def _mlflow_stores(self) -> tuple[Any, Any]:
        """MLflow's registry and tracking stores; for http(s), RestStores made on first use."""
        if self._stores is None:
            from mlflow.store.model_registry.rest_store import RestStore as RegistryStore
            from mlflow.store.tracking.rest_store import RestStore as TrackingStore

            self._stores = (RegistryStore(self._creds), TrackingStore(self._creds))
        return self._stores

    def __repr__(self) -> str:  # never shows credentials
        return f"MlflowRegistry(name={self.name!r}, uri={self.display_uri!r})"

    @property
    def display_uri(self) -> str:
        return without_credentials(self.tracking_uri)

    def _creds(self) -> Any:
        """MLflow's host credentials for this registry. MLflow's `get_default_host_creds`
        reads MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_USERNAME/PASSWORD (and
        ~/.mlflow/credentials), MLFLOW_TRACKING_AUTH, MLFLOW_TRACKING_AWS_SIGV4 and
        MLFLOW_TRACKING_CLIENT_CERT_PATH for whatever host it is given; those belong to the
        default registry only, so any other registry gets none of them: its own
        token_file, or credentials in its own tracking URI, or nothing."""
        from mlflow.utils.credentials import get_default_host_creds

        creds = get_default_host_creds(self.tracking_uri)
        if self.name != DEFAULT_REGISTRY:
            creds.username = creds.password = creds.token = creds.auth = None
            creds.aws_sigv4 = False
            creds.client_cert_path = None
        if self._token_file:
            # Read on every call so a rotated Kubernetes Secret is picked up without restart.
            creds.token = read_secret(self._token_file)
        return creds

    # -- reads -----------------------------------------------------------------------------

    def snapshot(self, names: Collection[str], owned_by: Collection[str] = ()) -> Snapshot:
        found, self._use_in = search.snapshot(self.name, self._searcher, names, owned_by,
                                              self._use_in)
        return found

    def _get(self, endpoint: str, params: dict[str, Any], filter_string: str) -> Any:
        """One GET of the REST API as plain JSON. RestStore would turn each page into
        protobuf messages and then entities, which at 1,000 models costs the client about as
        much time as the server spends answering (BENCHMARKS.md)."""
        if self._reader is not None:
            return self._reader.get(endpoint, params, " IN (" in filter_string)
        from mlflow.utils.rest_utils import http_request, verify_rest_response

        path = f"/api/2.0/mlflow/{endpoint}"

        def fetch() -> Any:
            response = http_request(self._creds(), path, "GET", params=params)
            if response.status_code != 200:
                verify_rest_response(response, path)  # raises MlflowException
            return response.json()  # ValueError → call's "not MLflow JSON" error

        return client.search(fetch, filter_string)

    @property
    def is_rest(self) -> bool:
        return isinstance(self._searcher, _RestSearcher)

    @property
    def tracking_store(self) -> Any:
        """MLflow's tracking store for this registry (the ledger's experiment lives there)."""
        return self._tracking

    def post(self, endpoint: str, body: dict[str, Any]) -> Any:
        """One REST read that MLflow serves as POST (runs/search), as plain JSON."""
        if self._reader is not None:
            return self._reader.post(endpoint, body)
        from mlflow.utils.rest_utils import http_request, verify_rest_response

        path = f"/api/2.0/mlflow/{endpoint}"

        def fetch() -> Any:
            response = http_request(self._creds(), path, "POST", json=body)
            if response.status_code != 200:
                verify_rest_response(response, path)
            return response.json()

        return call(fetch)

    def get(self, endpoint: str, params: dict[str, Any]) -> Any:
        """One REST GET as plain JSON (http(s) registries only)."""
        return self._get(endpoint, params, "")

    def run_metrics(self, run_id: str) -> Mapping[str, float]:
        if isinstance(self._searcher, _RestSearcher):
            run = self._get("runs/get", {"run_id": run_id}, "").get("run", {})
            return {m["key"]: float(m["value"]) for m in run.get("data", {}).get("metrics", ())}
        found = call(lambda: self._tracking.get_run(run_id))
        return dict(found.data.metrics)

    # -- writes: one call each -----------------------------------------------------------------

    def transition_stage(self, model: str, version: int, stage: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated, still served
            call(lambda: self._registry.transition_model_version_stage(
                model, str(version), stage, archive_existing_versions=False))

    def set_alias(self, model: str, alias: str, version: int) -> None:
        call(lambda: self._registry.set_registered_model_alias(model, alias, str(version)))

    def delete_alias(self, model: str, alias: str) -> None:
        call(lambda: self._registry.delete_registered_model_alias(model, alias))

    def set_version_tag(self, model: str, version: int, key: str, value: str) -> None:
        from mlflow.entities.model_registry import ModelVersionTag

        call(lambda: self._registry.set_model_version_tag(
            model, str(version), ModelVersionTag(key, value)))

    def delete_version_tag(self, model: str, version: int, key: str) -> None:
        call(lambda: self._registry.delete_model_version_tag(model, str(version), key))

    def set_model_tag(self, model: str, key: str, value: str) -> None:
        from mlflow.entities.model_registry import RegisteredModelTag

        call(lambda: self._registry.set_registered_model_tag(
            model, RegisteredModelTag(key, value)))

    def delete_model_tag(self, model: str, key: str) -> None:
        call(lambda: self._registry.delete_registered_model_tag(model, key))

    # -- promotion across registries (mlflow_gitops.adapters.mlflow.copy) --------------------

    @property
    def stores(self) -> Stores:
        return Stores(self.name, self.tracking_uri, self._registry, self._tracking)

    def copy_version(self, source: RegistryPort, model: str, version: int, dst_model: str,
                     tags: Mapping[str, str]) -> LiveVersion:
        """Copy `model` v`version` of `source` into `dst_model` here, with `tags` (lineage)
        set in the creating call; the new version. gitops.source.uri is added here."""
        from mlflow_gitops.adapters.mlflow.copy import copy_version, source_uri
        from mlflow_gitops.core.tags import SOURCE_URI

        if not isinstance(source, MlflowRegistry):
            raise InvalidRequest(f"cannot copy from {source.name!r}: not an MLflow registry")
        all_tags = {**tags, SOURCE_URI: source_uri(source.stores, model, version)}
        return stores.live_version(copy_version(self.stores, source.stores, model, version,
                                          dst_model, all_tags))


class _RestSearcher:
    """search.Searcher over the REST API, page by page."""

    def __init__(self, registry: MlflowRegistry):
        self._r = registry

    def models(self, filter_string: str, token: str | None
               ) -> tuple[list[search.Head], str | None]:
        body = self._r._get("registered-models/search", _query(
            filter_string, self._r._model_page, ["name ASC"], token), filter_string)
        return ([_head(rm) for rm in body.get("registered_models", ())],
                body.get("next_page_token"))

    def versions(self, filter_string: str, token: str | None
                 ) -> tuple[list[LiveVersion], str | None]:
        body = self._r._get("model-versions/search", _query(
            filter_string, self._r._version_page, ["name ASC", "version_number ASC"], token),
            filter_string)
        return ([_live_version_json(mv) for mv in body.get("model_versions", ())],
                body.get("next_page_token"))

    def model(self, name: str) -> search.Head | None:
        try:
            body = self._r._get("registered-models/get", {"name": name}, "")
        except NotFound:
            return None
        return _head({"name": name, **body.get("registered_model", {})})


def _query(filter_string: str, page: int, order_by: list[str], token: str | None
           ) -> dict[str, Any]:
    return {"filter": filter_string, "max_results": page, "order_by": order_by,
            **({"page_token": token} if token else {})}


def _head(rm: dict[str, Any]) -> search.Head:
    return search.Head(rm["name"], {a["alias"]: int(a["version"]) for a in rm.get("aliases", ())},
                       _tags_json(rm))


def _live_version_json(mv: dict[str, Any]) -> LiveVersion:
    """A model version as the REST API spells it (int64 fields may arrive as strings)."""
    return LiveVersion(
        model=mv["name"],
        version=int(mv["version"]),
        stage=mv.get("current_stage") or "None",
        status=mv.get("status") or "READY",
        run_id=evaluation_run(mv.get("run_id"), _tags_json(mv)),
        source=mv.get("source"),
        tags=frozen_map(_tags_json(mv)),
        created_ms=_int_or_none(mv.get("creation_timestamp")),
        updated_ms=_int_or_none(mv.get("last_updated_timestamp")),
    )


def _tags_json(entity: dict[str, Any]) -> dict[str, str]:
    """A registered model's or a model version's tags as the REST API spells them."""
    return {t["key"]: t.get("value", "") for t in entity.get("tags", ())}


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
