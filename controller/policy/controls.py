"""Day-two controls a person sets in the registry, without a pull request:
an emergency hold on one model in one environment (registered-model tag
`gitops.hold.<environment>`) and a rejected version (model-version tag `gitops.rejected`).

Both tags hold JSON `{"by": ..., "at": ..., "reason": ...}`. A tag someone wrote by hand
with any other value still counts (the hold is on, the version is rejected): a control that
fails open because its value is malformed would be no control.

A rejection belongs to the version, not to one registry's record of it: a copy made across
registries (lineage tags `gitops.source.*`) is the same version, so a rejection placed on the
source, or on any other copy, before or after the copy was made, refuses it everywhere
(`follow_rejections`, over the snapshots a pass has already read: no extra call). Pure: no
I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from mlflow_gitops.core.model import DesiredState, LiveModel, LiveVersion, Snapshot, frozen_map
from mlflow_gitops.core.tags import COPY_REJECTED, HOLD_PREFIX, REJECTED, hold_tag
from mlflow_gitops.desired import crossregistry

#: (registry, registered model, version): where a rejection tag actually is.
VersionRef = tuple[str, str, int]

MAX_REASON = 1000  # characters kept of a reason; MLflow caps tag values at a few thousand


@dataclass(frozen=True)
class Control:
    """Who set a hold or a rejection, when (UTC ISO 8601) and why."""

    by: str
    at: str
    reason: str
    #: For a rejection that follows a copy: the version that carries the tag (another
    #: registry's record of the same version); None when the tag is on this version itself.
    placed: VersionRef | None = None

    def to_json(self) -> str:
        return json.dumps({"by": self.by, "at": self.at, "reason": self.reason},
                          sort_keys=True)

    def describe(self) -> str:
        """'by ann at 2026-12-02T03:04:05Z: bad predictions'"""
        who = f"by {self.by}" if self.by else "by someone"
        when = f" at {self.at}" if self.at else ""
        return f"{who}{when}: {self.reason or 'no reason given'}"


def make_control(by: str, reason: str, now: float) -> Control:
    """A control set now, with the reason cut to what a registry tag can carry."""
    at = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Control(by=by.strip()[:200], at=at, reason=" ".join(reason.split())[:MAX_REASON])


def parse_control(value: str) -> Control:
    """The tag's value; a value that is not our JSON is kept whole as the reason."""
    try:
        data = json.loads(value)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return Control(by="", at="", reason=value.strip()[:MAX_REASON])
    return Control(by=_text(data.get("by")), at=_text(data.get("at")),
                   reason=_text(data.get("reason"))[:MAX_REASON])


def hold_of(model: LiveModel, environment: str) -> Control | None:
    """The hold on `model` in `environment`, if a person put one there."""
    value = model.tags.get(hold_tag(environment))
    return parse_control(value) if value is not None else None


def is_rejected(version: LiveVersion) -> Control | None:
    """The rejection of this version (who, when, why), or None when it is not rejected:
    its own tag, else one that follows it from another copy (`follow_rejections`)."""
    value = version.tags.get(REJECTED)
    if value is not None:
        return parse_control(value)
    followed = version.tags.get(COPY_REJECTED)
    return _followed(followed) if followed is not None else None


def follow_rejections(snapshots: Mapping[str, Snapshot]) -> Mapping[str, Snapshot]:
    """`snapshots` with every copy of a rejected version marked rejected too (in memory,
    tag `gitops.copy.rejected`, never written). A version and its copies in other registries
    are one version: the origin named by the copies' lineage tags. So a version rejected in
    the source registry is refused on the target as a promotion or a revert, a rejection
    placed after the copy was made is seen on the next read, and rejecting a copy rejects
    the source too. One scan of versions the pass already read; unchanged (the same object)
    when nothing is rejected."""
    placed: dict[VersionRef, tuple[VersionRef, str]] = {}
    for registry, snapshot in snapshots.items():
        for name, live in snapshot.models.items():
            for number, lv in live.versions.items():
                value = lv.tags.get(REJECTED)
                if value is None:
                    continue
                where = (registry, name, number)
                same = _same_version(where, lv)
                if same not in placed or where == same:  # the source's own tag wins
                    placed[same] = (where, value)
    if not placed:
        return snapshots
    out = dict(snapshots)
    for registry, snapshot in snapshots.items():
        models: dict[str, LiveModel] = {}
        for name, live in snapshot.models.items():
            marked = {number: _marked(lv, *found) for number, lv in live.versions.items()
                      if REJECTED not in lv.tags and (found := placed.get(
                          _same_version((registry, name, number), lv))) is not None}
            if marked:
                models[name] = replace(live, versions=frozen_map({**live.versions, **marked}))
        if models:
            out[registry] = replace(snapshot, models=frozen_map({**snapshot.models, **models}))
    return out


def _same_version(where: VersionRef, version: LiveVersion) -> VersionRef:
    """The version every copy shares: the origin its lineage tags name, else itself."""
    return crossregistry.origin_of(version) or where


def _marked(version: LiveVersion, where: VersionRef, value: str) -> LiveVersion:
    control = parse_control(value)
    note = json.dumps({"by": control.by, "at": control.at, "reason": control.reason,
                       "registry": where[0], "model": where[1], "version": where[2]},
                      sort_keys=True)
    return replace(version, tags=frozen_map({**version.tags, COPY_REJECTED: note}))


def _followed(value: str) -> Control:
    """A `gitops.copy.rejected` note; one that cannot be read still rejects."""
    try:
        data = json.loads(value)
        placed = (str(data["registry"]), str(data["model"]), int(data["version"]))
    except (ValueError, TypeError, KeyError):
        return parse_control(value)
    return Control(by=_text(data.get("by")), at=_text(data.get("at")),
                   reason=_text(data.get("reason"))[:MAX_REASON], placed=placed)


def stale_holds(desired: DesiredState, snapshots: Mapping[str, Snapshot]) -> tuple[str, ...]:
    """Warnings for holds that no environment honours any more: a hold is keyed by the
    environment's name (its file's stem), so renaming `prod.yaml` to `production.yaml`
    silently drops it. Said in `plan` and the pull-request comment, so the rename is seen."""
    names = {env.name for env in desired.environments}
    out = []
    for registry, snapshot in sorted(snapshots.items()):
        for model, live in sorted(snapshot.models.items()):
            for key, value in sorted(live.tags.items()):
                environment = key[len(HOLD_PREFIX):]
                if not key.startswith(HOLD_PREFIX) or environment in names:
                    continue
                out.append(
                    f"hold on {model} for '{environment}' no longer applies: no environment "
                    f"file named {environment}.yaml — release it (`mlflow-gitops release "
                    f"{model} --env {environment} --registry {registry}`) or rename the file "
                    f"back (held {parse_control(value).describe()})")
    return tuple(out)


def held_message(model: str, environment: str, hold: Control) -> str:
    return (f"{model} is held in {environment} {hold.describe()}; nothing is applied or "
            f"reverted until `mlflow-gitops release {model} --env {environment}`")


def rejected_message(model: str, version: int, rejection: Control) -> str:
    if rejection.placed is not None:
        registry, name, number = rejection.placed
        return (f"{model} v{version} is the same version as {name} v{number} of registry "
                f"'{registry}' (a copy across registries), rejected there "
                f"{rejection.describe()}; assign another version (or `mlflow-gitops reject "
                f"{name} {number} --registry {registry} --undo`)")
    return (f"{model} v{version} is rejected {rejection.describe()}; assign another version "
            f"(or `mlflow-gitops reject {model} --version {version} --undo`)")


def _text(value: object) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)
