"""Environments that a registry cannot serve: a registry without stages (Unity Catalog,
`databricks-uc`) has aliases only, so a `stage:` environment on it is a validation error
with the file and line, found before anything is planned."""

from __future__ import annotations

from collections.abc import Iterable

from mlflow_gitops.core.diagnostics import Diagnostic
from mlflow_gitops.core.model import DesiredState


def stage_problems(desired: DesiredState, stageless: Iterable[str]) -> list[Diagnostic]:
    """One diagnostic per stage environment whose registry has no stages."""
    without = set(stageless)
    return [
        Diagnostic(env.file, env.line,
                   f"target stage {env.target.value}: registry '{env.registry}' has no stages "
                   "(Unity Catalog); use `alias: <name>` instead")
        for env in desired.environments
        if env.target.kind == "stage" and env.registry in without
    ]
