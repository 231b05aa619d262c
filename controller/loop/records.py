"""Write the `self_heal: false` records (mlflow_gitops.planning.converged) after a pass:
one registered-model tag call per entry that converged, under the same guard as every
other write (leadership, shutdown, a registry found dead this pass)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from mlflow_gitops.core.errors import RegistryError
from mlflow_gitops.core.plan import ModelError
from mlflow_gitops.core.ports import RegistryPort
from mlflow_gitops.planning.converged import RecordWrite


def write_records(writes: Sequence[RecordWrite], registries: Mapping[str, RegistryPort],
                  may_write: Callable[[], bool] | None = None,
                  skip: frozenset[str] = frozenset()) -> list[ModelError]:
    """Write each record; a failure is an error for its entry (the next pass writes it
    again: the entry still counts as changed and, being converged, changes nothing)."""
    errors: list[ModelError] = []
    dead = set(skip)
    for w in writes:
        if w.registry in dead or (may_write is not None and not may_write()):
            continue  # nothing lost: the entry is recorded by a later pass
        registry = registries[w.registry]
        try:
            if w.value is None:
                registry.delete_model_tag(w.model, w.key)
            else:
                registry.set_model_tag(w.model, w.key, w.value)
        except RegistryError as exc:
            if exc.transient:
                dead.add(w.registry)
            errors.append(ModelError(
                w.registry, w.environment, w.model, "apply",
                f"{w.model} converged in {w.environment}, but recording it failed: {exc}",
                w.file, w.line))
    return errors
