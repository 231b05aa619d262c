"""The `promotion:` and `propose:` sections of an environment file: gates on a version's
run metrics and tags, freeze and release windows, the soak after the environment a version
comes from, and what a version must carry to be proposed on its own."""

from __future__ import annotations

from mlflow_gitops.desired.fields import Strict, duration_problem, parse_duration
from pydantic import Field, field_validator, model_validator


class GateSpec(Strict):
    metric: str | None = Field(None, description="a metric of the version's source run")
    min: float | None = Field(None, allow_inf_nan=False)
    max: float | None = Field(None, allow_inf_nan=False)
    tag: str | None = Field(None, description="a model-version tag")
    equals: str | None = None
    exists: bool | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> GateSpec:
        if (self.metric is None) == (self.tag is None):
            raise ValueError("a gate needs exactly one of 'metric' or 'tag'")
        if self.metric is not None:
            if self.equals is not None or self.exists is not None:
                raise ValueError("a metric gate takes 'min' and/or 'max', not 'equals'/'exists'")
            if self.min is None and self.max is None:
                raise ValueError(f"metric gate '{self.metric}' needs 'min' and/or 'max'")
        else:
            if self.min is not None or self.max is not None:
                raise ValueError("a tag gate takes 'equals' or 'exists', not 'min'/'max'")
            if self.equals is None and self.exists is None:
                raise ValueError(f"tag gate '{self.tag}' needs 'equals' or 'exists: true'")
        return self


def cron_problem(expression: str) -> str | None:
    """Why `expression` is not a five-field cron (minute hour day month weekday), or None."""
    from croniter import CroniterError, croniter

    fields = expression.split()
    if len(fields) != 5 and not (len(fields) == 1 and fields[0].startswith("@")):
        return (f"cron '{expression}' needs five fields (minute hour day-of-month month "
                "day-of-week), e.g. '0 17 * * FRI'")
    if not croniter.is_valid(expression):
        return f"cron '{expression}' is not valid: write e.g. '0 17 * * FRI' or '30 8 * * 1-5'"
    try:
        croniter(expression).get_next()
    except (CroniterError, ValueError, OverflowError):
        return f"cron '{expression}' never matches a date (e.g. 30 February)"
    return None


def timezone_problem(name: str) -> str | None:
    """Why `name` is not an IANA time zone (e.g. Europe/Berlin), or None."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return f"timezone '{name}' is not an IANA time zone: write e.g. UTC or Europe/Berlin"
    return None


class WindowSpec(Strict):
    """A freeze (`deny`) or release (`allow`) window: a cron for each start, how long it
    lasts, and the time zone the cron is read in."""

    allow: str | None = Field(None, description="cron of each allow window's start")
    deny: str | None = Field(None, description="cron of each deny window's start")
    duration: str = Field(..., description="how long each window lasts, e.g. 64h, 30m")
    timezone: str = Field("UTC", description="IANA time zone of the cron, e.g. Europe/Berlin")

    @field_validator("allow", "deny")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and (problem := cron_problem(value)):
            raise ValueError(problem)
        return value

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str) -> str:
        if problem := duration_problem("duration", value):
            raise ValueError(problem)
        if not parse_duration(value):
            raise ValueError(f"duration '{value}' is zero: a window must last, e.g. 64h or 30m")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if problem := timezone_problem(value):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> WindowSpec:
        if (self.allow is None) == (self.deny is None):
            raise ValueError("a window needs exactly one of 'allow' or 'deny' (its start cron)")
        return self


class PromotionSpec(Strict):
    from_: str | None = Field(
        None, alias="from", description="the environment a version must come through"
    )
    min_soak: str | None = Field(
        None, description="how long it must have been in `from`, e.g. 24h, 90m, 1d12h"
    )
    gates: list[GateSpec] = Field(default_factory=list)
    windows: list[WindowSpec] = Field(
        default_factory=list,
        description="freeze (deny) and release (allow) windows; deny wins over allow")

    require_verified: bool = Field(
        False, description="only versions whose `verify:` checks passed in `from`")

    @field_validator("min_soak")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and (problem := duration_problem("min_soak", value)):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _soak_needs_from(self) -> PromotionSpec:
        if self.min_soak is not None and self.from_ is None:
            raise ValueError("promotion.min_soak needs promotion.from (soak where?)")
        if self.require_verified and self.from_ is None:
            raise ValueError("promotion.require_verified needs promotion.from (verified where?)")
        return self


class ProposeWhenSpec(Strict):
    tags: dict[str, str] = Field(
        default_factory=dict, description="model-version tags a candidate must carry, e.g. "
        "{validation_status: passed}")
    metrics: list[GateSpec] = Field(
        default_factory=list, description="metric bounds of the candidate's source run")

    @field_validator("metrics")
    @classmethod
    def _metrics_only(cls, value: list[GateSpec]) -> list[GateSpec]:
        if any(g.metric is None for g in value):
            raise ValueError("propose.when.metrics takes metric bounds; put tag checks "
                             "under propose.when.tags")
        return value


class ProposeSpec(Strict):
    when: ProposeWhenSpec = Field(default_factory=ProposeWhenSpec)

