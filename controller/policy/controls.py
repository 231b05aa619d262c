"""Day-two controls a person sets in the registry, without a pull request:
an emergency hold on one model in one environment (registered-model tag
`gitops.hold.<environment>`) and a rejected version (model-version tag `gitops.rejected`).

Both tags hold JSON `{"by": ..., "at": ..., "reason": ...}`. A tag someone wrote by hand
with any other value still counts (the hold is on, the version is rejected): a control that
fails open because its value is malformed would be no control. Pure: no I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from mlflow_gitops.core.model import LiveModel, LiveVersion
from mlflow_gitops.core.tags import REJECTED, hold_tag

MAX_REASON = 1000  # characters kept of a reason; MLflow caps tag values at a few thousand


@dataclass(frozen=True)
class Control:
    """Who set a hold or a rejection, when (UTC ISO 8601) and why."""

    by: str
    at: str
    reason: str

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
    """The rejection of this version (who, when, why), or None when it is not rejected."""
    value = version.tags.get(REJECTED)
    return parse_control(value) if value is not None else None


def held_message(model: str, environment: str, hold: Control) -> str:
    return (f"{model} is held in {environment} {hold.describe()}; nothing is applied or "
            f"reverted until `mlflow-gitops release {model} --env {environment}`")


def rejected_message(model: str, version: int, rejection: Control) -> str:
    return (f"{model} v{version} is rejected {rejection.describe()}; assign another version "
            f"(or `mlflow-gitops reject {model} --version {version} --undo`)")


def _text(value: object) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)
