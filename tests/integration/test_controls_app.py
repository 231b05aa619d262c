"""The day-two controls as use cases (app/controls) against a real MLflow server: each
returns what it found and what it did, and repeating one changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from mlflow_gitops.adapters.mlflow.registry import MlflowRegistry
from mlflow_gitops.app import controls
from mlflow_gitops.core.errors import NotFound

from tests.support.registry_helpers import make_model


def test_hold_twice_then_release_twice(mlflow_server: Any, mlflow_client: Any,
                                       unique: str) -> None:
    """A second hold keeps the first one's author and reason; a second release finds none."""
    model = f"ctl-{unique}"
    make_model(mlflow_client, model, 1)
    registry = MlflowRegistry(mlflow_server.uri)
    first = controls.hold(registry, model, "production", "ana", "incident 7", 1000.0)
    again = controls.hold(registry, model, "production", "bo", "other", 2000.0)
    assert first.changed and not again.changed
    assert again.control is not None and (again.control.by, again.control.reason) == (
        "ana", "incident 7")
    assert controls.held(registry, model, "staging") is None
    released = controls.release(registry, model, "production")
    assert released.changed and released.control is not None
    assert released.control.reason == "incident 7"
    assert controls.release(registry, model, "production") == controls.ControlOutcome(
        False, None)
    assert "gitops.hold.production" not in mlflow_client.get_registered_model(model).tags


def test_reject_and_undo(mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """Reject writes the version's tag once; undo lifts it; a missing version or model is
    NotFound naming the registry."""
    model = f"ctl-{unique}"
    make_model(mlflow_client, model, 2)
    registry = MlflowRegistry(mlflow_server.uri)
    done = controls.reject(registry, model, 2, "ana", "bad recall", 1000.0)
    assert done.changed
    assert not controls.reject(registry, model, 2, "bo", "again", 2000.0).changed
    assert "gitops.rejected" in mlflow_client.get_model_version(model, "2").tags
    assert "gitops.rejected" not in mlflow_client.get_model_version(model, "1").tags
    undone = controls.undo_reject(registry, model, 2)
    assert undone.changed and undone.control is not None and undone.control.by == "ana"
    assert not controls.undo_reject(registry, model, 2).changed
    with pytest.raises(NotFound, match="v9 does not exist in registry"):
        controls.reject(registry, model, 9, "ana", "x", 1.0)
    with pytest.raises(NotFound, match=f"'{model}-nope' does not exist in registry"):
        controls.hold(registry, f"{model}-nope", "production", "ana", "x", 1.0)
