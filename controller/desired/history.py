"""What an environment file assigned over its git history: the one reader of that history.

Adapters return `Revision`s (one per commit that touched a file, newest first); this module
turns them into the version each commit assigned to a model. A revision whose file does not
validate assigned nothing: the controller never applies an invalid commit, so it is skipped
here too (it neither lists nor removes the model). Pure: text in, values out."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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


#: One revision of a file → every model's version in it ({} where the commit deleted the
#: file), or None where it does not validate. `listed` is the one definition; a caller that
#: reads many models of the same history (the web page) may pass a caching wrapper of it.
Parser = Callable[[Revision, str], "Mapping[str, int] | None"]


def listed(revision: Revision, file: str) -> Mapping[str, int] | None:
    """What one revision of `file` assigned: {model: version}; None for an invalid file."""
    from mlflow_gitops.desired.loader import load_one

    if revision.text is None:
        return {}
    env, _ = load_one(file, revision.text)
    if env is None:
        return None  # an invalid commit assigned nothing; the controller skipped it too
    return {name: entry.version for name, entry in env.models.items()}


def assigned(revisions: Sequence[Revision], file: str, model: str, parse: Parser = listed
             ) -> list[Assigned]:
    """Newest first, one row per valid revision of `file`."""
    out = []
    for rev in revisions:
        versions = parse(rev, file)
        if versions is not None:
            out.append(Assigned(rev, versions.get(model)))
    return out


def changes(revisions: Sequence[Revision], file: str, environment: str, model: str,
            parse: Parser = listed) -> list[Change]:
    """Every change of `model`'s version in `file`, newest first."""
    out: list[Change] = []
    previous: int | None = None
    for row in reversed(assigned(revisions, file, model, parse)):
        if row.version != previous:
            rev = row.revision
            out.append(Change(rev.when.isoformat(), rev.author, rev.sha, rev.subject,
                              environment, model, previous, row.version))
            previous = row.version
    return list(reversed(out))
