"""Seeding the real MLflow server, and a pass-through recorder of the adapter's write calls
(the server stays real; we only note what was asked of it, in order)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

from mlflow_gitops.adapters.mlflow.registry import MlflowRegistry


def make_model(client: Any, name: str, versions: int, stages: dict[int, str] | None = None,
               aliases: dict[str, int] | None = None, run_id: str | None = None) -> None:
    client.create_registered_model(name)
    for _ in range(versions):
        client.create_model_version(name, source="s3://bucket/model", run_id=run_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for version, stage in (stages or {}).items():
            client.transition_model_version_stage(name, str(version), stage)
    for alias, version in (aliases or {}).items():
        client.set_registered_model_alias(name, alias, str(version))


def stages_of(client: Any, name: str) -> dict[int, str]:
    return {int(mv.version): mv.current_stage
            for mv in client.search_model_versions(f"name = '{name}'")}


@dataclass
class Recording:
    """Wraps a real MlflowRegistry and records each write call in order."""

    inner: MlflowRegistry
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.inner.name

    def snapshot(self, names, owned_by=()):  # type: ignore[no-untyped-def]
        return self.inner.snapshot(names, owned_by)

    def run_metrics(self, run_id: str):  # type: ignore[no-untyped-def]
        return self.inner.run_metrics(run_id)

    def transition_stage(self, model: str, version: int, stage: str) -> None:
        self.calls.append(("transition", model, version, stage))
        self.inner.transition_stage(model, version, stage)

    def set_alias(self, model: str, alias: str, version: int) -> None:
        self.calls.append(("set_alias", model, alias, version))
        self.inner.set_alias(model, alias, version)

    def delete_alias(self, model: str, alias: str) -> None:
        self.calls.append(("delete_alias", model, alias))
        self.inner.delete_alias(model, alias)

    def prepare_writes(self) -> None:
        self.inner.prepare_writes()

    def set_version_tag(self, model: str, version: int, key: str, value: str) -> None:
        self.calls.append(("tag", model, version, key, value))
        self.inner.set_version_tag(model, version, key, value)

    def delete_version_tag(self, model: str, version: int, key: str) -> None:
        self.calls.append(("delete_tag", model, version, key))
        self.inner.delete_version_tag(model, version, key)

    def set_model_tag(self, model: str, key: str, value: str) -> None:
        self.calls.append(("model_tag", model, key, value))
        self.inner.set_model_tag(model, key, value)

    def delete_model_tag(self, model: str, key: str) -> None:
        self.calls.append(("delete_model_tag", model, key))
        self.inner.delete_model_tag(model, key)
