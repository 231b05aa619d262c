"""Session-wide real parts: one MLflow tracking server (SQLite, one worker, free port)."""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_forge import forge  # noqa: F401 - a fixture shared by two suites
from tests.support.servers import MlflowServer

warnings.filterwarnings("ignore", category=FutureWarning)
_names = itertools.count()


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
