"""What the environment file format's parts share: the strict base every section is
built on, durations as files write them, and the names MLflow accepts (an environment name
inside a tag key, an alias). Pure; the sections live in mlflow_gitops.desired.schema and
its siblings."""

from __future__ import annotations

import posixpath
import re

from mlflow_gitops.core import tags
from pydantic import BaseModel, ConfigDict

ALIAS_PATTERN = re.compile(r"^[\w\-]+$")
RESERVED_ALIAS = re.compile(r"^(latest|[vV]\d+)$", re.IGNORECASE)
DURATION_PATTERN = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_DURATION_UNITS = (7 * 86400, 86400, 3600, 60, 1)


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



class Strict(BaseModel):
    """Every section: unknown keys are errors, values are never coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)
