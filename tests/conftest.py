"""Session-wide real parts: one MLflow tracking server (SQLite, one worker, free port)."""

from __future__ import annotations

import itertools
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_forge import forge  # noqa: F401 - a fixture shared by two suites
from tests.support.servers import MlflowServer

warnings.filterwarnings("ignore", category=FutureWarning)
_names = itertools.count()


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """Each test starts from the same environment: a command run in-process sets MLflow's
    HTTP defaults in os.environ (no retries for a one-shot command), and
    `mlflow.set_tracking_uri` / `set_registry_uri` are process-wide (a later test's
    `MlflowClient(uri)` would still send registry calls to the earlier test's server)."""
    saved = dict(os.environ)
    uris = _mlflow_uris()
    yield
    os.environ.clear()
    os.environ.update(saved)
    if "mlflow" in sys.modules:  # imported before or by this test
        import mlflow.tracking._model_registry.utils as registry_utils
        import mlflow.tracking._tracking_service.utils as tracking_utils

        tracking_utils._tracking_uri, registry_utils._registry_uri = uris


def _mlflow_uris() -> tuple[object, object]:
    """MLflow's process-wide tracking and registry URIs (both None until mlflow is imported
    and told one)."""
    if "mlflow" not in sys.modules:
        return None, None
    import mlflow.tracking._model_registry.utils as registry_utils
    import mlflow.tracking._tracking_service.utils as tracking_utils

    return tracking_utils._tracking_uri, registry_utils._registry_uri


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    server.start()
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    yield server
    server.stop()


@pytest.fixture()
def mlflow_client(mlflow_server: MlflowServer):  # type: ignore[no-untyped-def]
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server.uri, registry_uri=mlflow_server.uri)


@pytest.fixture()
def unique() -> str:
    """A name suffix unique within the session: tests share one server, never its models."""
    return f"{os.getpid()}-{next(_names)}"


@pytest.fixture()
def envs_dir(tmp_path: Path) -> Path:
    path = tmp_path / "environments"
    path.mkdir()
    return path
