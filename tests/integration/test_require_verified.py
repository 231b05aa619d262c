"""`promotion: {from: staging, require_verified: true}` against the real MLflow server: the
controller's own `gitops.verified.staging` record (written when staging's verification
passed) is what lets a version into production; none refuses it, a running window waits."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

from mlflow_gitops.adapters.mlflow.registry import MlflowRegistry
from mlflow_gitops.core.model import Promotion, Verify
from mlflow_gitops.core.states import State
from mlflow_gitops.core.tags import verified_tag, verify_tag
from mlflow_gitops.loop.reconciler import reconcile
from mlflow_gitops.policy import verify as window
from mlflow_gitops.policy.evidence import Stint
from mlflow_gitops.policy.facts import make_policy

from tests.support.builders import desired, env
from tests.support.runs import logged_version


def test_only_a_version_verified_upstream_is_promoted(
        mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """Applied to staging but not verified: refused; verifying there: waiting until the
    window ends; verified there (the controller's record): promoted."""
    model = f"rv-{unique}"
    logged_version(mlflow_client, model, {"accuracy": 0.95})
    registry = MlflowRegistry(mlflow_server.uri)
    staging = env("staging", "alias:challenger", {model: 1})
    assert reconcile(desired(staging), {"default": registry}, policy=make_policy()).ok
    production = replace(env("production", "alias:champion", {model: 1}),
                         promotion=Promotion("staging", require_verified=True, line=7))
    state = desired(staging, production)

    def attempt() -> Any:
        return reconcile(state, {"default": registry}, policy=make_policy(), dry_run=True)

    refused = attempt()
    (error,) = refused.plan.errors
    assert error.kind == "gate" and "not verified in staging" in error.message

    applied = mlflow_client.get_model_version(model, "1").tags["gitops.applied.staging"]
    stint = Stint("staging", "c0ffee", entered=json.loads(applied)["at"])
    running = window.start(stint, Verify(duration_seconds=600, interval_seconds=60), None)
    mlflow_client.set_model_version_tag(model, "1", verify_tag("staging"), running.to_json())
    waiting = attempt()
    (row,) = [r for r in waiting.status if r.environment == "production"]
    assert row.sync == State.Waiting and row.until == running.ends

    mlflow_client.set_model_version_tag(model, "1", verified_tag("staging"),
                                        window.verified_record(running, time.time()))
    promoted = attempt()
    assert promoted.ok and [c.describe() for c in promoted.plan.changes] == [
        f"{model} @champion: unset → v1"]
