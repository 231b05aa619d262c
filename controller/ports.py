"""What the core needs from the outside world, as protocols. Adapters implement them; tests
of pure code implement them in memory (tests/support/memory_registry.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from controller.model import Snapshot


class RegistryPort(Protocol):
    """One MLflow model registry. Every method raises controller.errors.RegistryError."""

    name: str

    def snapshot(self) -> Snapshot:
        """Every registered model with its versions, stages, tags and aliases, in bulk."""
        ...

    def transition_stage(self, model: str, version: int, stage: str) -> None: ...

    def set_alias(self, model: str, alias: str, version: int) -> None: ...

    def delete_alias(self, model: str, alias: str) -> None: ...

    def set_version_tag(self, model: str, version: int, key: str, value: str) -> None: ...

    def run_metrics(self, run_id: str) -> Mapping[str, float]:
        """Latest value of every metric of a run (policy gates, diff)."""
        ...
