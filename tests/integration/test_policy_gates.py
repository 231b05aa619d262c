"""Promotion gates in a reconcile pass against the real MLflow server, with real runs and
logged metrics: each failing version is refused with its reason while the rest converge."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from mlflow_gitops.adapters.mlflow.registry import MlflowRegistry
from mlflow_gitops.core.model import Gate, Promotion
from mlflow_gitops.core.tags import ownership_tag
from mlflow_gitops.loop.reconciler import reconcile
from mlflow_gitops.policy.facts import make_policy

from tests.support.builders import desired, env
from tests.support.registry_helpers import Recording, stages_of
from tests.support.runs import logged_version

GATES = (Gate(metric="accuracy", min=0.9, line=9), Gate(metric="latency_p95_ms", max=120, line=11),
         Gate(tag="validation_status", equals="passed", line=13))
GOOD = {"accuracy": 0.95, "latency_p95_ms": 80.0}
PASSED = {"validation_status": "passed"}


@pytest.fixture()
def registry(mlflow_server: Any) -> Recording:
    return Recording(MlflowRegistry(mlflow_server.uri))


def champion(models: dict[str, int], gates: tuple[Gate, ...] = GATES) -> Any:
    """production: alias @champion, promoted from staging through `gates`."""
    return replace(env("production", "alias:champion", models),
                   promotion=Promotion("staging", None, gates, line=7))


def test_each_failing_gate_refuses_its_model_while_the_rest_converge(
        mlflow_client: Any, registry: Recording, unique: str) -> None:
    """With staging applied first, below min, above max, missing metric, missing tag and
    never-in-staging are each refused with the value and threshold or the reason; the
    passing model converges."""
    low, high, nometric, notag, never, ok = (f"{k}-{unique}" for k in
                                             ("low", "high", "nometric", "notag", "never", "ok"))
    logged_version(mlflow_client, low, {"accuracy": 0.81, "latency_p95_ms": 80}, PASSED)
    logged_version(mlflow_client, high, {"accuracy": 0.95, "latency_p95_ms": 131}, PASSED)
    logged_version(mlflow_client, nometric, {"latency_p95_ms": 80}, PASSED)
    logged_version(mlflow_client, notag, GOOD, {"validation_status": "failed"})
    logged_version(mlflow_client, never, GOOD, PASSED)
    logged_version(mlflow_client, never, GOOD, PASSED)
    logged_version(mlflow_client, ok, GOOD, PASSED)
    staged = {low: 1, high: 1, nometric: 1, notag: 1, never: 2, ok: 1}
    assert reconcile(desired(env("staging", "stage:Staging", staged)),
                     {"default": registry}, policy=make_policy()).ok
    state = desired(env("staging", "stage:Staging", staged),
                    champion({m: 1 for m in staged}))
    result = reconcile(state, {"default": registry}, policy=make_policy())

    assert not result.ok
    refused = {e.model: e for e in result.plan.errors}
    assert set(refused) == {low, high, nometric, notag, never}
    assert all(e.kind == "gate" and e.environment == "production" for e in refused.values())
    run = mlflow_client.get_model_version(low, "1").run_id
    assert str(refused[low]).endswith(
        f"{low} v1 not promoted: accuracy 0.81 < min 0.9 (run {run[:8]}…)")
    assert "latency_p95_ms 131 > max 120" in refused[high].message
    assert "has no metric 'accuracy' (gate min 0.9)" in refused[nometric].message
    assert "tag validation_status is 'failed', required 'passed'" in refused[notag].message
    assert "never in staging" in refused[never].message
    metric = refused[low].gates[2]
    assert (metric.name, metric.actual, metric.required) == ("metric accuracy", "0.81", ">= 0.9")

    assert mlflow_client.get_registered_model(ok).aliases == {"champion": "1"}
    for model in refused:
        assert mlflow_client.get_registered_model(model).aliases == {}
        assert ownership_tag("production") not in mlflow_client.get_model_version(
            model, "1").tags
    assert stages_of(mlflow_client, low) == {1: "Staging"}  # staging converged
    assert stages_of(mlflow_client, never) == {1: "None", 2: "Staging"}


def test_passing_version_is_promoted_with_its_gate_results(
        mlflow_client: Any, registry: Recording, unique: str) -> None:
    """A version that holds staging and passes every gate is promoted; the change carries
    each gate's actual value and threshold."""
    name = f"pass-{unique}"
    logged_version(mlflow_client, name, GOOD, PASSED, stage="Staging")
    state = desired(env("staging", "stage:Staging", {name: 1}), champion({name: 1}))
    result = reconcile(state, {"default": registry}, policy=make_policy())
    assert result.ok, result.plan.errors
    (change,) = result.plan.changes
    assert [(g.name, g.passed, g.actual, g.required) for g in change.gates] == [
        ("status", True, "READY", "READY"),
        ("from staging", True, "holds stage Staging now", "in staging (stage Staging)"),
        ("metric accuracy", True, "0.95", ">= 0.9"),
        ("metric latency_p95_ms", True, "80", "<= 120"),
        ("tag validation_status", True, "'passed'", "= 'passed'"),
    ]
    assert mlflow_client.get_registered_model(name).aliases == {"champion": "1"}


def test_rollback_to_a_version_production_held_passes_a_gate_added_later(
        mlflow_client: Any, registry: Recording, unique: str) -> None:
    """v1 served, then v2; a stricter gate is added and production goes back to v1, which
    fails it: the rollback goes through (the controller's record that v1 served) and the
    plan says gates were skipped."""
    name = f"rollback-{unique}"
    logged_version(mlflow_client, name, {"accuracy": 0.91}, stage="Staging")
    logged_version(mlflow_client, name, {"accuracy": 0.97})
    staging = env("staging", "stage:Staging", {name: 1})
    loose = (Gate(metric="accuracy", min=0.9),)
    assert reconcile(desired(staging, champion({name: 1}, loose)), {"default": registry},
                     policy=make_policy()).ok
    staging = env("staging", "stage:Staging", {name: 2})
    first = reconcile(desired(staging, champion({name: 2}, loose)), {"default": registry},
                      policy=make_policy())
    (waiting,) = first.plan.errors  # v2 was assigned to staging in the same change
    assert waiting.kind == "waiting" and "staging applies it first" in waiting.message
    assert reconcile(desired(staging, champion({name: 2}, loose)), {"default": registry},
                     policy=make_policy()).ok
    strict = (Gate(metric="accuracy", min=0.95),)
    result = reconcile(desired(staging, champion({name: 1}, strict)), {"default": registry},
                       policy=make_policy())
    assert result.ok, result.plan.errors
    (change,) = result.plan.changes
    assert change.note.startswith("rollback to v1, served in production before (applied by "
                                  "commit c0ffee at ")
    assert mlflow_client.get_registered_model(name).aliases == {"champion": "1"}


def test_metrics_are_read_once_per_run_and_only_for_promotions(
        mlflow_client: Any, registry: Recording, unique: str) -> None:
    """Run metrics are fetched lazily: none for models with nothing to promote, one read per
    run even when two environments promote the same version."""
    idle, busy = f"idle-{unique}", f"busy-{unique}"
    logged_version(mlflow_client, idle, GOOD, PASSED, stage="Staging")
    mlflow_client.set_registered_model_alias(idle, "champion", "1")
    mlflow_client.set_registered_model_alias(idle, "canary", "1")
    logged_version(mlflow_client, busy, GOOD, PASSED, stage="Staging")
    reads: list[str] = []
    original = registry.run_metrics

    def counting(run_id: str) -> Any:
        reads.append(run_id)
        return original(run_id)

    registry.run_metrics = counting  # type: ignore[method-assign]
    canary = replace(env("canary", "alias:canary", {idle: 1, busy: 1}),
                     promotion=Promotion("staging", None, GATES))
    state = desired(env("staging", "stage:Staging", {idle: 1, busy: 1}),
                    champion({idle: 1, busy: 1}), canary)
    assert reconcile(state, {"default": registry}, policy=make_policy()).ok
    assert reads == [mlflow_client.get_model_version(busy, "1").run_id]
