"""The `verify:` section of an environment file: after a promotion is applied, which live
checks run against which named source (never a URL), for how long, and what a failure
does."""

from __future__ import annotations

import re
from typing import Any, Literal

from mlflow_gitops.desired.fields import Strict, duration_seconds, parse_duration
from pydantic import Field, field_validator, model_validator

SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$")
MAX_VERIFY_SECONDS = 30 * 86400  # a window longer than a month is a mistake
MAX_MEASUREMENTS = 10_000


def source_name_problem(name: str) -> str | None:
    """Why `name` cannot name a verification source, or None. A URL is refused outright:
    where a check sends its query is the operator's choice, never a pull request's."""
    if "://" in name or name.startswith(("//", "/")) or ":" in name:
        return (f"source {name[:60]!r} looks like a URL: a check names a source from the "
                "controller config's verification_sources: (e.g. source: monitoring); "
                "URLs never come from environment files")
    if not SOURCE_NAME.match(name):
        return (f"source {name[:60]!r} is not a source name: use letters, digits, '_', '-' "
                "and '.', as named under verification_sources: in the controller config")
    return None


def verify_duration_problem(key: str, value: str) -> str | None:
    seconds = duration_seconds(value)
    if not seconds:
        return f"{key} '{value[:40]}' is not a duration: write e.g. 30m, 1h or 90s"
    if seconds > MAX_VERIFY_SECONDS:
        return f"{key} '{value[:40]}' is longer than 30d, the longest a verification may run"
    return None


class CheckSpec(Strict):
    """One live check: a query against a named source and the bounds it must stay within."""

    source: str = Field(..., description="a source named under verification_sources: in the "
                        "controller config (never a URL)")
    query: str | None = Field(None, description="Prometheus sources: an instant PromQL query; "
                              "{model}, {version}, {environment} are filled in, escaped")
    path: str | None = Field(None, description="HTTP sources: the JSON path of the number, "
                             "e.g. $.error_rate (default: the source's json_path)")
    min: float | None = Field(None, allow_inf_nan=False)
    max: float | None = Field(None, allow_inf_nan=False)

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if problem := source_name_problem(value):
            raise ValueError(problem)
        return value

    @field_validator("query")
    @classmethod
    def _query(cls, value: str | None) -> str | None:
        from mlflow_gitops.desired.promql import query_problem

        if value is not None and (problem := query_problem(value)):
            raise ValueError(problem)
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        from mlflow_gitops.desired.jsonpath import problem

        if value is not None and (found := problem(value)):
            raise ValueError(found)
        return value

    @model_validator(mode="after")
    def _bounded(self) -> CheckSpec:
        if self.min is None and self.max is None:
            raise ValueError(f"check on source '{self.source}' needs 'min' and/or 'max'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"check on source '{self.source}': min {self.min:g} is above "
                             f"max {self.max:g}, so no value could pass")
        if self.query is not None and self.path is not None:
            raise ValueError("a check takes 'query' (a Prometheus source) or 'path' (an HTTP "
                             "JSON source), not both")
        return self


class VerifySpec(Strict):
    """After a promotion is applied: check it live, and roll back or hold when it fails."""

    duration: str = Field(..., description="how long the checks run after the apply, e.g. 30m")
    interval: str = Field("1m", description="time between measurements, e.g. 1m")
    failure_limit: int = Field(0, ge=0, le=MAX_MEASUREMENTS,
                               description="failed measurements tolerated")
    on_failure: Literal["rollback", "hold"] = Field(
        "rollback", description="rollback: return to the replaced version and hold; hold: "
        "hold only")
    checks: list[CheckSpec] = Field(..., min_length=1, max_length=20)

    @field_validator("duration", "interval")
    @classmethod
    def _duration(cls, value: str, info: Any) -> str:
        if problem := verify_duration_problem(info.field_name, value):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _fits(self) -> VerifySpec:
        window, step = parse_duration(self.duration) or 0, parse_duration(self.interval) or 0
        if step > window:
            raise ValueError(f"interval {self.interval} is longer than duration "
                             f"{self.duration}: no measurement would be taken")
        if window // step > MAX_MEASUREMENTS:
            raise ValueError(f"duration {self.duration} at interval {self.interval} is "
                             f"{window // step} measurements; at most {MAX_MEASUREMENTS}")
        return self

