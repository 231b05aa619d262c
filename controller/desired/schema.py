"""The environment file format as pydantic models: one definition gives validation
and the published JSON Schema (`environments/schema.json`), so the two never drift apart."""

from __future__ import annotations

import posixpath
import re
from typing import Any, Literal

from mlflow_gitops.core import tags
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

API_VERSION = "mlflow-gitops/v1"
KIND = "Environment"

ALIAS_PATTERN = re.compile(r"^[\w\-]+$")
RESERVED_ALIAS = re.compile(r"^(latest|[vV]\d+)$", re.IGNORECASE)
DURATION_PATTERN = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_DURATION_UNITS = (7 * 86400, 86400, 3600, 60, 1)
STAGE_NAMES = {"production": "Production", "staging": "Staging"}


#: The longest duration a file may give (ten years): beyond it no clock or calendar this
#: controller evaluates can place the end, and a freeze that long is a hold in disguise.
MAX_DURATION_SECONDS = 3653 * 86400


def duration_seconds(text: str) -> int | None:
    """'1d12h' → 129600 seconds, however long; None when the text is not a duration. A
    number of more than 30 digits counts as MAX_DURATION_SECONDS + 1 (never converted:
    Python refuses to parse integers of thousands of digits)."""
    match = DURATION_PATTERN.match(text.strip())
    if not match or not any(match.groups()):
        return None
    if any(len(g) > 30 for g in match.groups() if g):
        return MAX_DURATION_SECONDS + 1
    return sum(int(g) * unit for g, unit in zip(match.groups(), _DURATION_UNITS, strict=True)
               if g)


def parse_duration(text: str) -> int | None:
    """'1d12h' → 129600 seconds; None when the text is not a duration or is longer than
    MAX_DURATION_SECONDS (`duration_problem` says which)."""
    seconds = duration_seconds(text)
    return seconds if seconds is not None and seconds <= MAX_DURATION_SECONDS else None


def duration_problem(field: str, text: str) -> str | None:
    """Why `text` is not a usable duration for `field` (None: it is one)."""
    if parse_duration(text) is not None:
        return None
    shown = text if len(text) <= 40 else text[:37] + "..."
    if duration_seconds(text) is not None:
        return (f"{field} '{shown}' is longer than ten years (3653d), which cannot be "
                "evaluated: write a shorter one; to stop promotions for good, hold the model")
    return f"{field} '{shown}' is not a duration: write e.g. 64h, 30m or 1d12h"


# Environment names become part of MLflow tag keys (`gitops.env.<name>`, `gitops.applied.<name>`
# and `gitops.left.<name>` on versions, `gitops.hold.<name>` and `gitops.converged.<name>` on
# models). MLflow's own check (mlflow/utils/validation.py,
# `_validate_tag_name`): `^[/\w.\- :]*$` (no ':' on Windows servers, so not here either),
# the key must not change under posixpath.normpath, and keys are at most 250 characters.
TAG_KEY_PATTERN = re.compile(r"^[/\w.\- ]*$")
MAX_TAG_KEY_LENGTH = 250
LONGEST_TAG_PREFIX = tags.LONGEST_ENVIRONMENT_PREFIX
MAX_VERSION = 2**63 - 1  # MLflow stores versions as 64-bit integers


def environment_name_problem(name: str) -> str | None:
    """Why MLflow would reject a tag key built from environment `name`, or None."""
    key = LONGEST_TAG_PREFIX + name
    if not name or not TAG_KEY_PATTERN.match(name):
        return (f"environment name {name[:60]!r} cannot be part of an MLflow tag key: use "
                "letters, digits, '_', '-', '.' and spaces only, and rename the file")
    if name.startswith(".") or name != name.strip() or ".." in name:
        return (f"environment name {name[:60]!r} starts with '.', has '..' or leading or "
                "trailing spaces: such a name is hidden or ambiguous as a file, a git branch "
                "and a tag key; rename the file, e.g. to 'production.yaml'")
    if posixpath.normpath(key) != key:
        return (f"environment name {name[:60]!r} cannot be part of an MLflow tag key (MLflow "
                "rejects keys that change as a path, e.g. '..' or a trailing '.'); rename "
                "the file")
    if len(key) > MAX_TAG_KEY_LENGTH:
        return (f"environment name {name[:20]!r}… is {len(name)} characters; at most "
                f"{MAX_TAG_KEY_LENGTH - len(LONGEST_TAG_PREFIX)} fit in an MLflow tag key")
    return None


def alias_problem(alias: str) -> str | None:
    """Why MLflow would reject `alias` (mirrors mlflow.utils.validation), or None."""
    if not ALIAS_PATTERN.match(alias):
        return (
            f"alias '{alias}' is not valid: use letters, digits, '_' and '-' only"
        )
    if len(alias) > 255:
        return f"alias '{alias[:20]}…' is longer than 255 characters"
    if RESERVED_ALIAS.match(alias):
        return (
            f"alias '{alias}' is reserved by MLflow ('latest' and 'v<number>' name versions); "
            "choose another name, e.g. 'champion'"
        )
    return None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class TargetSpec(_Strict):
    """Exactly one of `stage` or `alias`."""

    stage: str | None = Field(None, description="MLflow stage: Staging or Production")
    alias: str | None = Field(None, description="a registered-model alias, e.g. champion")

    @field_validator("stage")
    @classmethod
    def _known_stage(cls, value: str | None) -> str | None:
        if value is None:
            return None
        canonical = STAGE_NAMES.get(value.strip().lower())
        if canonical is None:
            raise ValueError(
                f"unknown stage '{value}': use Staging or Production "
                "(Archived and None are where versions go when they leave)"
            )
        return canonical

    @field_validator("alias")
    @classmethod
    def _valid_alias(cls, value: str | None) -> str | None:
        if value is not None and (problem := alias_problem(value)):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> TargetSpec:
        if (self.stage is None) == (self.alias is None):
            raise ValueError("target needs exactly one of 'stage' or 'alias'")
        return self


class SyncSpec(_Strict):
    self_heal: bool = Field(True, description="revert changes made outside git")
    prune: bool = Field(False, description="a model removed from this file loses its target")
    allow_empty: bool = Field(False, description="let prune empty the whole environment")
    archive_previous: bool = Field(
        True, description="a version leaving a stage goes to Archived (else None)"
    )


class GateSpec(_Strict):
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


class WindowSpec(_Strict):
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


class PromotionSpec(_Strict):
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


class CheckSpec(_Strict):
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


class VerifySpec(_Strict):
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


class ProposeWhenSpec(_Strict):
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


class ProposeSpec(_Strict):
    when: ProposeWhenSpec = Field(default_factory=ProposeWhenSpec)


class ModelSpec(_Strict):
    version: int = Field(..., gt=0, le=MAX_VERSION,
                         description="the model version this environment serves")
    model_name: str | None = Field(
        None, description="registered-model name in this environment's registry, if different"
    )


class PromptSpec(_Strict):
    version: int = Field(..., gt=0, le=MAX_VERSION,
                         description="the prompt version this environment's alias points at")


#: MLflow's rule for prompt names (mlflow/prompt/constants.py, PROMPT_NAME_RULE).
PROMPT_NAME = re.compile(r"^[a-zA-Z0-9_.\-]+$")


def _short(value: Any) -> Any:
    """`name: 3` → `name: {version: 3}` (the short form of an entry)."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {k: ({"version": v} if not isinstance(v, dict) else v) for k, v in value.items()}
    return value


class EnvironmentSpec(_Strict):
    """One file of `environments/`."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        populate_by_name=True,
        json_schema_extra={"title": "mlflow-gitops Environment"},
    )

    apiVersion: Literal["mlflow-gitops/v1"]  # noqa: N815 - the file's own key
    kind: Literal["Environment"]
    name: str | None = Field(None, description="must equal the file's stem when present")
    target: TargetSpec
    registry: str = Field("default", description="a registry named in the controller config")
    sync: SyncSpec = Field(default_factory=SyncSpec)
    promotion: PromotionSpec | None = None
    propose: ProposeSpec | None = Field(
        None, description="`propose` and the controller open pull requests for new versions")
    verify: VerifySpec | None = Field(
        None, description="after a promotion is applied, check it live and roll back on failure")
    models: dict[str, ModelSpec] = Field(
        default_factory=dict,
        description="model name → version (short form) or {version: N} (long form)",
    )

    prompts: dict[str, PromptSpec] = Field(
        default_factory=dict,
        description="alias environments only: MLflow prompt-registry prompt name → version "
        "(prompts:/<name>@<alias> resolves to it)",
    )

    @field_validator("models", "prompts", mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return _short(value)

    @field_validator("prompts")
    @classmethod
    def _prompt_names(cls, value: dict[str, PromptSpec]) -> dict[str, PromptSpec]:
        for name in value:
            if not PROMPT_NAME.match(name):
                raise ValueError(f"prompt name '{name[:60]}' is not valid: MLflow allows "
                                 "letters, digits, '_', '-' and '.' only")
        return value

    @field_validator("models")
    @classmethod
    def _model_names(cls, value: dict[str, ModelSpec]) -> dict[str, ModelSpec]:
        for name in value:
            if not name.strip() or "/" in name or ":" in name:
                raise ValueError(f"model name '{name}' is not valid: MLflow forbids '/' and ':'")
        return value


def json_schema() -> dict[str, Any]:
    """The JSON Schema editors use; the short form `model: 3` is allowed there too."""
    schema = EnvironmentSpec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://mlflow-gitops.dev/schema/environment-v1.json"
    models = schema["properties"]["models"]
    models["additionalProperties"] = {
        "anyOf": [{"type": "integer", "minimum": 1}, {"$ref": "#/$defs/ModelSpec"}]
    }
    prompts = schema["properties"]["prompts"]
    prompts["additionalProperties"] = {
        "anyOf": [{"type": "integer", "minimum": 1}, {"$ref": "#/$defs/PromptSpec"}]
    }
    prompts["propertyNames"] = {"pattern": r"^[a-zA-Z0-9_.\-]+$"}
    # Prompts have no stages: an environment listing prompts must target an alias.
    schema.setdefault("allOf", []).append({
        "if": {"required": ["prompts"], "properties": {"prompts": {"minProperties": 1}}},
        "then": {"properties": {"target": {"required": ["alias"]}}},
    })
    target = schema["$defs"]["TargetSpec"]
    target["properties"]["stage"] = {
        "type": "string",
        "pattern": "^(?i:production|staging)$",
        "description": "MLflow stage: Staging or Production (case-insensitive)",
    }
    target["properties"]["alias"] = {
        "type": "string",
        "pattern": r"^[A-Za-z0-9_\-]+$",
        "not": {"pattern": "^(?i:latest|v[0-9]+)$"},
        "description": "a registered-model alias, e.g. champion",
    }
    target["oneOf"] = [{"required": ["stage"]}, {"required": ["alias"]}]
    promotion = schema["$defs"]["PromotionSpec"]["properties"]
    promotion["min_soak"] = {
        "type": "string",
        "pattern": r"^([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$",
        "description": "how long it must have been in `from`, e.g. 24h, 90m, 1d12h",
    }
    window = schema["$defs"]["WindowSpec"]
    window["properties"]["duration"] = {
        "type": "string",
        "pattern": r"^([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$",
        "description": "how long each window lasts, e.g. 64h, 30m",
    }
    window["oneOf"] = [{"required": ["allow"]}, {"required": ["deny"]}]
    verify = schema["$defs"]["VerifySpec"]["properties"]
    for key in ("duration", "interval"):
        verify[key] = {**verify[key], "pattern": r"^([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?"
                                                  r"([0-9]+s)?$"}
    schema["$defs"]["CheckSpec"]["properties"]["source"]["pattern"] = SOURCE_NAME.pattern
    return schema
