"""Frozen values shared by every layer: the desired state read from git and the live state
read from a registry. Nothing here does I/O, so planners and renderers can be tested with
plain literals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, TypeVar

K = TypeVar("K")
V = TypeVar("V")

STAGE_NONE = "None"
STAGE_STAGING = "Staging"
STAGE_PRODUCTION = "Production"
STAGE_ARCHIVED = "Archived"
#: Stages an environment may target; the others are where versions go when they leave.
TARGET_STAGES = (STAGE_PRODUCTION, STAGE_STAGING)
ALL_STAGES = (STAGE_NONE, STAGE_STAGING, STAGE_PRODUCTION, STAGE_ARCHIVED)

DEFAULT_REGISTRY = "default"

#: What an entry names: a registered model, or a prompt of MLflow 3's prompt registry. In
#: MLflow a prompt is a registered model carrying PROMPT_TAG = "true" (and each of its
#: versions too, the template in PROMPT_TEXT_TAG), so aliases, tags and searches are the
#: registered-model calls; only the searches must ask for prompts by that tag.
EntryKind = Literal["model", "prompt"]
PROMPT_TAG = "mlflow.prompt.is_prompt"
PROMPT_TEXT_TAG = "mlflow.prompt.text"
PROMPT_RUNS_TAG = "mlflow.prompt.associatedRunIds"  # comma-separated runs linked to a version


def evaluation_run(run_id: str | None, tags: Mapping[str, str]) -> str | None:
    """The run a version's metric gates read: its own run, else (a prompt version) the last
    run MLflow linked to it."""
    if run_id:
        return run_id
    linked = [r for r in tags.get(PROMPT_RUNS_TAG, "").split(",") if r.strip()]
    return linked[-1].strip() if linked else None


def frozen_map(items: Mapping[K, V] | None = None) -> Mapping[K, V]:
    """A read-only copy: values stay frozen even when built from a dict someone keeps."""
    return MappingProxyType(dict(items or {}))


@dataclass(frozen=True)
class Target:
    """Where an environment puts its versions: an MLflow stage or a registered-model alias."""

    kind: Literal["stage", "alias"]
    value: str  # "Production" / "Staging" (canonical case) or the alias name

    def __str__(self) -> str:
        return f"stage {self.value}" if self.kind == "stage" else f"alias @{self.value}"


@dataclass(frozen=True)
class SyncOptions:
    self_heal: bool = True
    prune: bool = False
    allow_empty: bool = False
    archive_previous: bool = True


@dataclass(frozen=True)
class Gate:
    """One promotion gate: a metric bound of the source run, or a model-version tag check."""

    metric: str | None = None
    min: float | None = None
    max: float | None = None
    tag: str | None = None
    equals: str | None = None
    exists: bool | None = None
    line: int = 0


@dataclass(frozen=True)
class Window:
    """A freeze (`deny`) or release (`allow`) window: it starts at each time the cron matches,
    on the wall clock of `timezone`, and lasts `duration_seconds` of elapsed time."""

    kind: Literal["allow", "deny"]
    cron: str
    duration_seconds: int
    timezone: str = "UTC"
    line: int = 0

    def __str__(self) -> str:
        return f"{self.kind} '{self.cron}' for {self.duration_seconds}s ({self.timezone})"


@dataclass(frozen=True)
class Promotion:
    from_env: str | None = None
    min_soak_seconds: int | None = None
    gates: tuple[Gate, ...] = ()
    line: int = 0
    windows: tuple[Window, ...] = ()
    #: Only versions the controller verified in `from_env` (a passed `verify:` window).
    require_verified: bool = False


@dataclass(frozen=True)
class Check:
    """One `verify:` check: a query against a named verification source (never a URL) and
    the bounds its value must stay within."""

    source: str
    query: str | None = None  # a Prometheus source: an instant PromQL query
    path: str | None = None  # an HTTP JSON source: where the number is in the answer
    min: float | None = None
    max: float | None = None
    line: int = 0

    def bounds(self) -> str:
        """'<= 0.02', '>= 0.9', 'between 0.1 and 0.2'."""
        if self.min is not None and self.max is not None:
            return f"between {self.min:g} and {self.max:g}"
        return f"<= {self.max:g}" if self.max is not None else f">= {self.min:g}"

    def describe(self) -> str:
        what = self.query if self.query is not None else self.path or "(source default)"
        return f"{self.source}: {' '.join(what.split())[:120]}"


@dataclass(frozen=True)
class Verify:
    """`verify:`: after a promotion is applied, measure every check each `interval_seconds`
    for `duration_seconds`; more than `failure_limit` failed measurements trigger
    `on_failure` (return to the replaced version and hold, or hold only)."""

    duration_seconds: int
    interval_seconds: int
    failure_limit: int = 0
    on_failure: Literal["rollback", "hold"] = "rollback"
    checks: tuple[Check, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class Propose:
    """`propose:`: which new versions become pull requests for this environment by themselves
    (besides passing its whole promotion policy)."""

    tags: Mapping[str, str] = field(default_factory=frozen_map)
    metrics: tuple[Gate, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class ModelEntry:
    """One `models:` entry: which version this environment wants, and where it was written."""

    version: int
    line: int
    registered_name: str | None = None  # `model_name:` mapping across registries, if any
    kind: EntryKind = "model"  # listed under `models:` or `prompts:`


@dataclass(frozen=True)
class Environment:
    name: str
    file: str  # path as the user should see it in messages
    target: Target
    registry: str = DEFAULT_REGISTRY
    sync: SyncOptions = SyncOptions()
    promotion: Promotion | None = None
    propose: Propose | None = None
    models: Mapping[str, ModelEntry] = field(default_factory=frozen_map)
    line: int = 1
    verify: Verify | None = None

    def model_line(self, model: str) -> int:
        entry = self.models.get(model)
        return entry.line if entry else self.line

    def kind_of(self, model: str) -> EntryKind:
        """`prompt` for a name listed under `prompts:`, else `model`."""
        entry = self.models.get(model)
        return entry.kind if entry else "model"


@dataclass(frozen=True)
class DesiredState:
    """Every environment of one commit (or one local folder)."""

    environments: tuple[Environment, ...] = ()
    commit: str = "local"

    def by_name(self) -> dict[str, Environment]:
        return {env.name: env for env in self.environments}

    def registries(self) -> tuple[str, ...]:
        return tuple(sorted({env.registry for env in self.environments}))


@dataclass(frozen=True)
class LiveVersion:
    model: str
    version: int
    stage: str = STAGE_NONE
    status: str = "READY"
    run_id: str | None = None
    source: str | None = None
    tags: Mapping[str, str] = field(default_factory=frozen_map)
    created_ms: int | None = None
    updated_ms: int | None = None

    @property
    def template(self) -> str | None:
        """A prompt version's template (MLflow keeps it in a version tag); None for models."""
        return self.tags.get(PROMPT_TEXT_TAG)


@dataclass(frozen=True)
class LiveModel:
    name: str
    versions: Mapping[int, LiveVersion] = field(default_factory=frozen_map)
    aliases: Mapping[str, int] = field(default_factory=frozen_map)
    #: Registered-model tags (e.g. the emergency hold `gitops.hold.<environment>`).
    tags: Mapping[str, str] = field(default_factory=frozen_map)

    def in_stage(self, stage: str) -> tuple[int, ...]:
        return tuple(sorted(v for v, lv in self.versions.items() if lv.stage == stage))

    def aliases_of(self, version: int) -> tuple[str, ...]:
        return tuple(sorted(a for a, v in self.aliases.items() if v == version))

    @property
    def is_prompt(self) -> bool:
        """A prompt of MLflow's prompt registry (the model tag MLflow sets), not a model."""
        if PROMPT_TAG in self.tags:
            return self.tags[PROMPT_TAG].lower() == "true"
        first = next(iter(self.versions.values()), None)  # a prompt's versions carry it too
        return first is not None and first.tags.get(PROMPT_TAG, "").lower() == "true"

    @property
    def kind(self) -> EntryKind:
        return "prompt" if self.is_prompt else "model"


@dataclass(frozen=True)
class Snapshot:
    """The live state of one registry, read in bulk."""

    registry: str = DEFAULT_REGISTRY
    models: Mapping[str, LiveModel] = field(default_factory=frozen_map)

    def model(self, name: str) -> LiveModel | None:
        return self.models.get(name)
