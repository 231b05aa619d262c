"""What an environment file assigned over its git history: the one reader of that history.

Adapters return `Revision`s (one per commit that touched a file, newest first); this module
turns them into the version each commit assigned to a model. A revision whose file does not
validate assigned nothing: the controller never applies an invalid commit, so it is skipped
here too (it neither lists nor removes the model). Pure: text in, values out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Revision:
    """One commit that touched a file."""

    sha: str
    author: str  # "Name <email>"
    when: datetime  # commit time (for a first-parent walk: when the pull request was merged)
    subject: str
    text: str | None  # the file at that commit; None where the commit deleted it


@dataclass(frozen=True)
class Assigned:
    """The version one valid revision assigned to a model (None: not listed, or deleted)."""

    revision: Revision
    version: int | None


@dataclass(frozen=True)
class Change:
    """A revision that changed the model's version in one environment: `history` rows."""

    when: str
    author: str
    commit: str
    subject: str
    environment: str
    model: str
    old: int | None
    new: int | None


def assigned(revisions: Sequence[Revision], file: str, model: str) -> list[Assigned]:
    """Newest first, one row per valid revision of `file`."""
    from mlflow_gitops.desired.loader import load_one

    out = []
    for rev in revisions:
        if rev.text is None:
            out.append(Assigned(rev, None))
            continue
        env, _ = load_one(file, rev.text)
        if env is None:
            continue  # an invalid commit assigned nothing; the controller skipped it too
        entry = env.models.get(model)
        out.append(Assigned(rev, entry.version if entry is not None else None))
    return out


def changes(revisions: Sequence[Revision], file: str, environment: str, model: str
            ) -> list[Change]:
    """Every change of `model`'s version in `file`, newest first."""
    out: list[Change] = []
    previous: int | None = None
    for row in reversed(assigned(revisions, file, model)):
        if row.version != previous:
            rev = row.revision
            out.append(Change(rev.when.isoformat(), rev.author, rev.sha, rev.subject,
                              environment, model, previous, row.version))
            previous = row.version
    return list(reversed(out))
