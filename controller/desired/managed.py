"""What a pass reads from each registry: the models the environments list,
under their registered names, plus the models whose versions carry the ownership tag of an
environment that prunes or does not self-heal (a model removed from a file is found by that
tag, not by reading the whole registry). Pure: desired state in, read sets out."""

from __future__ import annotations

from dataclasses import dataclass, replace

from mlflow_gitops.core.model import DesiredState, Environment, ModelEntry, frozen_map
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


# -- a new commit first: the entries it changed, before the full drift check ---------------

def changed_models(previous: DesiredState, desired: DesiredState) -> frozenset[str] | None:
    """The model keys whose entries changed between the last applied state and a new commit
    (so a pass can apply them first, reading only those models); None when the commit
    changed more than entries (an environment added, removed or reconfigured, or a model
    removed from a pruning environment) or an environment does not self-heal: only a full
    pass is right then."""
    before = previous.by_name()
    if set(before) != {env.name for env in desired.environments}:
        return None
    if any(not env.sync.self_heal for env in desired.environments):
        # Its records (planning.converged) are kept for the whole environment by the full
        # pass: a pass over some of its models would take the others for models that left.
        return None
    keys: set[str] = set()
    for env in desired.environments:
        old = before[env.name]
        if _settings(old) != _settings(env):
            return None
        gone = set(old.models) - set(env.models)
        if gone and env.sync.prune:
            return None
        keys |= gone
        keys.update(key for key, entry in env.models.items()
                    if _entry(old.models.get(key)) != _entry(entry))
    return frozenset(keys)


def focus(desired: DesiredState, keys: frozenset[str]) -> DesiredState:
    """`desired` with only the entries of `keys` in every environment (so `from` and
    cross-registry copies still see their source entries) and prune off: the models left
    out are not removed, only not looked at in this pass."""
    return replace(desired, environments=tuple(
        replace(env, models=frozen_map({k: e for k, e in env.models.items() if k in keys}),
                sync=replace(env.sync, prune=False, allow_empty=True))
        for env in desired.environments))


def _settings(env: Environment) -> Environment:
    return replace(env, models=frozen_map(), line=0)


def _entry(entry: ModelEntry | None) -> tuple[int, str | None] | None:
    return None if entry is None else (entry.version, entry.registered_name)
