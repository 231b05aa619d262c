"""A prompt change's template diff: what a reviewer reads when an alias moves from one prompt
version to another (MLflow keeps each version's template in the registry)."""

from __future__ import annotations

import difflib

from mlflow_gitops.core.plan import Change

MAX_LINES = 60  # a PR comment stays readable; the rest is counted, not shown


def template_diff(change: Change) -> list[str]:
    """Unified diff lines (without the ---/+++ header) from the old template to the new, or
    the whole new template as additions when the alias was unset; [] for models."""
    if change.kind != "prompt" or change.template is None:
        return []
    old = (change.previous_template or "").splitlines()
    new = change.template.splitlines()
    if change.previous_template is None:
        lines = [f"+{line}" for line in new]
    else:
        lines = [line for line in difflib.unified_diff(old, new, lineterm="", n=2)
                 if not line.startswith(("---", "+++"))]
        if not lines:
            lines = [" (same template)"]
    if len(lines) > MAX_LINES:
        lines = [*lines[:MAX_LINES], f"… {len(lines) - MAX_LINES} more line(s)"]
    return lines


def old_label(change: Change) -> str:
    return f"v{change.previous_version}" if change.previous_version else "unset"
