"""plan(desired, live) → Plan: the smallest ordered list of registry writes that makes live
equal desired. A pure function: no I/O, deterministic order, errors as values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from mlflow_gitops.core.model import (
    STAGE_ARCHIVED,
    STAGE_NONE,
    DesiredState,
    Environment,
    LiveModel,
    Snapshot,
)
from mlflow_gitops.core.plan import Action, Change, Drift, ModelError, Plan, Reason
from mlflow_gitops.core.ports import GateCheck
from mlflow_gitops.core.tags import ownership_tag
from mlflow_gitops.policy import controls


def plan(
    desired: DesiredState,
    snapshots: Mapping[str, Snapshot],
    previous: DesiredState | None = None,
    check: GateCheck | None = None,
) -> Plan:
    """`previous` is the last applied desired state; with `self_heal: false` only entries that
    differ from it are applied (None: every entry counts as changed, as in a first sync).
    A rejection follows a version across registry copies (controls.follow_rejections)."""
    snapshots = controls.follow_rejections(snapshots)
    changes: list[Change] = []
    errors: list[ModelError] = []
    drift: list[Drift] = []
    prev_envs = previous.by_name() if previous is not None else None
    for registry in desired.registries():
        envs = [e for e in desired.environments if e.registry == registry]
        snapshot = snapshots.get(registry)
        if snapshot is None:
            errors.extend(_unreachable(registry, envs))
            continue
        ctx = _Context(registry, envs, snapshot, prev_envs, check)
        for model in ctx.models():
            ctx.plan_model(model)
        ctx.guard_empty_prunes()
        changes.extend(ctx.changes)
        errors.extend(ctx.errors)
        drift.extend(ctx.drift)
    changes.sort(key=lambda c: (c.registry, c.model, c.phase, c.environment, c.version))
    errors.sort(key=lambda e: (e.registry, e.model or "", e.environment, e.kind))
    drift.sort(key=lambda d: (d.registry, d.model, d.environment))
    return Plan(commit=desired.commit, changes=tuple(changes), errors=tuple(errors),
                drift=tuple(drift), warnings=controls.stale_holds(desired, snapshots))


def _unreachable(registry: str, envs: list[Environment]) -> list[ModelError]:
    return [
        ModelError(registry, env.name, model, "registry",
                   f"registry '{registry}' could not be read",
                   env.file, entry.line)
        for env in envs for model, entry in env.models.items()
    ]


@dataclass
class _Context:
    registry: str
    envs: list[Environment]
    snapshot: Snapshot
    prev_envs: dict[str, Environment] | None
    check: GateCheck | None

    def __post_init__(self) -> None:
        self.changes: list[Change] = []
        self.errors: list[ModelError] = []
        self.drift: list[Drift] = []
        self.pruned: dict[str, list[Change]] = {}

    def models(self) -> list[str]:
        listed = {m for env in self.envs for m in env.models}
        if any(env.sync.prune for env in self.envs):
            listed |= set(self.snapshot.models)
        return sorted(listed)

    # -- one model across every environment of this registry --------------------------

    def plan_model(self, model: str) -> None:
        live = self.snapshot.model(model) or LiveModel(model)
        blocked = {env.name for env in self.envs
                   if self._controlled(env, model, live) or not self._exists(env, model, live)}
        # Which stage each version is headed for, from environments that will act on it.
        moving = {
            env.models[model].version: env.name
            for env in self.envs
            if env.target.kind == "stage" and model in env.models and env.name not in blocked
        }
        by_env: dict[str, list[Change]] = {}
        for env in self.envs:
            if env.name in blocked:
                continue
            if model in env.models:
                by_env[env.name] = self._listed(env, model, live, moving)
            elif env.sync.prune:
                by_env[env.name] = self._prune(env, model, live, moving)
                self.pruned.setdefault(env.name, []).extend(by_env[env.name])
        self._keep_serving(model, live, by_env)
        for planned in by_env.values():
            self.changes.extend(planned)

    def _keep_serving(self, model: str, live: LiveModel, by_env: dict[str, list[Change]]) -> None:
        """Never empty a stage whose own environment is not replacing its version: a version
        may leave Production for Staging only when production's entry converges too. The
        environment that would take it is refused instead, with the reason."""
        while True:
            planned = [c for changes in by_env.values() for c in changes]
            for env in self.envs:
                if env.target.kind != "stage" or model not in env.models:
                    continue
                stage = env.target.value
                now = set(live.in_stage(stage))
                left = now - {c.version for c in planned if c.from_stage == stage}
                arrive = {c.version for c in planned if c.to_stage == stage}
                if not now or left or arrive:
                    continue
                takers = {c.environment for c in planned
                          if c.from_stage == stage and c.action == "promote"}
                if takers:
                    break
            else:
                return
            for name in sorted(takers):
                taker = next(e for e in self.envs if e.name == name)
                moved = [c for c in by_env.pop(name) if c.from_stage == stage]
                self.errors.append(ModelError(
                    self.registry, name, model, "guard",
                    f"{model} v{moved[0].version} not moved to {taker.target.value}: it serves "
                    f"in {env.name}, which is not converging this pass, and would be left "
                    f"without a version; fix {env.name} first", taker.file,
                    taker.model_line(model)))

    def _exists(self, env: Environment, model: str, live: LiveModel) -> bool:
        entry = env.models.get(model)
        if entry is None:
            return True
        if live.versions and live.kind != entry.kind:
            listed, real = ("prompts", "model") if entry.kind == "prompt" else ("models", "prompt")
            self.errors.append(ModelError(
                self.registry, env.name, model, "missing_version",
                f"'{model}' is listed under {listed}: but is a registered {real} in registry "
                f"'{self.registry}', not a {entry.kind}: move it under {real}s:",
                env.file, entry.line))
            return False
        if entry.version in live.versions:
            return True
        noun = "prompt" if entry.kind == "prompt" else "registered model"
        if not live.versions:
            why = f"{noun} '{model}' does not exist in registry '{self.registry}'"
            fix = "register it first or fix the name"
        else:
            known = sorted(live.versions)
            why = f"{model} v{entry.version} does not exist in registry '{self.registry}'"
            fix = f"known versions: {version_ranges(known)}"
        self.errors.append(ModelError(self.registry, env.name, model, "missing_version",
                                      f"{why} ({fix})", env.file, entry.line))
        return False

    def _controlled(self, env: Environment, model: str, live: LiveModel) -> bool:
        """A person's control keeps this environment's hands off the model: an emergency
        hold (nothing applied or reverted), or a desired version that is rejected."""
        hold = controls.hold_of(live, env.name)
        entry = env.models.get(model)
        if hold is not None:
            if entry is not None:
                self.errors.append(ModelError(
                    self.registry, env.name, model, "held",
                    controls.held_message(model, env.name, hold), env.file, entry.line))
            return True
        version = live.versions.get(entry.version) if entry is not None else None
        rejection = controls.is_rejected(version) if version is not None else None
        if entry is None or rejection is None:
            return False
        self.errors.append(ModelError(
            self.registry, env.name, model, "gate",
            controls.rejected_message(model, entry.version, rejection), env.file, entry.line))
        return True

    def _changed(self, env: Environment, model: str) -> bool:
        """Did git change this entry since the last applied state?"""
        if self.prev_envs is None:
            return True
        before = self.prev_envs.get(env.name)
        if before is None or before.target != env.target:
            return True
        old, new = before.models.get(model), env.models.get(model)
        return (old.version if old else None) != (new.version if new else None)

    def _listed(self, env: Environment, model: str, live: LiveModel,
                moving: dict[int, str]) -> list[Change]:
        entry = env.models[model]
        changed = self._changed(env, model)
        act = env.sync.self_heal or changed
        reason: Reason = "git" if changed else "drift"
        out: list[Change] = []

        def change(action: Action, **kw: Any) -> Change:
            return Change(self.registry, env.name, model, entry.version, action, reason,
                          env.file, entry.line, kind=entry.kind, **kw)
        if env.target.kind == "alias":
            alias = env.target.value
            current = live.aliases.get(alias)
            if current == entry.version:
                return []
            if not act:
                self._drift(env, model, f"v{entry.version}",
                            f"v{current}" if current else "unset")
                return []
            texts = {}
            if entry.kind == "prompt":
                old = live.versions.get(current) if current is not None else None
                texts = {"template": live.versions[entry.version].template,
                         "previous_template": old.template if old is not None else None}
            return self._gated(env, model, live, change("set_alias", alias=alias,
                                                        previous_version=current, **texts))
        stage = env.target.value
        version = live.versions[entry.version]
        leaving = [v for v in live.in_stage(stage) if v != entry.version and moving.get(v) is None]
        if version.stage == stage and not leaving:
            return []
        if not act:
            self._drift(env, model, f"v{entry.version}",
                        ", ".join(f"v{v}" for v in live.in_stage(stage)) or "none")
            return []
        if version.stage != stage:
            gated = self._gated(env, model, live, change("promote", from_stage=version.stage,
                                                         to_stage=stage))
            if not gated:
                return []  # refused: the serving version stays where it is
            out.extend(gated)
        out.extend(self._leave(env, model, v, stage, "replaced", entry.line) for v in leaving)
        return out

    def _gated(self, env: Environment, model: str, live: LiveModel,
               change: Change) -> list[Change]:
        if self.check is None:  # the check decides which environments it guards
            return [change]
        verdict = self.check(env, model, change.version, live)
        if not verdict.allowed:
            waiting = verdict.waiting_until is not None  # only time stands in the way
            self.errors.append(ModelError(self.registry, env.name, model,
                                          "waiting" if waiting else "gate",
                                          verdict.message, env.file, change.line,
                                          gates=verdict.gates, until=verdict.waiting_until))
            return []
        return [replace(change, gates=verdict.gates, note=verdict.note)]

    def _leave(self, env: Environment, model: str, version: int, stage: str,
               reason: Reason, line: int) -> Change:
        to = STAGE_ARCHIVED if env.sync.archive_previous else STAGE_NONE
        return Change(self.registry, env.name, model, version,
                      "archive" if to == STAGE_ARCHIVED else "unstage", reason,
                      env.file, line, from_stage=stage, to_stage=to)

    def _prune(self, env: Environment, model: str, live: LiveModel,
               moving: dict[int, str]) -> list[Change]:
        tag = ownership_tag(env.name)
        owned = {v for v, lv in live.versions.items() if tag in lv.tags}
        if not owned:
            return []
        before = self.prev_envs.get(env.name) if self.prev_envs is not None else None
        was_listed = self.prev_envs is None or (before is not None and model in before.models)
        act = env.sync.self_heal or was_listed
        if env.target.kind == "alias":
            current = live.aliases.get(env.target.value)
            if current is None or current not in owned:
                return []
            if not act:
                self._drift(env, model, "unset", f"v{current}")
                return []
            return [Change(self.registry, env.name, model, current, "delete_alias", "prune",
                           env.file, env.line, alias=env.target.value, kind=live.kind)]
        stage = env.target.value
        leavers = [v for v in live.in_stage(stage) if v in owned and v not in moving]
        if leavers and not act:
            self._drift(env, model, "none", ", ".join(f"v{v}" for v in leavers))
            return []
        return [self._leave(env, model, v, stage, "prune", env.line) for v in leavers]

    def guard_empty_prunes(self) -> None:
        """A file that would prune every model of its environment is refused (allow_empty)."""
        for env in self.envs:
            pruned = self.pruned.get(env.name)
            if not pruned or env.sync.allow_empty:
                continue
            if any(self.snapshot.model(m) is not None for m in env.models):
                continue  # something listed still resolves: this is not an emptied file
            for change in pruned:
                self.changes.remove(change)
            self.errors.append(ModelError(
                self.registry, env.name, None, "guard",
                f"refusing to prune every model of environment '{env.name}' "
                f"({len(pruned)} change(s)); set sync.allow_empty: true if that is intended",
                env.file, env.line))

    def _drift(self, env: Environment, model: str, desired: str, live: str) -> None:
        self.drift.append(Drift(self.registry, env.name, model, desired, live, env.file,
                                env.model_line(model)))


def version_ranges(versions: list[int]) -> str:
    if not versions:
        return "none"
    parts, start, prev = [], versions[0], versions[0]
    tail: list[int | None] = [*versions[1:], None]
    for v in tail:
        if v is not None and v == prev + 1:
            prev = v
            continue
        parts.append(f"v{start}" if start == prev else f"v{start}-v{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(parts)
