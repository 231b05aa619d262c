"""Promotion across registries: a second real MLflow server as `prod`, the session server as
`default`. The version is copied once (by value between servers, by `models:/` reference
inside one), carries its lineage tags and then holds the target."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from mlflow_gitops.adapters.mlflow.registry import MlflowRegistry
from mlflow_gitops.core.model import ModelEntry, Promotion, frozen_map
from mlflow_gitops.core.tags import ownership_tag
from mlflow_gitops.loop.reconciler import reconcile
from mlflow_gitops.policy.facts import make_policy

from tests.support.builders import desired, env
from tests.support.cli import run_cli
from tests.support.runs import logged_version
from tests.support.servers import MlflowServer

HEADER = "apiVersion: mlflow-gitops/v1\nkind: Environment\n"


@pytest.fixture(scope="module")
def prod_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("prod-mlflow"))
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def prod_client(prod_server: MlflowServer) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=prod_server.uri, registry_uri=prod_server.uri)


def write_envs(folder: Path, model: str, staged: int, promoted: dict[str, int]) -> None:
    (folder / "staging.yaml").write_text(
        HEADER + f"target:\n  stage: Staging\nmodels:\n  {model}: {staged}\n")
    (folder / "production.yaml").write_text(
        HEADER + "target:\n  stage: Production\nregistry: prod\npromotion:\n  from: staging\n"
        "  gates:\n    - metric: accuracy\n      min: 0.9\nmodels:\n"
        + "".join(f"  {m}: {v}\n" for m, v in promoted.items()))


def test_copy_to_another_server_happens_once_with_lineage_and_holds_the_target(
        tmp_path: Path, mlflow_server: Any, prod_server: MlflowServer, mlflow_client: Any,
        prod_client: Any, envs_dir: Path, unique: str) -> None:
    """production.yaml on `prod` says v2 (default's number): plan shows the pending copy, two
    applies copy it once (artifacts, metrics, lineage tags) into Production; a version that
    fails the gate is never copied."""
    name, weak = f"fraud-{unique}", f"weak-{unique}"
    logged_version(mlflow_client, name, {"accuracy": 0.95}, {"team": "risk"})
    logged_version(mlflow_client, name, {"accuracy": 0.97}, {"team": "risk"}, stage="Staging")
    logged_version(mlflow_client, weak, {"accuracy": 0.5}, stage="Staging")
    write_envs(envs_dir, name, 2, {name: 2, weak: 1})
    config = tmp_path / "config.yaml"
    config.write_text(f"registries:\n  default:\n    tracking_uri: {mlflow_server.uri}\n"
                      f"  prod:\n    tracking_uri: {prod_server.uri}\n")
    args = (str(envs_dir), "--config", str(config))

    planned = run_cli("plan", *args, "--output", "markdown")
    assert planned.code == 1, planned.err  # weak is refused
    assert f"#### production: {name} v1: None → Production" in planned.out
    assert f"> copy of default/{name} v2: apply creates it as a new version" in planned.out
    assert "| metric accuracy | ✅ pass | 0.97 | >= 0.9 |" in planned.out
    assert f"{weak} v1 not promoted: accuracy 0.5 < min 0.9" in planned.out

    outputs = []
    for _ in range(2):
        applied = run_cli("apply", *args)
        assert applied.code == 1 and "Traceback" not in applied.err
        assert f"{weak} v1 not promoted: accuracy 0.5 < min 0.9" in applied.err
        outputs.append(applied.out)
    assert f"copied default/{name} v2 → prod/{name} v1 (for production)" in outputs[0]
    assert "copied" not in outputs[1] and "0 change(s) applied" in outputs[1]

    (copy,) = prod_client.search_model_versions(f"name = '{name}'")
    assert copy.current_stage == "Production"
    assert copy.tags["gitops.source.registry"] == "default"
    assert copy.tags["gitops.source.model"] == name
    assert copy.tags["gitops.source.version"] == "2"
    assert copy.tags["gitops.source.uri"] == f"{mlflow_server.uri}/#/models/{name}/versions/2"
    assert copy.tags["team"] == "risk"
    assert ownership_tag("production") in copy.tags
    assert ownership_tag("staging") not in copy.tags
    assert "gitops.applied.production" in copy.tags  # the copy's own record, not its source's
    run = prod_client.get_run(copy.run_id)
    assert run.data.metrics["accuracy"] == 0.97
    files = {f.path for f in prod_client.list_artifacts(copy.run_id, "model")}
    assert files == {"model/MLmodel", "model/weights.bin"}
    assert prod_client.search_model_versions(f"name = '{weak}'") == []
    assert mlflow_client.get_model_version(name, "2").current_stage == "Staging"

    again = json.loads(run_cli("plan", *args, "--output", "json").out)
    assert again["changes"] == [] and [e["model"] for e in again["errors"]] == [weak]


def test_copy_within_one_server_is_a_models_reference_under_model_name(
        mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """Two registry names on one server: the copy is registered from `models:/name/N` under
    the entry's `model_name:`, found again by its tags on the second pass (no second copy)."""
    name = f"churn-{unique}"
    logged_version(mlflow_client, name, {"accuracy": 0.93}, stage="Staging")
    registries = {"default": MlflowRegistry(mlflow_server.uri, name="default"),
                  "mirror": MlflowRegistry(mlflow_server.uri, name="mirror")}
    production = env("production", "stage:Production", {}, registry="mirror")
    production = replace(production, promotion=Promotion("staging", None, ()), models=frozen_map(
        {name: ModelEntry(1, line=9, registered_name=f"{name}-prod")}))
    state = desired(env("staging", "stage:Staging", {name: 1}), production)
    first = reconcile(state, registries, policy=make_policy())
    assert first.ok, first.plan.errors
    assert [(c.registry, c.model, c.version) for c in first.copies] == [
        ("mirror", f"{name}-prod", 1)]
    second = reconcile(state, registries, policy=make_policy())
    assert second.ok and second.copies == () and second.plan.changes == ()
    (copy,) = mlflow_client.search_model_versions(f"name = '{name}-prod'")
    assert copy.source == f"models:/{name}/1"
    assert copy.current_stage == "Production"
    assert copy.tags["gitops.source.version"] == "1"


def test_a_rejection_in_the_source_registry_follows_the_copy_even_as_a_revert(
        mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """default v1 is copied to `mirror` and replaced there by v2; rejecting v1 in default
    afterwards refuses production's revert to its copy (no write), and lifting the rejection
    in default lets the same revert through."""
    name = f"reject-{unique}"
    for _ in range(2):
        logged_version(mlflow_client, name, {"accuracy": 0.93})
    registries = {"default": MlflowRegistry(mlflow_server.uri, name="default"),
                  "mirror": MlflowRegistry(mlflow_server.uri, name="mirror")}

    def state(version: int) -> Any:
        production = env("production", "stage:Production", {}, registry="mirror")
        production = replace(production, promotion=Promotion("staging", None, ()),
                             models=frozen_map({name: ModelEntry(version, line=9,
                                                                 registered_name=f"{name}-p")}))
        return desired(env("staging", "stage:Staging", {name: version}), production)

    for version in (1, 2):  # staging takes it, then production copies it from there
        assert reconcile(state(version), registries, policy=make_policy()).ok
        assert reconcile(state(version), registries, policy=make_policy()).copies
    copies = {int(v.tags["gitops.source.version"]): v
              for v in mlflow_client.search_model_versions(f"name = '{name}-p'")}
    assert {s: v.current_stage for s, v in copies.items()} == {1: "Archived", 2: "Production"}

    mlflow_client.set_model_version_tag(name, "1", "gitops.rejected", json.dumps(
        {"by": "bob", "at": "2026-12-05T16:00:00Z", "reason": "leaks PII"}))
    revert = reconcile(state(1), registries, policy=make_policy())
    refused = [e for e in revert.plan.errors if e.registry == "mirror"]
    assert [(e.environment, e.kind) for e in refused] == [("production", "gate")]
    assert "of registry 'default' (a copy across registries), rejected there by bob" \
        in refused[0].message and "leaks PII" in refused[0].message
    assert [c for c in revert.plan.changes if c.registry == "mirror"] == []
    stages = {v.version: v.current_stage
              for v in mlflow_client.search_model_versions(f"name = '{name}-p'")}
    assert stages[copies[2].version] == "Production"
    assert stages[copies[1].version] == "Archived"

    mlflow_client.delete_model_version_tag(name, "1", "gitops.rejected")
    assert reconcile(state(1), registries, policy=make_policy()).ok
    assert mlflow_client.get_model_version(f"{name}-p", copies[1].version).current_stage \
        == "Production"
