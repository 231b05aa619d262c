"""A prompt's metric gate and MLflow's client-side cache of prompt aliases, against a real
MLflow 3.x server."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from mlflow_gitops.adapters.mlflow.registry import MlflowRegistry
from mlflow_gitops.core.model import (
    PROMPT_RUNS_TAG,
    DesiredState,
    Gate,
    ModelEntry,
    Promotion,
    frozen_map,
)
from mlflow_gitops.loop.reconciler import reconcile
from mlflow_gitops.policy.facts import make_policy

from tests.support.builders import desired, env


@pytest.fixture()
def genai(mlflow_server: Any) -> Any:
    import mlflow

    mlflow.set_tracking_uri(mlflow_server.uri)
    mlflow.set_registry_uri(mlflow_server.uri)
    return mlflow.genai


def champion(prompt: str, version: int, alias: str, gates: tuple[Gate, ...] = ()
             ) -> DesiredState:
    """An alias environment listing `prompt` (under prompts:) at `version`."""
    base = replace(env("champion", f"alias:{alias}", {}),
                   promotion=Promotion(gates=gates, line=7) if gates else None)
    return desired(replace(base, models=frozen_map(
        {prompt: ModelEntry(version, line=12, kind="prompt")})))


def run_with(client: Any, experiment: str, accuracy: float) -> str:
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "accuracy", accuracy)
    client.set_terminated(run.info.run_id)
    return str(run.info.run_id)


def test_a_metric_gate_reads_the_run_named_by_the_prompt_version(
        genai: Any, mlflow_client: Any, mlflow_server: Any, unique: str) -> None:
    """A prompt version whose tag mlflow.prompt.associatedRunIds names a run with accuracy
    0.95 passes `accuracy >= 0.9`; one naming a run with 0.5 is Refused with the value; one
    linked only through link_prompt_version_to_run (MLflow 3 tags the run, not the version)
    names no run and is Refused as a model version without a source run is."""
    prompt, alias = f"gated-{unique}", f"g{unique.replace('-', '')}"
    for template in ("A {{x}}", "B {{x}}", "C {{x}}"):
        genai.register_prompt(name=prompt, template=template)
    for version, accuracy in ((1, 0.95), (2, 0.5)):
        mlflow_client.set_prompt_version_tag(prompt, version, PROMPT_RUNS_TAG,
                                             run_with(mlflow_client, f"exp-{prompt}", accuracy))
    mlflow_client.link_prompt_version_to_run(run_with(mlflow_client, f"exp-{prompt}", 0.99),
                                             f"prompts:/{prompt}/3")
    gates = (Gate(metric="accuracy", min=0.9, line=9),)
    registry = {"default": MlflowRegistry(mlflow_server.uri)}
    good = reconcile(champion(prompt, 1, alias, gates), registry, policy=make_policy())
    assert good.ok, good.plan.errors
    assert int(mlflow_client.get_prompt_version_by_alias(prompt, alias).version) == 1
    for version, reason in ((2, "accuracy 0.5 < min 0.9"), (3, "has no source run")):
        refused = reconcile(champion(prompt, version, alias, gates), registry,
                            policy=make_policy())
        [error] = refused.plan.errors
        assert error.kind == "gate" and error.model == prompt, error
        assert reason in error.message, error
        assert refused.plan.changes == ()
    assert int(mlflow_client.get_prompt_version_by_alias(prompt, alias).version) == 1


def test_load_prompt_by_alias_can_serve_the_old_version_from_its_cache(
        genai: Any, mlflow_server: Any, unique: str) -> None:
    """After an apply moves the alias, load_prompt('prompts:/x@alias') in a process that
    loaded it before still returns the old version (MLflow's alias cache, 60 s by default);
    with cache_ttl_seconds=0 it returns the new one."""
    prompt, alias = f"cached-{unique}", f"c{unique.replace('-', '')}"
    genai.register_prompt(name=prompt, template="Old {{x}}")
    genai.register_prompt(name=prompt, template="New {{x}}")
    registry = {"default": MlflowRegistry(mlflow_server.uri)}
    assert reconcile(champion(prompt, 1, alias), registry).ok
    assert int(genai.load_prompt(f"prompts:/{prompt}@{alias}").version) == 1
    assert reconcile(champion(prompt, 2, alias), registry).ok
    assert int(genai.load_prompt(f"prompts:/{prompt}@{alias}").version) == 1
    assert int(genai.load_prompt(f"prompts:/{prompt}@{alias}", cache_ttl_seconds=0
                                 ).version) == 2
