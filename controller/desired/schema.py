"""The environment file format as pydantic models: one definition gives validation
and the published JSON Schema (`environments/schema.json`), so the two never drift apart.
The top of a file and its targets and entries live here; the shared parts in
mlflow_gitops.desired.fields, `promotion:`/`propose:` in desired.schema_promotion and
`verify:` in desired.schema_verify."""

from __future__ import annotations

import re
from typing import Any, Literal

from mlflow_gitops.desired.fields import MAX_VERSION, Strict, alias_problem
from mlflow_gitops.desired.schema_promotion import PromotionSpec, ProposeSpec
from mlflow_gitops.desired.schema_verify import SOURCE_NAME, VerifySpec
from pydantic import ConfigDict, Field, field_validator, model_validator

API_VERSION = "mlflow-gitops/v1"
KIND = "Environment"
STAGE_NAMES = {"production": "Production", "staging": "Staging"}


class TargetSpec(Strict):
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


class SyncSpec(Strict):
    self_heal: bool = Field(True, description="revert changes made outside git")
    prune: bool = Field(False, description="a model removed from this file loses its target")
    allow_empty: bool = Field(False, description="let prune empty the whole environment")
    archive_previous: bool = Field(
        True, description="a version leaving a stage goes to Archived (else None)"
    )


class ModelSpec(Strict):
    version: int = Field(..., gt=0, le=MAX_VERSION,
                         description="the model version this environment serves")
    model_name: str | None = Field(
        None, description="registered-model name in this environment's registry, if different"
    )


class PromptSpec(Strict):
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


class EnvironmentSpec(Strict):
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
