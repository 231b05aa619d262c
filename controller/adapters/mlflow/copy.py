"""Copying a model version into another registry.

`MlflowClient.copy_model_version` only copies inside one registry: it looks the source
`models:/name/N` up in the destination registry, and a tracking server refuses a
`models:/` source that is not its own (`Registered model sources must use the active model
registry`). So:

- same server (two registry names, one tracking URI): the call `copy_model_version` makes,
  `create_model_version(source="models:/name/N", run_id, tags, description)`, with the
  lineage tags in that one call, so a crash can never leave an untagged copy that the next
  pass would not recognise and copy again;
- another server: by value. The source's artifacts are downloaded from where the source
  registry says they are and uploaded into a run of the destination's `mlflow-gitops-copies`
  experiment (with the source run's metrics and params), and the new version is registered
  from `runs:/<that run>/model`, again with the lineage tags in the creating call.

Artifact stores are reached with MLflow's own credentials (environment variables, cloud SDK
configuration); the registries' token files authenticate the registry and tracking calls."""

from __future__ import annotations

import tempfile
import time
from typing import Any
from urllib.parse import urlparse

from mlflow_gitops.adapters.mlflow.client import Stores, call
from mlflow_gitops.adapters.uris import without_credentials
from mlflow_gitops.core.errors import InvalidRequest

COPIES_EXPERIMENT = "mlflow-gitops-copies"
_MAX_HOPS = 5  # a models:/ source may point at another version, which may point at another…


def source_uri(registry: Stores, model: str, version: int) -> str:
    """A link people can open: the MLflow UI page of the source version."""
    uri = without_credentials(registry.tracking_uri)  # a tag value: never a password
    if urlparse(uri).scheme in ("http", "https"):
        return f"{uri}/#/models/{model}/versions/{version}"
    return f"models:/{model}/{version} ({uri})"


def copy_version(dest: Stores, source: Stores, model: str, version: int,
                 dst_model: str, tags: dict[str, str]) -> Any:
    """Create the copy in `dest`; the new ModelVersion. `call` wraps MLflow errors."""
    from mlflow.entities.model_registry import ModelVersionTag

    src = call(lambda: source.registry.get_model_version(model, str(version)))
    _ensure_registered_model(dest, dst_model)
    version_tags = [ModelVersionTag(k, v) for k, v in sorted(tags.items())]
    if source.tracking_uri == dest.tracking_uri:
        return call(lambda: dest.registry.create_model_version(
            dst_model, f"models:/{model}/{version}", run_id=src.run_id, tags=version_tags,
            run_link=src.run_link, description=src.description))
    run_id = _copy_run(dest, source, src, tags)
    return call(lambda: dest.registry.create_model_version(
        dst_model, f"runs:/{run_id}/model", run_id=run_id, tags=version_tags,
        description=src.description))


def _ensure_registered_model(dest: Stores, name: str) -> None:
    from mlflow_gitops.core.errors import NotFound

    try:
        call(lambda: dest.registry.get_registered_model(name))
    except NotFound:
        call(lambda: dest.registry.create_registered_model(name))


def _copy_run(dest: Stores, source: Stores, src: Any, tags: dict[str, str]) -> str:
    """A finished run in `dest` holding the source's artifacts under `model/`, its metrics
    and params; its id."""
    from mlflow.entities import Metric, Param, RunStatus, RunTag
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    location = _artifact_location(source, src.name, int(src.version))
    experiment_id = _copies_experiment(dest)
    name = f"copy of {source.name}/{src.name} v{src.version}"
    now = int(time.time() * 1000)
    run_tags = [RunTag("mlflow.runName", name), RunTag("mlflow.user", "mlflow-gitops")]
    run_tags += [RunTag(k, v) for k, v in sorted(tags.items())]
    run = call(lambda: dest.tracking.create_run(experiment_id, "mlflow-gitops", now, run_tags,
                                                  name))
    run_id = run.info.run_id
    if src.run_id:
        data = call(lambda: source.tracking.get_run(src.run_id)).data
        metrics = [Metric(k, v, now, 0) for k, v in sorted(data.metrics.items())]
        params = [Param(k, v) for k, v in sorted(data.params.items())]
        for start in range(0, max(len(metrics), len(params)), 100):  # the server's batch cap
            batch = slice(start, start + 100)
            call(lambda: dest.tracking.log_batch(
                run_id, metrics=metrics[batch], params=params[batch], tags=[]))
    with tempfile.TemporaryDirectory(prefix="mlflow-gitops-copy-") as tmp:
        local = call(lambda: get_artifact_repository(
            location, tracking_uri=source.tracking_uri).download_artifacts("", dst_path=tmp))
        call(lambda: get_artifact_repository(
            run.info.artifact_uri, tracking_uri=dest.tracking_uri).log_artifacts(local, "model"))
    call(lambda: dest.tracking.update_run_info(
        run_id, RunStatus.to_string(RunStatus.FINISHED), int(time.time() * 1000), name))
    return str(run_id)


def _artifact_location(source: Stores, model: str, version: int) -> str:
    """Where the source version's files are, following `runs:/` and `models:/` sources."""
    for _ in range(_MAX_HOPS):
        uri = call(lambda: source.registry.get_model_version_download_uri(
            model, str(version)))
        parsed = urlparse(uri)
        if parsed.scheme == "runs":
            run_id, _, path = f"{parsed.netloc}{parsed.path}".strip("/").partition("/")
            root = call(lambda: source.tracking.get_run(run_id)).info.artifact_uri
            return f"{root.rstrip('/')}/{path}" if path else root
        if parsed.scheme != "models":
            return str(uri)
        parts = f"{parsed.netloc}{parsed.path}".strip("/").split("/")
        if len(parts) == 1 and parts[0].startswith("m-"):  # an MLflow 3 logged model
            logged = call(lambda: source.tracking.get_logged_model(parts[0]))
            return str(logged.artifact_location)
        if len(parts) != 2 or not parts[1].isdigit():
            break
        model, version = parts[0], int(parts[1])
    raise InvalidRequest(f"cannot tell where the files of {model} v{version} in registry "
                         f"'{source.name}' are (source {uri!r}); copy it by hand or register "
                         "it from a run")


def _copies_experiment(dest: Stores) -> str:
    found = call(lambda: dest.tracking.get_experiment_by_name(COPIES_EXPERIMENT))
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(call(lambda: dest.tracking.create_experiment(COPIES_EXPERIMENT)))
    except InvalidRequest:  # created meanwhile by another replica
        found = call(lambda: dest.tracking.get_experiment_by_name(COPIES_EXPERIMENT))
        return str(found.experiment_id)
