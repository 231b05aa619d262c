"""The plan is a value: what a reconcile would change, what it refuses and why, and what
drift it only reports. Types and their JSON form only; planning and rendering live
elsewhere."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from mlflow_gitops.core.model import EntryKind

Action = Literal["promote", "archive", "unstage", "set_alias", "delete_alias"]
#: Why a change is in the plan: a git entry changed, live drifted, a model left a pruning
#: file, a version leaves a stage because another one takes it, or a failed verification
#: returns the environment to the version a promotion replaced.
Reason = Literal["git", "drift", "prune", "replaced", "verification"]

#: Order inside one model: serving versions land first, leavers go last.
_PHASE = {"promote:Production": 0, "promote:Staging": 1, "set_alias": 2, "archive": 3,
          "unstage": 3, "delete_alias": 4}


@dataclass(frozen=True)
class GateResult:
    """One policy check of one promotion: what was required, what was found."""

    name: str  # e.g. "metric accuracy", "from staging", "min_soak 24h", "tag validation"
    passed: bool
    actual: str
    required: str
    detail: str = ""
    #: A failed check that time alone passes (a soak, a freeze window): when, epoch seconds.
    until: float | None = None


@dataclass(frozen=True)
class Verdict:
    """The policy's answer for one promotion: allowed or not, with every gate's result."""

    allowed: bool
    gates: tuple[GateResult, ...] = ()
    note: str = ""  # shown with an allowed change, e.g. why gates were skipped
    message: str = ""  # why it was refused, one line
    #: Refused only by gates that time alone satisfies (soak, a freeze window): when it
    #: expects to proceed, epoch seconds. None: a human must act.
    waiting_until: float | None = None


@dataclass(frozen=True)
class Change:
    registry: str
    environment: str
    model: str
    version: int
    action: Action
    reason: Reason
    file: str
    line: int
    from_stage: str | None = None  # stage actions: the version's live stage now
    to_stage: str | None = None  # stage actions: where it goes
    alias: str | None = None  # alias actions
    previous_version: int | None = None  # alias actions: where the alias pointed
    gates: tuple[GateResult, ...] = ()
    note: str = ""  # e.g. "rollback to a version production held before: gates skipped"
    kind: EntryKind = "model"  # a registered model, or a prompt (its alias)
    #: Prompts: the template of the version the alias moves to, and of the one it leaves
    #: (what a reviewer reads in the diff, not just two version numbers).
    template: str | None = None
    previous_template: str | None = None

    @property
    def phase(self) -> int:
        key = f"promote:{self.to_stage}" if self.action == "promote" else self.action
        return _PHASE.get(key, 1)

    def describe(self) -> str:
        if self.kind == "prompt":
            return "prompt " + self._describe()
        return self._describe()

    def _describe(self) -> str:
        if self.action in ("promote", "archive", "unstage"):
            return f"{self.model} v{self.version}: {self.from_stage} → {self.to_stage}"
        if self.action == "set_alias":
            before = f"v{self.previous_version}" if self.previous_version else "unset"
            return f"{self.model} @{self.alias}: {before} → v{self.version}"
        return f"{self.model} @{self.alias}: v{self.version} → unset"


#: What kept a model from converging. The state each maps to is decided in one
#: place, planning.status: "waiting" → Waiting, "held" → Held, "gate" → Refused, the rest →
#: Error.
ErrorKind = Literal["missing_version", "gate", "guard", "apply", "registry", "waiting", "held"]
#: Kinds that are no failure: time alone (Waiting) or a person's hold (Held) keeps them back,
#: so they never make a command exit 1 or read as an error.
NOT_FAILURES = frozenset({"waiting", "held"})


@dataclass(frozen=True)
class ModelError:
    """A model (or, with model None, a whole environment) that will not converge this pass."""

    registry: str
    environment: str
    model: str | None
    kind: ErrorKind
    message: str
    file: str
    line: int
    gates: tuple[GateResult, ...] = ()
    until: float | None = None  # kind "waiting": when it expects to proceed, epoch seconds

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"

    @property
    def is_failure(self) -> bool:
        """Refused or Error: a person or a retry must act (not Waiting, not Held)."""
        return self.kind not in NOT_FAILURES


@dataclass(frozen=True)
class Drift:
    """Live differs from git but `self_heal: false` says leave it: reported, not applied."""

    registry: str
    environment: str
    model: str
    desired: str
    live: str
    file: str
    line: int


@dataclass(frozen=True)
class Plan:
    commit: str
    changes: tuple[Change, ...] = ()
    errors: tuple[ModelError, ...] = ()
    drift: tuple[Drift, ...] = field(default=())
    #: Things a person should know that stop nothing (a hold no environment honours).
    warnings: tuple[str, ...] = ()

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    @property
    def failures(self) -> tuple[ModelError, ...]:
        """The errors that are failures (Refused, Error), not Waiting or Held."""
        return tuple(e for e in self.errors if e.is_failure)

    @property
    def kept_back(self) -> tuple[ModelError, ...]:
        """Waiting and Held entries: not changed this pass, and no failure."""
        return tuple(e for e in self.errors if not e.is_failure)

    def counts(self) -> dict[str, int]:
        out = {"promote": 0, "archive": 0, "unstage": 0, "set_alias": 0, "delete_alias": 0}
        for change in self.changes:
            out[change.action] += 1
        return out

    def introduced_since(self, base: Plan) -> Plan:
        """This plan with only the problems `base` does not already have: what a change
        (a pull request, a promote branch) answers for. Durations and times in messages are
        ignored, so a soak that grew between the two plans is the same problem."""
        existing = {_problem_key(e) for e in base.errors}
        return replace(self, errors=tuple(e for e in self.errors
                                          if _problem_key(e) not in existing))

    def to_dict(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "summary": self.counts(),
            "changes": [asdict(c) for c in self.changes],
            # Waiting and Held are not errors: a script that fails on "errors" must not
            # fail on a soak still running or on a person's hold.
            "errors": [asdict(e) for e in self.failures],
            "waiting": [asdict(e) for e in self.kept_back if e.kind == "waiting"],
            "held": [asdict(e) for e in self.kept_back if e.kind == "held"],
            "drift": [asdict(d) for d in self.drift],
            "warnings": list(self.warnings),
        }


_MOMENT = re.compile(r"\b(?:\d+[dhms])+\b|\d{4}-\d\d-\d\d \d\d:\d\d(?: UTC)?")


def _problem_key(error: ModelError) -> tuple[str, str, str | None, str, str]:
    return (error.registry, error.environment, error.model, error.kind,
            _MOMENT.sub("…", error.message))


@dataclass(frozen=True)
class TagEdit:
    """Set (`value`) or delete (None) one registry tag the controller owns: on a model version,
    or, with `version` None, on the registered model (a hold, a convergence record)."""

    model: str
    key: str
    value: str | None
    version: int | None = None


@dataclass(frozen=True)
class CopyRequest:
    """Copy `source_model` v`source_version` of registry `source_registry` into `registry` as
    a new version of `model`, with `tags` set in the creating call (promotion across
    registries: the planner's placeholder `placeholder` becomes the real version)."""

    environment: str
    registry: str
    model: str
    key: str  # the entry as the environment's file writes it
    placeholder: int
    source_registry: str
    source_model: str
    source_version: int
    tags: tuple[tuple[str, str], ...]
    file: str
    line: int
    file_version: int  # the version number as the file writes it (in the origin registry)
