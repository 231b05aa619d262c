"""Small builders for desired and live values, so tests read as the YAML they stand for."""

from __future__ import annotations

from mlflow_gitops.core.model import (
    DesiredState,
    Environment,
    LiveModel,
    LiveVersion,
    ModelEntry,
    Snapshot,
    SyncOptions,
    Target,
    frozen_map,
)


def env(name: str, target: str, models: dict[str, int], registry: str = "default",
        **sync: bool) -> Environment:
    kind, _, value = target.partition(":")
    return Environment(
        name=name, file=f"environments/{name}.yaml",
        target=Target("stage", value) if kind == "stage" else Target("alias", value),
        registry=registry, sync=SyncOptions(**sync),
        models=frozen_map({m: ModelEntry(v, line=10 + i)
                           for i, (m, v) in enumerate(models.items())}),
    )


def desired(*envs: Environment, commit: str = "c0ffee") -> DesiredState:
    return DesiredState(tuple(envs), commit)


def live(models: dict[str, dict[int, str]], aliases: dict[str, dict[str, int]] | None = None,
         tags: dict[tuple[str, int], dict[str, str]] | None = None,
         registry: str = "default",
         model_tags: dict[str, dict[str, str]] | None = None) -> Snapshot:
    out = {}
    for name, versions in models.items():
        out[name] = LiveModel(name, frozen_map({
            v: LiveVersion(name, v, stage, tags=frozen_map((tags or {}).get((name, v), {})))
            for v, stage in versions.items()}), frozen_map((aliases or {}).get(name, {})),
            frozen_map((model_tags or {}).get(name, {})))
    return Snapshot(registry, frozen_map(out))
