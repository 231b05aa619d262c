"""Evidence for the promotion policy: what the controller itself applied, recorded
in the registry at apply time with the controller's clock, never anything a commit says.

Two model-version tags per environment, written by the executor right after the change they
describe has succeeded (so a record never claims an apply that did not happen; a crash in
between loses evidence, it never creates any):

- `gitops.applied.<env>` = `{"commit": "<sha>", "at": <epoch s>}` on a version the controller
  promoted into the environment (stage transition or alias move): it entered `<env>` at `at`
  through an applied change the policy accepted. Only promotions write it; archiving drift,
  prune, `replaced` and moving a version out never do.
- `gitops.left.<env>` = `<epoch s>` on a version the controller moved out of the environment
  (archived, unstaged, alias moved away or deleted). It ends the stretch that began at the
  applied record; a later promotion writes a newer applied record, which starts a new one.

The lineage tag `gitops.env.<env>` = commit stays what it was (ownership, for prune and
`status`), but is no evidence: it is also written when the controller archives a version
someone put into the stage by hand. This module only reads and formats; the executor writes
what `writes_for` returns, and mlflow_gitops.policy.rules judges the `Stint` values."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from mlflow_gitops.core.model import LiveVersion
from mlflow_gitops.core.plan import Change
from mlflow_gitops.core.tags import applied_tag, left_tag
from mlflow_gitops.policy.units import duration

#: A record older than the version itself (minus this much clock skew) cannot be genuine.
SKEW_SECONDS = 300.0


@dataclass(frozen=True)
class Stint:
    """The controller's record of a version's latest stretch in one environment."""

    environment: str
    commit: str  # the commit whose change put it there
    entered: float  # epoch s, the controller's clock right after the change was applied
    left: float | None = None  # epoch s it was moved out again; None: not (recorded as) left

    @property
    def ended(self) -> float | None:
        """When this stretch ended, if the controller recorded it (a move-out older than the
        entry belongs to an earlier stretch)."""
        return self.left if self.left is not None and self.left >= self.entered else None


def read(version: LiveVersion | None, environment: str) -> Stint | None:
    """The version's record for `environment`, or None: no record, or one that cannot be
    genuine (unparseable, or dated before the version was created)."""
    if version is None:
        return None
    return parse(version.tags, environment, version.created_ms)


def parse(tags: Mapping[str, str], environment: str, created_ms: int | None = None
          ) -> Stint | None:
    raw = tags.get(applied_tag(environment))
    if raw is None:
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    commit, at = body.get("commit"), body.get("at")
    if not isinstance(commit, str) or isinstance(at, bool) or not isinstance(at, (int, float)):
        return None
    if not math.isfinite(at) or at <= 0:
        return None
    if created_ms is not None and at < created_ms / 1000 - SKEW_SECONDS:
        return None
    return Stint(environment, commit, float(at), _seconds(tags.get(left_tag(environment))))


@dataclass(frozen=True)
class TagWrite:
    """One evidence tag the executor sets after a change succeeded."""

    model: str
    version: int
    key: str
    value: str


def writes_for(change: Change, commit: str, at: float) -> tuple[TagWrite, ...]:
    """The evidence to record once `change` has been applied at `at` (the controller's clock):
    a promotion records the entry, every move out of the environment records the exit."""
    env = change.environment
    if change.action in ("promote", "set_alias"):
        entry = TagWrite(change.model, change.version, applied_tag(env),
                         json.dumps({"commit": commit, "at": round(at, 3)}, sort_keys=True))
        before = change.previous_version
        if change.action == "set_alias" and before is not None and before != change.version:
            return entry, TagWrite(change.model, before, left_tag(env), f"{at:.3f}")
        return (entry,)
    return (TagWrite(change.model, change.version, left_tag(env), f"{at:.3f}"),)


def describe(stint: Stint, now: float) -> str:
    """'entered staging 2026-12-01 14:02 UTC, applied by commit 1a2b3c4, 26h ago'."""
    text = f"entered {stint.environment} {when(stint.entered)}, applied by commit " \
           f"{stint.commit[:7]}, {ago(now - stint.entered)}"
    if stint.ended is not None:
        text += f"; left {when(stint.ended)}"
    return text


def when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def ago(seconds: float) -> str:
    return f"{duration(max(seconds, 0.0))} ago"


def _seconds(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None
