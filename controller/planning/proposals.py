"""Which new version an environment would promote by itself: the newest version, newer
than the one assigned now, that carries the `when:`
tags, meets the `when:` metric bounds and passes the environment's whole policy now (from,
soak, gates, windows, not rejected, not held).

Pure: the policy is asked through the planner itself (the candidate is planned as if the
file assigned it), so a proposal can never disagree with what `plan` and the controller
would do with the pull request once merged."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from mlflow_gitops.core.model import (
    DesiredState,
    EntryKind,
    Environment,
    LiveVersion,
    ModelEntry,
    Snapshot,
    frozen_map,
)
from mlflow_gitops.core.ports import GateCheck
from mlflow_gitops.planning.planner import plan

READY = "READY"

#: Builds the policy's check for a desired state (the from-environment is read from it).
CheckFor = Callable[[DesiredState], "GateCheck | None"]
#: The source-run metrics of a version, or None when they cannot be read.
MetricsOf = Callable[[LiveVersion], "Mapping[str, float] | None"]


@dataclass(frozen=True)
class Skipped:
    """A newer version that is not proposed, and why (one line)."""

    version: int
    reason: str


@dataclass(frozen=True)
class Decision:
    """What `propose` does for one (environment, model)."""

    environment: str
    model: str
    current: int | None  # the version the file assigns now
    candidate: int | None  # the version to propose; None: nothing to propose
    skipped: tuple[Skipped, ...] = ()


def decide(desired: DesiredState, environment: str, model: str, snapshot: Snapshot,
           check_for: CheckFor, metrics_of: MetricsOf,
           already_refused: frozenset[int] = frozenset()) -> Decision:
    """The newest qualifying version of `model` for `environment`, newest first; every newer
    version looked at and not taken is in `skipped` with its reason. `already_refused` are
    versions whose proposal a person closed without merging: never proposed again."""
    env = desired.by_name()[environment]
    entry = env.models.get(model)
    current = entry.version if entry is not None else None
    live = snapshot.model(entry.registered_name or model if entry else model)
    if env.propose is None or live is None:
        return Decision(environment, model, current, None)
    skipped: list[Skipped] = []
    for version in sorted((v for v in live.versions if current is None or v > current),
                          reverse=True):
        reason = _why_not(env, desired, model, live.versions[version], snapshot, check_for,
                          metrics_of, already_refused, live.kind)
        if reason is None:
            return Decision(environment, model, current, version, tuple(skipped))
        skipped.append(Skipped(version, reason))
    return Decision(environment, model, current, None, tuple(skipped))


def _why_not(env: Environment, desired: DesiredState, model: str, version: LiveVersion,
             snapshot: Snapshot, check_for: CheckFor, metrics_of: MetricsOf,
             already_refused: frozenset[int], kind: EntryKind = "model") -> str | None:
    assert env.propose is not None
    if version.version in already_refused:
        return "its proposal was closed without merging"
    if version.status != READY:
        return f"status {version.status}, not {READY}"
    for key, wanted in sorted(env.propose.tags.items()):
        if version.tags.get(key) != wanted:
            found = version.tags.get(key)
            return f"tag {key} is {found!r}, propose.when needs {wanted!r}" if found is not None \
                else f"tag {key} is missing, propose.when needs {wanted!r}"
    if env.propose.metrics:
        metrics = metrics_of(version)
        for gate in env.propose.metrics:
            value = metrics.get(gate.metric or "") if metrics is not None else None
            if value is None:
                return f"metric {gate.metric} of its source run is unknown"
            if gate.min is not None and value < gate.min:
                return f"metric {gate.metric} {value:g} < {gate.min:g} (propose.when)"
            if gate.max is not None and value > gate.max:
                return f"metric {gate.metric} {value:g} > {gate.max:g} (propose.when)"
    proposed = _assign(desired, env, model, version.version, kind)
    the_plan = plan(proposed, {env.registry: snapshot}, previous=desired,
                    check=check_for(proposed))
    errors = [e for e in the_plan.errors if e.environment == env.name and e.model in (
        model, _registered(env, model))]
    if errors:
        return errors[0].message
    return None


def _assign(desired: DesiredState, env: Environment, model: str, version: int,
            kind: EntryKind = "model") -> DesiredState:
    """`desired` as if `env`'s file assigned `version` to `model` (line and section kept; a
    name not listed yet goes where the registry's `kind` says: a prompt under `prompts:`)."""
    old = env.models.get(model)
    entry = replace(old, version=version) if old is not None else ModelEntry(
        version, env.line, kind=kind)
    changed = replace(env, models=frozen_map({**env.models, model: entry}))
    return replace(desired, environments=tuple(
        changed if e.name == env.name else e for e in desired.environments))


def _registered(env: Environment, model: str) -> str:
    entry = env.models.get(model)
    return entry.registered_name or model if entry is not None else model
