"""Verification after apply (the closed loop) as pure values: the progress of one window,
how a round of measurements moves it on, and the verdict at its end.

Progress lives in the registry, not in memory: the model-version tag `gitops.verify.<env>`
on the version being verified holds the window as JSON (when it started and ends, the
version it replaced, the counts so far, when the next measurement is due, the outcome).
The window starts when the controller applied the version (the `gitops.applied.<env>`
record, its own clock), so a restart, a kill -9 or a failover resumes the same window: it is
neither restarted nor skipped. Measurements are due on a fixed grid (start + k × interval);
a controller that was away measures once when it returns and then follows the grid.

A passed window writes `gitops.verified.<env>` = `{"commit", "at"}` on the version: the
evidence `promotion.require_verified` reads downstream. Pure: `now` is passed in."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from typing import Any, Literal

from mlflow_gitops.core.model import (
    STAGE_ARCHIVED,
    STAGE_NONE,
    Check,
    Environment,
    LiveVersion,
    Verify,
)
from mlflow_gitops.core.plan import Change
from mlflow_gitops.core.tags import verified_tag, verify_tag
from mlflow_gitops.policy.evidence import Stint

#: Who an automatic hold is by: a hold with this author is the controller's own.
HOLD_AUTHOR = "mlflow-gitops verification"
#: How far from the promotion a version's move-out may be recorded and still be the one the
#: promotion replaced (the executor writes both in the same pass, seconds apart).
REPLACED_WINDOW = 120.0

Result = Literal["pass", "fail", "inconclusive"]
Outcome = Literal["running", "verified", "unverified", "failed", "skipped"]


@dataclass(frozen=True)
class Measurement:
    """One check measured once: its value (None: no data or the source is down) and what
    that means against the check's bounds."""

    check: Check
    value: float | None
    result: Result
    detail: str  # 'errors 0.05 > max 0.02', 'no data', 'source down: connection refused'


def judge(check: Check, value: float | None, why_none: str = "no data") -> Measurement:
    """A value against `check`'s bounds: outside fails, inside passes, none is inconclusive."""
    name = check.describe()
    if value is None or not math.isfinite(value):
        return Measurement(check, None, "inconclusive", f"{name}: {why_none}")
    if check.max is not None and value > check.max:
        return Measurement(check, value, "fail", f"{name} = {value:g}, above max {check.max:g}")
    if check.min is not None and value < check.min:
        return Measurement(check, value, "fail", f"{name} = {value:g}, below min {check.min:g}")
    return Measurement(check, value, "pass", f"{name} = {value:g}, {check.bounds()}")


def round_result(measurements: Sequence[Measurement]) -> Measurement | None:
    """A round's result is its worst measurement: a fail, else an inconclusive one, else the
    first pass (None for an empty round)."""
    for wanted in ("fail", "inconclusive", "pass"):
        for m in measurements:
            if m.result == wanted:
                return m
    return None


@dataclass(frozen=True)
class Progress:
    """One verification window of one version in one environment."""

    commit: str  # the commit whose apply started it
    started: float  # epoch s: when the controller applied the version (the window's start)
    ends: float
    interval: float
    replaced: int | None  # the version the promotion replaced: where a rollback returns
    next_at: float  # when the next measurement is due
    passed: int = 0
    failed: int = 0
    inconclusive: int = 0
    outcome: Outcome = "running"
    last: str = ""  # the last round's worst measurement, in words
    failure: str = ""  # the measurement that failed the window (value and bound)
    finished_at: float | None = None

    @property
    def taken(self) -> int:
        return self.passed + self.failed + self.inconclusive

    def to_json(self) -> str:
        return json.dumps({k: (round(v, 3) if isinstance(v, float) else v)
                           for k, v in asdict(self).items()}, sort_keys=True)

    def summary(self) -> str:
        """'3 passed, 1 failed, 2 inconclusive'"""
        return f"{self.passed} passed, {self.failed} failed, {self.inconclusive} inconclusive"


def start(stint: Stint, verify: Verify, replaced: int | None) -> Progress:
    """The window that the controller's apply record `stint` opened."""
    return Progress(commit=stint.commit, started=stint.entered,
                    ends=stint.entered + verify.duration_seconds,
                    interval=float(verify.interval_seconds), replaced=replaced,
                    next_at=stint.entered + verify.interval_seconds)


def parse(tags: Mapping[str, str], environment: str) -> Progress | None:
    """The window recorded on a version, or None (absent or not ours)."""
    raw = tags.get(verify_tag(environment))
    if raw is None:
        return None
    try:
        body: Any = json.loads(raw)
        fields = {k: body[k] for k in Progress.__dataclass_fields__ if k in body}
        progress = Progress(**fields)
    except (ValueError, TypeError, KeyError):
        return None
    numbers = (progress.started, progress.ends, progress.interval, progress.next_at)
    if not all(isinstance(n, (int, float)) and math.isfinite(n) for n in numbers) \
            or progress.interval <= 0:
        return None
    return progress


def belongs_to(progress: Progress | None, stint: Stint) -> bool:
    """Whether `progress` is the window of this stint (a later apply opens a new one)."""
    return progress is not None and abs(progress.started - stint.entered) < 0.01


def due(progress: Progress, now: float) -> bool:
    """A measurement is due (and the window still runs)."""
    return progress.outcome == "running" and progress.next_at <= now and \
        progress.next_at <= progress.ends + 1e-6


def ended(progress: Progress, now: float) -> bool:
    """The window is over and no measurement is left to take: time for the verdict."""
    return progress.outcome == "running" and now >= progress.ends and \
        progress.next_at > progress.ends + 1e-6


def advance(progress: Progress, measurements: Sequence[Measurement], verify: Verify,
            now: float) -> Progress:
    """`progress` after one round of measurements taken at `now`: counted, and failed at
    once when more than `failure_limit` rounds failed; else the next one is scheduled."""
    worst = round_result(measurements)
    result = worst.result if worst is not None else "inconclusive"
    detail = worst.detail if worst is not None else "no checks"
    counted = replace(progress, last=detail,
                      passed=progress.passed + (result == "pass"),
                      failed=progress.failed + (result == "fail"),
                      inconclusive=progress.inconclusive + (result == "inconclusive"))
    if counted.failed > verify.failure_limit:
        return replace(counted, outcome="failed", failure=detail, finished_at=now)
    steps = math.floor((now - progress.started) / progress.interval + 1e-9) + 1
    return replace(counted, next_at=progress.started + steps * progress.interval)


def finish(progress: Progress, now: float) -> Progress:
    """The verdict of a window that ran out: verified with at least one passed round (and
    failures within the limit, or it would have failed already), else unverified."""
    outcome: Outcome = "verified" if progress.passed > 0 else "unverified"
    return replace(progress, outcome=outcome, finished_at=now)


def verified_record(progress: Progress, at: float) -> str:
    return json.dumps({"commit": progress.commit, "at": round(at, 3)}, sort_keys=True)


def is_verified(tags: Mapping[str, str], environment: str) -> float | None:
    """When the controller verified this version in `environment` (epoch s), or None."""
    raw = tags.get(verified_tag(environment))
    if raw is None:
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    at = body.get("at") if isinstance(body, dict) else None
    if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at):
        return None
    return float(at)


def replaced_version(left: Mapping[int, float], entered: float, version: int) -> int | None:
    """The version the promotion at `entered` replaced: the one whose recorded move-out
    (`gitops.left.<env>`, version → epoch s) is nearest to it, within REPLACED_WINDOW."""
    near = [(abs(at - entered), v) for v, at in left.items()
            if v != version and entered - 1.0 <= at <= entered + REPLACED_WINDOW]
    return min(near)[1] if near else None


def clock(epoch: float) -> str:
    """'14:02:05 UTC': the time a window ends, as the status line says it."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%H:%M:%S UTC")


def verifying_message(progress: Progress) -> str:
    text = f"verifying until {clock(progress.ends)}: {progress.summary()}"
    return f"{text}; last: {progress.last}" if progress.last else text


def outcome_message(progress: Progress) -> str:
    """What a finished window says on the entry's row, as long as the version serves."""
    if progress.outcome == "verified":
        return f"verified ({progress.summary()})"
    return (f"unverified: no conclusive measurement in its window ({progress.summary()}; "
            f"last: {progress.last})")


def failure_reason(progress: Progress, on_failure: str) -> str:
    """The hold's reason: the failing measurement with its value and bound."""
    action = f"rolled back to v{progress.replaced}" if on_failure == "rollback" and \
        progress.replaced is not None else "held"
    return (f"verification failed ({progress.failed} failed measurement(s)): "
            f"{progress.failure}; {action}")


def rollback_changes(env: Environment, model: str, bad: LiveVersion, good: LiveVersion,
                     line: int) -> tuple[Change, ...]:
    """The changes that return `env` from `bad` to `good` (the version it replaced): the same
    writes a promotion makes, so the executor applies them like any other plan."""
    note = f"verification failed: back to v{good.version}"
    if env.target.kind == "alias":
        return (Change(env.registry, env.name, model, good.version, "set_alias", "verification",
                       env.file, line, alias=env.target.value, previous_version=bad.version,
                       note=note),)
    archive = env.sync.archive_previous
    return (
        Change(env.registry, env.name, model, good.version, "promote", "verification",
               env.file, line, from_stage=good.stage, to_stage=env.target.value, note=note),
        Change(env.registry, env.name, model, bad.version, "archive" if archive else "unstage",
               "verification", env.file, line, from_stage=bad.stage,
               to_stage=STAGE_ARCHIVED if archive else STAGE_NONE, note=note),
    )
