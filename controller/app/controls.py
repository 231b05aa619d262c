"""Day-two controls as use cases: hold and release one entry in one environment, reject a
version (and undo it). Each is at most one registry tag, written through the executor; each
returns what it found and what it did, and saying so is the caller's job.

Repeating one is harmless, as with `kubectl cordon`: holding what is held, releasing what is
not held, rejecting a rejected version or undoing a rejection that is not there changes
nothing (`changed` is False)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from mlflow_gitops.core import tags
from mlflow_gitops.core.errors import NotFound
from mlflow_gitops.core.model import LiveModel, LiveVersion
from mlflow_gitops.core.plan import TagEdit
from mlflow_gitops.core.ports import RegistryPort
from mlflow_gitops.loop.executor import edit_tag
from mlflow_gitops.policy import controls


@dataclass(frozen=True)
class ControlOutcome:
    """What a control did: `changed` (a tag was written or removed) and the control it is
    about: the one now in force (hold, reject), the one lifted (release, undo), or the one
    already there when nothing changed (None: there was none)."""

    changed: bool
    control: controls.Control | None


def live_model(registry: RegistryPort, name: str) -> LiveModel:
    """The model's live state; NotFound names the registry when it does not have it."""
    live = registry.snapshot((name,)).model(name)
    if live is None:
        raise NotFound(f"registered model '{name}' does not exist in registry "
                       f"'{registry.name}'")
    return live


def hold(registry: RegistryPort, name: str, environment: str, by: str, reason: str,
         now: float) -> ControlOutcome:
    """Hold `name` in `environment`: the controller writes nothing for it there until
    released. An existing hold is kept as it is (its author and reason stand)."""
    existing = controls.hold_of(live_model(registry, name), environment)
    if existing is not None:
        return ControlOutcome(False, existing)
    control = controls.make_control(by, reason, now)
    edit_tag(registry, TagEdit(name, tags.hold_tag(environment), control.to_json()))
    return ControlOutcome(True, control)


def held(registry: RegistryPort, name: str, environment: str) -> controls.Control | None:
    """The hold of `name` in `environment`, if any (None also when the model is gone)."""
    try:
        return controls.hold_of(live_model(registry, name), environment)
    except NotFound:
        return None


def release(registry: RegistryPort, name: str, environment: str) -> ControlOutcome:
    """Lift the hold of `name` in `environment`; the next pass converges it to git."""
    existing = controls.hold_of(live_model(registry, name), environment)
    if existing is None:
        return ControlOutcome(False, None)
    edit_tag(registry, TagEdit(name, tags.hold_tag(environment), None))
    return ControlOutcome(True, existing)


def version_of(registry: RegistryPort, name: str, version: int) -> LiveVersion:
    """The version's live state; NotFound names the registry when it does not have it."""
    found = live_model(registry, name).versions.get(version)
    if found is None:
        raise NotFound(f"{name} v{version} does not exist in registry '{registry.name}'")
    return found


def reject(registry: RegistryPort, name: str, version: int, by: str, reason: str,
           now: float) -> ControlOutcome:
    """Reject `name` `version`: no environment promotes it, not even as a rollback. An
    existing rejection is kept as it is."""
    existing = controls.is_rejected(version_of(registry, name, version))
    if existing is not None:
        return ControlOutcome(False, existing)
    control = controls.make_control(by, reason, now)
    edit_tag(registry, TagEdit(name, tags.REJECTED, control.to_json(), version))
    return ControlOutcome(True, control)


def undo_reject(registry: RegistryPort, name: str, version: int) -> ControlOutcome:
    """Lift the rejection of `name` `version`."""
    existing = controls.is_rejected(version_of(registry, name, version))
    if existing is None:
        return ControlOutcome(False, None)
    with contextlib.suppress(NotFound):  # undone by someone else meanwhile: same outcome
        edit_tag(registry, TagEdit(name, tags.REJECTED, None, version))
    return ControlOutcome(True, existing)
