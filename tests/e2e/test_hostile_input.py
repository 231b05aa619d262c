"""The controller as a process against hostile input (issue 13): a commit whose values the
YAML reader refuses, odd HTTP requests, bad flags, and credentials in URIs. Nothing stops it,
nothing leaks."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.controller_proc import ControllerProcess, wait_until
from tests.support.envfiles import HEADER
from tests.support.gitrepos import bare_remote, commit_all, git
from tests.support.registry_helpers import make_model, stages_of


@pytest.fixture()
def controllers() -> Iterator[list[ControllerProcess]]:
    started: list[ControllerProcess] = []
    yield started
    for proc in started:
        proc.kill()


def start(controllers: list[ControllerProcess], *args: Any, **kwargs: Any) -> ControllerProcess:
    proc = ControllerProcess(*args, **kwargs)
    controllers.append(proc)
    return proc.start()


def _files(model: str, production: int, staging: str, gated: bool = False) -> dict[str, str]:
    policy = "promotion:\n  from: staging\n  min_soak: 1s\n" if gated else ""
    return {
        "environments/production.yaml": HEADER + (
            f"target:\n  stage: Production\n{policy}models:\n  {model}: {production}\n"),
        "environments/staging.yaml": HEADER + (
            f"target:\n  stage: Staging\nmodels:\n  {model}: {staging}\n"),
    }


def test_a_value_the_yaml_reader_refuses_is_an_invalid_commit(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        controllers: list[ControllerProcess]) -> None:
    """`!!int abc` makes the commit invalid (file:line in /status, the metric at 1), the last
    good state stays in force (drift is healed), and once fixed, a gated promotion that walks
    the file's history past the bad revision is applied."""
    model = f"hostile-{unique}"
    make_model(mlflow_client, model, 3)
    bare, work = bare_remote(tmp_path, _files(model, 1, "2"))
    proc = start(controllers, tmp_path, f"file://{bare}", mlflow_server.uri, interval=0.5)
    wait_until(lambda: stages_of(mlflow_client, model) == {1: "Production", 2: "Staging",
                                                            3: "None"}, message="first sync")

    (work / "environments/staging.yaml").write_text(
        _files(model, 1, "!!int abc")["environments/staging.yaml"])
    bad = commit_all(work, "a value PyYAML cannot construct")
    git(work, "push", "-q", "origin", "main")
    status = wait_until(lambda: (s := proc.status())["invalid_commit"] and s, message="invalid")
    assert status["invalid_commit"]["commit"] == bad
    assert status["invalid_commit"]["diagnostics"] == [{
        "file": "environments/staging.yaml", "line": 6,
        "message": "invalid value: 'abc' is not a whole number; fix it, or quote it to make "
                   "it a string"}]
    assert "mlflow_gitops_invalid_commit 1.0" in proc.metrics()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow_client.transition_model_version_stage(model, "1", "Archived")  # drift
    wait_until(lambda: stages_of(mlflow_client, model)[1] == "Production",
               message="the last good state healed the drift")

    files = _files(model, 2, "3", gated=True)
    for rel, text in files.items():
        (work / rel).write_text(text)
    good = commit_all(work, "fix staging, promote v2 to production")
    git(work, "push", "-q", "origin", "main")
    wait_until(lambda: proc.status()["last_applied_commit"] == good, timeout=30,
               message="the fixed commit applied")
    assert stages_of(mlflow_client, model) == {1: "Archived", 2: "Production", 3: "Staging"}
    status = proc.status()
    assert status["invalid_commit"] is None and status["last_pass"]["outcome"] == "success"
    assert "mlflow_gitops_invalid_commit 0.0" in proc.metrics()
    assert "internal error" not in proc.logs()
    assert proc.terminate() == 0
