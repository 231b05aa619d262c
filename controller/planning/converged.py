"""The durable record behind `self_heal: false`: for each
(environment, model), the git entry this controller last *fully* applied.

With self-heal off only entries that git changed are applied, so the controller must know,
across restarts and failovers, what it already applied. The record is a registered-model tag
`gitops.converged.<environment>` = `{"version": N, "target": "stage:Production", "commit":
SHA}` on the model (in the environment's registry, under its registered name), read with the
live state of every pass. It is written only after every change of that entry succeeded and
the pass found nothing else wrong with it, and deleted once the entry left the file and its
prune (if any) converged. A crash before the record is written leaves the old record, so
the entry still counts as changed and the next pass finishes it; a lineage tag written
before a change (`gitops.env.<environment>`) never counts. No record at all (a first run) is
a first sync: the entry counts as changed. A model that left the file is read (and its record
dropped) when one of its versions carries that lineage tag (desired.managed). Pure: values
in, values out."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from mlflow_gitops.core.model import DesiredState, Environment, ModelEntry, Snapshot, frozen_map
from mlflow_gitops.core.plan import Change, ModelError, Plan
from mlflow_gitops.core.tags import converged_tag
from mlflow_gitops.policy import controls


@dataclass(frozen=True)
class Record:
    version: int
    target: str  # "stage:Production" or "alias:champion"

    def to_tag(self, commit: str) -> str:
        return json.dumps({"version": self.version, "target": self.target, "commit": commit},
                          separators=(",", ":"))


@dataclass(frozen=True)
class RecordWrite:
    """Set (`value`) or delete (None) one record after its entry converged."""

    registry: str
    environment: str
    model: str
    key: str
    value: str | None
    file: str
    line: int


def parse(value: str | None) -> Record | None:
    """A record tag's value; None for no record or one that is not ours (hand-edited)."""
    if not value:
        return None
    try:
        data = json.loads(value)
        version, target = data["version"], data["target"]
    except (ValueError, TypeError, KeyError):
        return None
    if isinstance(version, bool) or not isinstance(version, int) or not isinstance(target, str):
        return None
    return Record(version, target)


def _target(env: Environment) -> str:
    return f"{env.target.kind}:{env.target.value}"


def _record(env: Environment, model: str, snapshots: Mapping[str, Snapshot]) -> Record | None:
    snapshot = snapshots.get(env.registry)
    live = snapshot.model(model) if snapshot is not None else None
    return parse(live.tags.get(converged_tag(env.name))) if live is not None else None


def applied_state(desired: DesiredState, snapshots: Mapping[str, Snapshot]) -> DesiredState:
    """The planner's `previous` (the last applied state) read from the records: for each
    self-heal-off environment, the models whose record matches its current target. Models
    without a record are absent, so a listed one counts as changed. `desired` is in registry
    terms (registered names and the registry's version numbers)."""
    envs = []
    for env in desired.environments:
        if env.sync.self_heal:
            envs.append(env)  # the planner never asks: every entry is acted on
            continue
        snapshot = snapshots.get(env.registry)
        models: dict[str, ModelEntry] = {}
        for name, live in (snapshot.models.items() if snapshot is not None else ()):
            record = parse(live.tags.get(converged_tag(env.name)))
            if record is not None and record.target == _target(env):
                models[name] = ModelEntry(record.version, env.model_line(name),
                                          kind=live.kind)
        envs.append(replace(env, models=frozen_map(models)))
    return DesiredState(tuple(envs), "converged-records")


def record_writes(desired: DesiredState, snapshots: Mapping[str, Snapshot], plan: Plan,
                  applied: Iterable[Change], errors: Iterable[ModelError]) -> list[RecordWrite]:
    """The records to write after a pass: every self-heal-off entry whose record differs from
    git and that converged in this pass (no error for it, every planned change of it
    applied). `snapshots` are those read at the start of the pass."""
    done = set(applied)
    pending = {(c.environment, c.model) for c in plan.changes if c not in done}
    failed = {(e.environment, e.model) for e in errors}
    out: list[RecordWrite] = []
    for env in desired.environments:
        snapshot = snapshots.get(env.registry)
        if env.sync.self_heal or snapshot is None or (env.name, None) in failed:
            continue
        key = converged_tag(env.name)
        recorded = {name for name, live in snapshot.models.items() if key in live.tags}
        for model in sorted(set(env.models) | recorded):
            live = snapshot.model(model)
            if live is None or (env.name, model) in failed or (env.name, model) in pending:
                continue
            if controls.hold_of(live, env.name) is not None:
                continue  # held: no write of any kind for it until released
            entry = env.models.get(model)
            want = Record(entry.version, _target(env)) if entry is not None else None
            if entry is not None and entry.version not in live.versions:
                continue  # not converged: the version does not exist (reported elsewhere)
            if want == _record(env, model, snapshots) and (want is not None
                                                            or key not in live.tags):
                continue
            value = want.to_tag(desired.commit) if want is not None else None
            out.append(RecordWrite(env.registry, env.name, model, key, value, env.file,
                                   env.model_line(model)))
    return out
