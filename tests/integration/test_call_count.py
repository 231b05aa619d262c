"""Cost: a converged reconcile reads the managed models in bulk pages, never one
call per model nor the registry's unmanaged models, and writes nothing. Calls are counted by
a proxy in front of the real server."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from mlflow_gitops.adapters.mlflow.registry import MlflowRegistry
from mlflow_gitops.loop.reconciler import reconcile

from tests.support.builders import desired, env
from tests.support.bulk_seed import add_models
from tests.support.cli import run_cli
from tests.support.counting_proxy import CountingProxy
from tests.support.registry_helpers import make_model

MODELS = 200


@pytest.fixture(scope="module")
def fleet(mlflow_server: Any) -> list[str]:
    """200 models with 2 versions each: v1 in Production, v2 in Staging, @champion on v1."""
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server.uri, mlflow_server.uri)
    names = [f"fleet-{i:03d}" for i in range(MODELS)]
    for name in names:
        make_model(client, name, 2, {1: "Production", 2: "Staging"}, {"champion": 1})
    return names


def fleet_state(names: list[str]):  # type: ignore[no-untyped-def]
    return desired(env("production", "stage:Production", {n: 1 for n in names}),
                   env("staging", "stage:Staging", {n: 2 for n in names}),
                   env("champion", "alias:champion", {n: 1 for n in names}))


def test_converged_reconcile_reads_pages_not_models(mlflow_server: Any, fleet: list[str]) -> None:
    """With 50-model and 100-version pages, a converged pass of 200 models makes at most
    ceil(models/50) + ceil(versions/100) reads and zero writes."""
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server.uri, mlflow_server.uri)
    total_models = len(client.search_registered_models(max_results=1000))
    total_versions = len(client.search_model_versions(max_results=10000))
    with CountingProxy(mlflow_server.uri) as proxy:
        registry = MlflowRegistry(proxy.uri, model_page=50, version_page=100)
        result = reconcile(fleet_state(fleet), {"default": registry})
        assert result.ok and result.plan.changes == ()
        bound = math.ceil(total_models / 50) + math.ceil(total_versions / 100)
        assert proxy.writes() == 0
        assert 0 < proxy.reads() <= bound, proxy.counts
        assert proxy.reads() < MODELS / 10


def test_converged_cli_plan_makes_two_reads(mlflow_server: Any, fleet: list[str],
                                            tmp_path: Path) -> None:
    """`mlflow-gitops plan` on 200 converged models: one models page and one versions page."""
    folder = tmp_path / "environments"
    folder.mkdir()
    for name, target, version in (("production", "stage: Production", 1),
                                  ("staging", "stage: Staging", 2),
                                  ("champion", "alias: champion", 1)):
        body = "".join(f"  {n}: {version}\n" for n in fleet)
        (folder / f"{name}.yaml").write_text(
            f"apiVersion: mlflow-gitops/v1\nkind: Environment\ntarget:\n  {target}\n"
            f"models:\n{body}")
    with CountingProxy(mlflow_server.uri) as proxy:
        result = run_cli("plan", str(folder), "--detailed-exitcode",
                         env={"MLFLOW_TRACKING_URI": proxy.uri})
        assert result.code == 0, result.err
        assert "No changes." in result.out
        assert proxy.writes() == 0
        assert proxy.reads() == 2, proxy.counts


def test_converged_pass_reads_the_same_with_10_and_1000_unmanaged_models(
        mlflow_server: Any, fleet: list[str], unique: str) -> None:
    """A converged pass over 200 managed models (one environment pruning, so the ownership
    tag is searched too) makes the same number of reads, at most 4, with 10 and with 1,000
    unmanaged models in the registry."""
    state = desired(env(f"prod{unique}", "stage:Production", {n: 1 for n in fleet},
                        prune=True),
                    env("champion", "alias:champion", {n: 1 for n in fleet}))
    database = mlflow_server.root / "mlflow.db"
    reads = []
    with CountingProxy(mlflow_server.uri) as proxy:
        registry = MlflowRegistry(proxy.uri)
        for size in (10, 1000):
            add_models(database, [f"unmanaged-{unique}-{i:04d}" for i in range(size)], 2)
            proxy.reset()
            result = reconcile(state, {"default": registry})
            assert result.ok and result.plan.changes == (), result.plan.errors
            assert proxy.writes() == 0
            reads.append(proxy.reads())
    assert reads[0] == reads[1] <= 4, reads
    assert set(result.snapshots["default"].models) == set(fleet)


def test_a_server_that_refuses_name_in_is_read_one_model_at_a_time(
        mlflow_server: Any, mlflow_client: Any, fleet: list[str], unique: str) -> None:
    """Where the server answers `name IN (...)` with INVALID_PARAMETER_VALUE (MLflow before
    3), the pass reads each managed model by name instead, sees the same registry, and asks
    with IN only once per process."""
    quoted = f"it's-{unique}"
    make_model(mlflow_client, quoted, 2, {1: "Production"})
    few = [*fleet[:4], quoted]
    state = desired(env("production", "stage:Production", {n: 1 for n in few}))
    with CountingProxy(mlflow_server.uri, refuse_in=True) as proxy:
        registry = MlflowRegistry(proxy.uri)
        result = reconcile(state, {"default": registry})
        assert result.ok and result.plan.changes == (), result.plan.errors
        assert proxy.reads() == 1 + 2 * len(few), proxy.counts  # refused, then get + search
        proxy.reset()
        assert registry.snapshot(few) == MlflowRegistry(mlflow_server.uri).snapshot(few)
        assert proxy.reads() == 2 * len(few), proxy.counts
