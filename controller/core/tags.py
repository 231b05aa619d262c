"""Every registry tag key the controller writes or reads: the one place they are spelled.

Model-version tags:
- `gitops.env.<env>` = commit: lineage and ownership (which commit put the version into the
  environment; prune and `status --model` read it). Written before each change.
- `gitops.applied.<env>` = `{"commit", "at"}` and `gitops.left.<env>` = epoch seconds: the
  promotion policy's evidence (mlflow_gitops.policy.evidence), written after a change.
- `gitops.verify.<env>` = the verification window of a promotion, `gitops.verified.<env>` =
  its result (mlflow_gitops.policy.verify).
- `gitops.rejected` = a control (who, when, why): no environment promotes the version.
- `gitops.source.registry|model|version|uri`: on a copy made across registries, what it is
  a copy of (mlflow_gitops.desired.crossregistry).
- `gitops.copy.pending`: marks an in-memory placeholder for a copy still to make; never
  written to a registry.
- `gitops.copy.rejected`: in memory only, never written: a rejection placed on another copy
  of the same version (its source, or another registry's copy), so it follows the version
  (mlflow_gitops.policy.controls.follow_rejections).

Registered-model tags:
- `gitops.hold.<env>` = a control: the emergency hold (mlflow_gitops.policy.controls).
- `gitops.converged.<env>` = `{"version", "target", "commit"}`: what a `self_heal: false`
  environment last fully applied (mlflow_gitops.planning.converged).

To add a key: a constant (and, per environment, a function) here, then a line above."""

from __future__ import annotations

#: Every key the controller owns starts with this.
PREFIX = "gitops."

OWNERSHIP_PREFIX = "gitops.env."
APPLIED_PREFIX = "gitops.applied."
LEFT_PREFIX = "gitops.left."
REJECTED = "gitops.rejected"
VERIFY_PREFIX = "gitops.verify."
VERIFIED_PREFIX = "gitops.verified."
SOURCE_PREFIX = "gitops.source."
SOURCE_REGISTRY = "gitops.source.registry"
SOURCE_MODEL = "gitops.source.model"
SOURCE_VERSION = "gitops.source.version"
SOURCE_URI = "gitops.source.uri"
COPY_PREFIX = "gitops.copy."
COPY_PENDING = "gitops.copy.pending"
COPY_REJECTED = "gitops.copy.rejected"

HOLD_PREFIX = "gitops.hold."
CONVERGED_PREFIX = "gitops.converged."

#: The keys that end in an environment's name: that name must fit MLflow's key limits after
#: the longest of them (mlflow_gitops.desired.fields checks environment names against it).
ENVIRONMENT_PREFIXES = (OWNERSHIP_PREFIX, APPLIED_PREFIX, LEFT_PREFIX, VERIFY_PREFIX,
                        VERIFIED_PREFIX, HOLD_PREFIX, CONVERGED_PREFIX)
LONGEST_ENVIRONMENT_PREFIX = max(ENVIRONMENT_PREFIXES, key=len)

#: Version tags a copy across registries does not inherit from its source: ownership is per
#: registry, older lineage is replaced, and evidence describes the source version, not the
#: copy.
NOT_INHERITED_BY_COPIES = (OWNERSHIP_PREFIX, SOURCE_PREFIX, COPY_PREFIX, APPLIED_PREFIX,
                           LEFT_PREFIX)


def ownership_tag(environment: str) -> str:
    """The model-version tag that records which commit put a version into `environment`."""
    return f"{OWNERSHIP_PREFIX}{environment}"


def applied_tag(environment: str) -> str:
    """The model-version tag recording that the controller promoted a version into it."""
    return f"{APPLIED_PREFIX}{environment}"


def left_tag(environment: str) -> str:
    """The model-version tag recording when the controller moved a version out of it."""
    return f"{LEFT_PREFIX}{environment}"


def verify_tag(environment: str) -> str:
    """The model-version tag holding a promotion's verification window in `environment`."""
    return f"{VERIFY_PREFIX}{environment}"


def verified_tag(environment: str) -> str:
    """The model-version tag holding a verification's result in `environment`."""
    return f"{VERIFIED_PREFIX}{environment}"


def hold_tag(environment: str) -> str:
    """The registered-model tag that holds `environment` for a model."""
    return f"{HOLD_PREFIX}{environment}"


def converged_tag(environment: str) -> str:
    """The registered-model tag holding what `environment` last fully applied."""
    return f"{CONVERGED_PREFIX}{environment}"
