"""Any tracking URI that MLflow accepts: a registry in a SQLite file or a folder,
with no server, through MLflow's own stores; a URI without a scheme is one line with the
fix. The CLI runs as a process, as users run it."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.envfiles import HEADER
from tests.support.registry_helpers import make_model


def _registry(uri: str, extra_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """fraud-detector with 2 versions, v1 in Production and @champion on v1."""
    for key, value in extra_env.items():
        monkeypatch.setenv(key, value)
    from mlflow import MlflowClient

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        make_model(MlflowClient(uri, uri), "fraud-detector", 2, {1: "Production"},
                   {"champion": 1})


@pytest.mark.parametrize("kind", ["sqlite", "file"])
def test_plan_apply_status_against_a_local_registry(
        kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """plan shows the promotion, apply makes it, status says Synced and a second plan says
    "No changes." against `sqlite:///…` and `file:…` registries, with no server running."""
    uri = (f"sqlite:///{tmp_path / 'mlflow.db'}" if kind == "sqlite"
           else (tmp_path / "mlruns").as_uri())
    extra = {"MLFLOW_ALLOW_FILE_STORE": "true"} if kind == "file" else {}
    _registry(uri, extra, monkeypatch)
    folder = tmp_path / "environments"
    folder.mkdir()
    (folder / "production.yaml").write_text(
        HEADER + "target:\n  stage: Production\nmodels:\n  fraud-detector: 2\n")
    (folder / "champion.yaml").write_text(
        HEADER + "target:\n  alias: champion\nmodels:\n  fraud-detector: 2\n")
    env = {"MLFLOW_TRACKING_URI": uri, **extra}

    planned = run_cli("plan", str(folder), env=env)
    assert planned.code == 0, planned.err
    assert "fraud-detector v2: None → Production" in planned.out
    applied = run_cli("apply", str(folder), env=env)
    assert applied.code == 0, applied.err
    assert "3 change(s) applied" in applied.out  # v2 in, v1 archived, @champion
    status = run_cli("status", str(folder), env=env)
    assert status.code == 0, status.err
    assert status.out.count("Synced") == 2, status.out
    again = run_cli("plan", str(folder), "--detailed-exitcode", env=env)
    assert again.code == 0 and "No changes." in again.out, again.out + again.err


def test_a_tracking_uri_without_a_scheme_is_one_line_with_the_fix(tmp_path: Path) -> None:
    """`MLFLOW_TRACKING_URI=127.0.0.1:5000` is refused in one line that shows the http://
    and sqlite:/// spellings, not taken for a folder and not a traceback."""
    folder = tmp_path / "environments"
    folder.mkdir()
    (folder / "production.yaml").write_text(
        HEADER + "target:\n  stage: Production\nmodels:\n  fraud-detector: 2\n")
    result = run_cli("plan", str(folder), env={"MLFLOW_TRACKING_URI": "127.0.0.1:5000"})
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "no scheme" in lines[0], result.err
    assert "http://127.0.0.1:5000" in lines[0] and "sqlite:///" in lines[0]


def test_a_stage_environment_on_unity_catalog_is_a_validation_error(tmp_path: Path) -> None:
    """With a `databricks-uc` registry (aliases, no stages), `validate` and `plan` refuse a
    stage environment with its file:line and the fix, before contacting any registry."""
    folder = tmp_path / "environments"
    folder.mkdir()
    (folder / "production.yaml").write_text(
        HEADER + "target:\n  stage: Production\nmodels:\n  fraud-detector: 2\n")
    (folder / "champion.yaml").write_text(
        HEADER + "target:\n  alias: champion\nmodels:\n  fraud-detector: 2\n")
    for command in ("validate", "plan"):
        result = run_cli(command, str(folder), env={"MLFLOW_TRACKING_URI": "databricks-uc"})
        assert result.code == 1, result.out
        assert f"{folder / 'production.yaml'}:3: target stage Production: registry " \
               "'default' has no stages (Unity Catalog); use `alias: <name>`" in result.err
        assert "champion.yaml" not in result.err and "Traceback" not in result.err
