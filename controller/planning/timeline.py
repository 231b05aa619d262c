"""Which version held which environment when: segments computed from the git history of the
environment files (first-parent, so a merged pull request counts from its merge) and the
controller's apply records. Pure: revisions and records in, segments out; the picture is
drawn by planning.timeline_svg.

A segment starts when a commit assigned the version and ends when a later commit assigned
another one (or removed the model); the newest segment of an environment is open (`end`
None: "until now"). A segment whose assignment the controller applied carries `applied_at`
(from the apply records, or `recorded` from the lineage tag `gitops.env.<env>` = commit on
the version), so the picture tells "merged" from "actually served"."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from mlflow_gitops.desired.history import Change, Revision, changes


@dataclass(frozen=True)
class ApplyRecord:
    """One change the controller applied: the in-memory ring of recent changes holds these."""

    at: datetime
    environment: str
    model: str
    version: int
    action: str
    commit: str
    text: str  # Change.describe(), e.g. "fraud v3: Staging → Production"


@dataclass(frozen=True)
class Segment:
    environment: str
    version: int
    start: datetime
    end: datetime | None  # None: still assigned at the newest commit read
    commit: str  # the commit that assigned it
    author: str
    subject: str
    applied_at: datetime | None = None  # when the controller applied it (apply records)
    recorded: bool = False  # the version's lineage tag names this commit


@dataclass(frozen=True)
class Timeline:
    model: str
    environments: tuple[str, ...]  # lanes, in the order given
    segments: tuple[Segment, ...]  # per lane, oldest first

    def lane(self, environment: str) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.environment == environment)

    @property
    def span(self) -> tuple[datetime, datetime] | None:
        """The earliest start and the latest start or end: the picture's time axis."""
        if not self.segments:
            return None
        times = [s.start for s in self.segments] + [s.end for s in self.segments if s.end]
        return min(times), max(times)


def segments_of(history: Sequence[Change]) -> list[Segment]:
    """One environment's changes of one model (newest first, as history.changes returns
    them) → its segments, oldest first."""
    out: list[Segment] = []
    for change in sorted(history, key=lambda c: c.when):
        when = datetime.fromisoformat(change.when)
        if out and out[-1].end is None:
            last = out[-1]
            out[-1] = Segment(last.environment, last.version, last.start, when, last.commit,
                              last.author, last.subject)
        if change.new is not None:
            out.append(Segment(change.environment, change.new, when, None, change.commit,
                               change.author, change.subject))
    return out


def timeline(model: str, files: Mapping[str, str],
             revisions: Mapping[str, Sequence[Revision]]) -> Timeline:
    """`files`: environment → its file path; `revisions`: environment → that file's
    first-parent revisions, newest first. Depends on git only: cache it per commit."""
    segments: list[Segment] = []
    for env, path in files.items():
        segments.extend(segments_of(changes(revisions.get(env, ()), path, env, model)))
    return Timeline(model, tuple(files), tuple(segments))


def annotate(timeline: Timeline, records: Iterable[ApplyRecord] = (),
             lineage: Mapping[int, Mapping[str, str]] | None = None) -> Timeline:
    """Mark the segments the controller applied: `records` (any model, any order) give
    when; `lineage` (version → {environment: commit}, the `gitops.env.*` tags) gives that
    it was recorded, even for changes older than the in-memory records."""
    applied: dict[tuple[str, int, str], datetime] = {}
    for r in records:
        if r.model == timeline.model and r.action in ("promote", "set_alias"):
            key = (r.environment, r.version, r.commit)
            applied[key] = min(applied.get(key, r.at), r.at)
    tags = lineage or {}
    return replace(timeline, segments=tuple(
        replace(s, applied_at=applied.get((s.environment, s.version, s.commit)),
                recorded=tags.get(s.version, {}).get(s.environment) == s.commit)
        for s in timeline.segments))


def authors(timeline: Timeline) -> dict[str, str]:
    """commit → author, for "who set it" next to a version's lineage tags."""
    return {s.commit: s.author for s in timeline.segments}
