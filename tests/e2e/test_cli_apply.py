"""`plan`, `apply` and `status` as processes against the real MLflow server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.cli import run_cli
from tests.support.registry_helpers import make_model, stages_of

HEADER = "apiVersion: mlflow-gitops/v1\nkind: Environment\n"


def stage_env(folder: Path, name: str, stage: str, models: dict[str, int]) -> None:
    body = "".join(f"  {m}: {v}\n" for m, v in models.items())
    (folder / f"{name}.yaml").write_text(
        HEADER + f"target:\n  stage: {stage}\nmodels:\n{body}")


def test_missing_version_fails_that_model_while_others_converge(
        mlflow_server: Any, mlflow_client: Any, envs_dir: Path, unique: str) -> None:
    """apply exits 1 naming the missing version's file and line; the other model converges."""
    good, bad = f"good-{unique}", f"bad-{unique}"
    make_model(mlflow_client, good, 2, {1: "Production"})
    make_model(mlflow_client, bad, 1)
    stage_env(envs_dir, "production", "Production", {bad: 7, good: 2})
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    result = run_cli("apply", str(envs_dir), env=env)
    assert result.code == 1
    assert f"production.yaml:6: {bad} v7 does not exist in registry 'default' (known " \
           "versions: v1)" in result.err
    assert "Traceback" not in result.err
    assert stages_of(mlflow_client, good) == {1: "Archived", 2: "Production"}
    assert stages_of(mlflow_client, bad) == {1: "None"}
    assert "Apply incomplete: 2 change(s) applied, 1 model(s) not converged." in result.out


def test_plan_then_apply_then_nothing_left(mlflow_server: Any, mlflow_client: Any,
                                          envs_dir: Path, unique: str) -> None:
    """plan shows the Terraform-like summary, apply converges, and a second plan is empty
    (exit 2 then 0 with --detailed-exitcode)."""
    name = f"cli-{unique}"
    make_model(mlflow_client, name, 3, {1: "Production", 2: "Staging"})
    stage_env(envs_dir, "production", "Production", {name: 2})
    stage_env(envs_dir, "staging", "Staging", {name: 3})
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    planned = run_cli("plan", str(envs_dir), "--detailed-exitcode", env=env)
    assert planned.code == 2, planned.err
    assert f"+ production  {name} v2: Staging → Production" in planned.out
    assert f"- production  {name} v1: Production → Archived   (replaced)" in planned.out
    assert planned.out.rstrip().endswith("Plan: 2 to promote, 1 to archive, 0 aliases to move.")
    applied = run_cli("apply", str(envs_dir), env=env)
    assert applied.code == 0, applied.err
    again = run_cli("plan", str(envs_dir), "--detailed-exitcode", "--output", "json", env=env)
    assert again.code == 0
    assert json.loads(again.out)["changes"] == []


def test_status_model_shows_who_put_each_version_where(
        mlflow_server: Any, mlflow_client: Any, envs_dir: Path, unique: str) -> None:
    """status --model lists every version with stage, aliases, and the environment and
    commit recorded by the lineage tag."""
    name = f"status-{unique}"
    make_model(mlflow_client, name, 2)
    stage_env(envs_dir, "production", "Production", {name: 2})
    (envs_dir / "champion.yaml").write_text(
        HEADER + f"target:\n  alias: champion\nmodels:\n  {name}: 2\n")
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    assert run_cli("apply", str(envs_dir), env=env).code == 0
    shown = run_cli("status", str(envs_dir), "--model", name, "--output", "json", env=env)
    assert shown.code == 0, shown.err
    versions = json.loads(shown.out)["registries"]["default"]
    assert versions[0] == {
        "version": 2, "stage": "Production", "aliases": ["champion"], "status": "READY",
        "run_id": None, "serving_in": ["champion", "production"],
        "environments": [{"environment": "champion", "commit": "local"},
                         {"environment": "production", "commit": "local"}]}
    table = run_cli("status", str(envs_dir), env=env)
    assert table.code == 0
    assert f"production   stage Production  {name}  v2       v2    Synced" in table.out


def test_no_tracking_uri_is_one_clear_line(envs_dir: Path) -> None:
    """Without MLFLOW_TRACKING_URI or --config, plan says how to set the registry."""
    stage_env(envs_dir, "production", "Production", {"m": 1})
    result = run_cli("plan", str(envs_dir), env={"MLFLOW_TRACKING_URI": ""})
    assert result.code == 1
    assert result.err.strip() == ("mlflow-gitops: error: no registry configured: set "
                                  "MLFLOW_TRACKING_URI (e.g. export MLFLOW_TRACKING_URI="
                                  "http://127.0.0.1:5000) or pass --config")
