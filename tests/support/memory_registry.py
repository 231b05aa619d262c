"""An in-memory registry written from core.ports.RegistryPort, for tests of pure code
(planner properties, executor isolation). It records every write call in order."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from mlflow_gitops.core.errors import InvalidRequest, NotFound, TransientRegistryError
from mlflow_gitops.core.model import LiveModel, LiveVersion, Snapshot, frozen_map
from mlflow_gitops.core.ports import RegistryPort
from mlflow_gitops.core.tags import ownership_tag


@dataclass
class MemoryRegistry:
    name: str = "default"
    stages: dict[str, dict[int, str]] = field(default_factory=dict)  # model → version → stage
    aliases: dict[str, dict[str, int]] = field(default_factory=dict)
    tags: dict[tuple[str, int], dict[str, str]] = field(default_factory=dict)
    model_tags: dict[str, dict[str, str]] = field(default_factory=dict)
    calls: list[tuple] = field(default_factory=list)  # type: ignore[type-arg]
    fail_on: set[str] = field(default_factory=set)  # models whose writes fail (unreachable)
    reject: set[str] = field(default_factory=set)  # models whose writes are refused

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> MemoryRegistry:
        reg = cls(name=snapshot.registry)
        for name, model in snapshot.models.items():
            reg.stages[name] = {v: lv.stage for v, lv in model.versions.items()}
            reg.aliases[name] = dict(model.aliases)
            for v, lv in model.versions.items():
                reg.tags[(name, v)] = dict(lv.tags)
            reg.model_tags[name] = dict(model.tags)
        return reg

    def snapshot(self, names: Collection[str] | None = None,
                 owned_by: Collection[str] = ()) -> Snapshot:
        """The port's read; `names=None` (tests only) reads every model."""
        tags = {ownership_tag(env) for env in owned_by}
        wanted = set(self.stages) if names is None else set(names) | {
            model for (model, _), found in self.tags.items() if tags & set(found)}
        models = {}
        for name, versions in self.stages.items():
            if name not in wanted:
                continue
            models[name] = LiveModel(name, frozen_map({
                v: LiveVersion(name, v, stage, tags=frozen_map(self.tags.get((name, v), {})))
                for v, stage in versions.items()}), frozen_map(self.aliases.get(name, {})),
                frozen_map(self.model_tags.get(name, {})))
        return Snapshot(self.name, frozen_map(models))

    def _check(self, model: str, version: int | None = None) -> None:
        if model in self.fail_on:
            raise TransientRegistryError(f"injected failure for {model}")
        if model in self.reject:
            raise InvalidRequest(f"injected refusal for {model}")
        if model not in self.stages or (version is not None and version not in self.stages[model]):
            raise NotFound(f"{model} v{version} not found")

    def transition_stage(self, model: str, version: int, stage: str) -> None:
        self._check(model, version)
        self.calls.append(("transition", model, version, stage))
        self.stages[model][version] = stage

    def set_alias(self, model: str, alias: str, version: int) -> None:
        self._check(model, version)
        self.calls.append(("set_alias", model, alias, version))
        self.aliases.setdefault(model, {})[alias] = version

    def delete_alias(self, model: str, alias: str) -> None:
        self._check(model)
        self.calls.append(("delete_alias", model, alias))
        self.aliases.get(model, {}).pop(alias, None)

    def prepare_writes(self) -> None:
        """Nothing to load: everything is in memory."""

    def set_version_tag(self, model: str, version: int, key: str, value: str) -> None:
        self._check(model, version)
        self.calls.append(("tag", model, version, key, value))
        self.tags.setdefault((model, version), {})[key] = value

    def delete_version_tag(self, model: str, version: int, key: str) -> None:
        self._check(model, version)
        self.calls.append(("delete_tag", model, version, key))
        self.tags.get((model, version), {}).pop(key, None)

    def set_model_tag(self, model: str, key: str, value: str) -> None:
        self._check(model)
        self.calls.append(("model_tag", model, key, value))
        self.model_tags.setdefault(model, {})[key] = value

    def delete_model_tag(self, model: str, key: str) -> None:
        self._check(model)
        self.calls.append(("delete_model_tag", model, key))
        self.model_tags.get(model, {}).pop(key, None)

    def run_metrics(self, run_id: str) -> Mapping[str, float]:
        return {}

    def copy_version(self, source: RegistryPort, model: str, version: int, dst_model: str,
                     tags: Mapping[str, str]) -> LiveVersion:
        raise InvalidRequest("the in-memory registry cannot copy versions between registries")
