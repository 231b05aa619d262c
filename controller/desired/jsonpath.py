"""The small JSON path an HTTP verification source is read with: `$.metrics.error_rate`,
`$.results[0].value`, `$["key with.dots"]`. Member names and list indexes only (no
filters, no wildcards): a check reads one number. Pure."""

from __future__ import annotations

import json
import re
from typing import Any

_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_\-]*)|\[(\d+)\]|\[(\"(?:[^\"\\]|\\.)*\")\]")
MAX_PATH = 500


def parse(path: str) -> tuple[str | int, ...]:
    """`$.a[0]` → ('a', 0); ValueError saying what is wrong."""
    if len(path) > MAX_PATH:
        raise ValueError(f"JSON path is {len(path)} characters long; at most {MAX_PATH}")
    if not path.startswith("$"):
        raise ValueError(f"JSON path {path[:60]!r} must start with '$', e.g. $.error_rate")
    steps: list[str | int] = []
    i = 1
    while i < len(path):
        match = _STEP.match(path, i)
        if match is None:
            raise ValueError(f"JSON path {path[:60]!r}: cannot read {path[i:i + 20]!r} at "
                             f"character {i + 1}; write e.g. $.metrics.error_rate or "
                             "$.results[0].value")
        name, index, quoted = match.groups()
        steps.append(name if name is not None else int(index) if index is not None
                     else str(json.loads(quoted)))
        i = match.end()
    return tuple(steps)


def problem(path: str) -> str | None:
    try:
        parse(path)
    except ValueError as exc:
        return str(exc)
    return None


def number_at(document: Any, path: str) -> float | None:
    """The number at `path` in `document`; None when it is absent, null or not a number (a
    numeric string such as Prometheus writes counts)."""
    value = document
    for step in parse(path):
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return None
            value = value[step]
        else:
            if not isinstance(value, dict) or step not in value:
                return None
            value = value[step]
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None
