"""A release window against a real MLflow server, with an injected clock instead of waiting
for the wall clock: before the window opens a promotion waits and nothing is written; at
the opening the next pass applies it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from mlflow_gitops.adapters.mlflow.registry import MlflowRegistry
from mlflow_gitops.core.model import Promotion, Window
from mlflow_gitops.loop.reconciler import reconcile
from mlflow_gitops.policy.facts import make_policy

from tests.support.builders import desired, env
from tests.support.registry_helpers import Recording, make_model, stages_of

MONDAY_8 = datetime(2026, 12, 7, 8, tzinfo=timezone.utc).timestamp()


def test_allow_window_lets_the_promotion_through_when_it_opens(
        mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """Seconds before Monday's 08:00 UTC allow window the promotion waits (until = 08:00)
    with no write call; the pass at 08:00 promotes it and archives the old version."""
    name = f"allow-{unique}"
    make_model(mlflow_client, name, 2, {1: "Production"})
    window = Window("allow", "0 8 * * MON", 3600, "UTC")
    production = replace(env("production", "stage:Production", {name: 2}),
                         promotion=Promotion(windows=(window,)))
    registry = Recording(MlflowRegistry(mlflow_server.uri))
    now = [MONDAY_8 - 5]
    policy = make_policy(clock=lambda: now[0])

    waiting = reconcile(desired(production), {"default": registry}, policy=policy)
    [error] = waiting.plan.errors
    assert (error.kind, error.until) == ("waiting", MONDAY_8)
    assert [row.sync for row in waiting.status] == ["Waiting"]
    assert registry.calls == []
    assert stages_of(mlflow_client, name) == {1: "Production", 2: "None"}

    now[0] = MONDAY_8
    opened = reconcile(desired(production), {"default": registry}, policy=policy)
    assert opened.ok, opened.plan.errors
    assert stages_of(mlflow_client, name) == {1: "Archived", 2: "Production"}
