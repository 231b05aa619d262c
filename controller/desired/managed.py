"""What a pass reads from each registry (SPEC §4 "Cost"): the models the environments list,
under their registered names, plus the models whose versions carry the ownership tag of an
environment that prunes or does not self-heal (a model removed from a file is found by that
tag, not by reading the whole registry). Pure: desired state in, read sets out."""

from __future__ import annotations

from dataclasses import dataclass

from mlflow_gitops.core.model import DesiredState
from mlflow_gitops.desired import crossregistry


@dataclass(frozen=True)
class ReadSet:
    """One registry's share of a pass: `names` to read, and the environments whose owned
    versions (ownership tag) must be found wherever they are (`owned_by`)."""

    names: frozenset[str] = frozenset()
    owned_by: frozenset[str] = frozenset()


def read_sets(desired: DesiredState) -> dict[str, ReadSet]:
    """Every registry the environments use, with what a pass reads from it."""
    names: dict[str, set[str]] = {name: set() for name in desired.registries()}
    owned: dict[str, set[str]] = {name: set() for name in desired.registries()}
    for env in desired.environments:
        names[env.registry].update(crossregistry.registered_name(env, key)
                                   for key in env.models)
        if env.sync.prune or not env.sync.self_heal:
            # Prune finds what left the file; self_heal: false drops the record of a model
            # that left it (planning.converged), so listing it again counts as a change.
            owned[env.registry].add(env.name)
    for route in crossregistry.routes(desired):
        # A copy is found in its own registry and copied from the origin's (or the `from`
        # environment's) registry: both models are needed even if no file there lists them.
        names.setdefault(route.origin_registry, set()).add(route.origin_model)
        if route.copy_from is not None:
            names.setdefault(route.copy_from, set()).add(route.copy_from_model or route.key)
    return {registry: ReadSet(frozenset(models), frozenset(owned.get(registry, ())))
            for registry, models in names.items()}
