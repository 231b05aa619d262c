"""Prompts under the promotion policy (from, tag and metric gates), in the ledger, and
MLflow's client-side cache of prompt aliases, against a real MLflow 3.x server."""

from __future__ import annotations

import time
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


def test_a_prompt_alias_move_is_a_ledger_record_of_kind_prompt(
        genai: Any, mlflow_server: Any, unique: str) -> None:
    """apply's pass records each move of a prompt's alias in the ledger (a run of the ledger
    experiment): kind prompt, action set_alias, from and to version, the merge's author."""
    from mlflow_gitops.adapters.mlflow.ledger import MlflowLedger
    from mlflow_gitops.loop.ledger import Ledger

    prompt, alias = f"ledgered-{unique}", f"l{unique.replace('-', '')}"
    genai.register_prompt(name=prompt, template="One {{x}}")
    genai.register_prompt(name=prompt, template="Two {{x}}")
    registry = MlflowRegistry(mlflow_server.uri)
    store = MlflowLedger(registry, f"ledger-{unique}")
    writer = Ledger({"default": store}, "w")
    for version in (1, 2):
        assert reconcile(champion(prompt, version, alias), {"default": registry},
                         ledger=writer, merged_by="Ann <ann@example.com>").ok
    assert writer.state.pending == 0
    records = [r.entry for r in store.read() if r.entry.name == prompt]
    assert [(e.kind, e.action, e.from_version, e.to_version, e.merged_by) for e in records] == [
        ("prompt", "set_alias", None, 1, "Ann <ann@example.com>"),
        ("prompt", "set_alias", 1, 2, "Ann <ann@example.com>")]


def test_from_and_tag_gates_judge_a_prompt_version(
        genai: Any, mlflow_client: Any, mlflow_server: Any, unique: str) -> None:
    """A prompt version not yet in the `from` environment is Refused in champion; once
    staging has it, the tag gate refuses it until the version carries the tag."""
    prompt = f"piped-{unique}"
    suffix = unique.replace("-", "")
    genai.register_prompt(name=prompt, template="One {{x}}")
    genai.register_prompt(name=prompt, template="Two {{x}}")
    mlflow_client.set_prompt_version_tag(prompt, 1, "validation_status", "passed")
    gate = (Gate(tag="validation_status", equals="passed", line=9),)

    def state(staging: int, production: int) -> DesiredState:
        def listing(name: str, alias: str, version: int,
                    promotion: Promotion | None) -> Any:
            return replace(env(name, f"alias:{alias}", {}), promotion=promotion,
                           models=frozen_map({prompt: ModelEntry(version, line=12,
                                                                 kind="prompt")}))
        return desired(listing("staging", f"s{suffix}", staging, None),
                       listing("champion", f"c{suffix}", production,
                               Promotion("staging", None, gate, line=7)))

    registry = {"default": MlflowRegistry(mlflow_server.uri)}
    assert reconcile(state(1, 1), registry, policy=make_policy()).ok
    early = reconcile(state(1, 2), registry, policy=make_policy())
    [error] = early.plan.errors
    assert error.environment == "champion" and error.kind == "gate"
    assert "staging" in error.message, error.message
    untagged = reconcile(state(2, 2), registry, policy=make_policy())
    [error] = untagged.plan.errors
    assert error.environment == "champion" and "validation_status" in error.message
    mlflow_client.set_prompt_version_tag(prompt, 2, "validation_status", "passed")
    assert reconcile(state(2, 2), registry, policy=make_policy()).ok
    assert int(mlflow_client.get_prompt_version_by_alias(prompt, f"c{suffix}").version) == 2


def test_a_prompt_version_waits_out_its_soak_in_the_from_environment(
        genai: Any, mlflow_server: Any, unique: str) -> None:
    """A prompt version that reached staging just now Waits (not Refused) for champion's
    min_soak of one hour, with the time it expects to proceed."""
    prompt = f"soaked-{unique}"
    suffix = unique.replace("-", "")
    genai.register_prompt(name=prompt, template="One {{x}}")

    def listing(name: str, alias: str, promotion: Promotion | None) -> Any:
        return replace(env(name, f"alias:{alias}", {}), promotion=promotion,
                       models=frozen_map({prompt: ModelEntry(1, line=12, kind="prompt")}))

    registry = {"default": MlflowRegistry(mlflow_server.uri)}
    staging = listing("staging", f"s{suffix}", None)
    assert reconcile(desired(staging), registry, policy=make_policy()).ok
    both = desired(staging, listing("champion", f"c{suffix}",
                                    Promotion("staging", 3600, (), line=7)))
    result = reconcile(both, registry, policy=make_policy())
    [error] = result.plan.errors
    assert (error.environment, error.kind) == ("champion", "waiting"), error
    assert error.until is not None and error.until > time.time() + 3000
    assert result.ok and result.plan.changes == ()


def test_prune_removes_the_alias_of_an_owned_prompt_no_longer_listed(
        genai: Any, mlflow_client: Any, mlflow_server: Any, unique: str) -> None:
    """With prune, a prompt this environment put its alias on and no longer lists loses the
    alias; a prompt whose alias was set by hand (no ownership tag) keeps it."""
    owned, kept, foreign = (f"{k}-{unique}" for k in ("owned", "kept", "foreign"))
    alias = f"p{unique.replace('-', '')}"
    for name in (owned, kept, foreign):
        genai.register_prompt(name=name, template=f"{name} {{{{x}}}}")
    mlflow_client.set_prompt_alias(foreign, alias, 1)

    def canary(names: tuple[str, ...], prune: bool) -> DesiredState:
        return desired(replace(env("canary", f"alias:{alias}", {}, prune=prune),
                               models=frozen_map({n: ModelEntry(1, line=12 + i, kind="prompt")
                                                  for i, n in enumerate(names)})))

    registry = {"default": MlflowRegistry(mlflow_server.uri)}
    assert reconcile(canary((owned, kept), False), registry).ok
    pruned = reconcile(canary((kept,), True), registry)
    assert pruned.ok, pruned.plan.errors
    assert [(c.model, c.kind, c.reason) for c in pruned.plan.changes] == [
        (owned, "prompt", "prune")]

    live = MlflowRegistry(mlflow_server.uri).snapshot([owned, kept, foreign]).models
    assert dict(live[owned].aliases) == {}
    assert dict(live[kept].aliases) == dict(live[foreign].aliases) == {alias: 1}
