"""Which version held which environment when: segments computed from the git history of the
environment files (first-parent, so a merged pull request counts from its merge) and the
controller's apply records. Pure: revisions and records in, segments out; the picture is
drawn by planning.timeline_svg.

A segment starts when a commit assigned the version and ends when a later commit assigned
another one (or removed the model); the newest segment of an environment is open (`end`
None: "until now"). A segment whose assignment the controller applied carries `applied_at`
(from the apply records) or `recorded` (the lineage tag `gitops.env.<env>` = commit on the
version), so the picture tells "merged" from "actually served"."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from mlflow_gitops.desired.history import Change, Parser, Revision, changes, listed


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
    #: Why: "git" (a commit changed it), "drift" (a repair of live back to git: the commit
    #: is the one whose state it restored, not its cause), "replaced", "prune", ...
    reason: str = "git"


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
    recorded: bool = False  # the version's lineage tag records this assignment
    pending: bool = False  # the newest assignment, not live now (refused, waiting, drifted)


@dataclass(frozen=True)
class Timeline:
    model: str
    environments: tuple[str, ...]  # lanes in the order given: those the model ever held
    segments: tuple[Segment, ...]  # per lane, oldest first
    #: Every commit read (any model): sha → (commit time, author), for lineage tags whose
    #: commit changed another model and for "who set it".
    commits: Mapping[str, tuple[datetime, str]] = field(default_factory=dict)

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
    them) → its segments, oldest first. The order is git's, not the dates': two merges in
    one second, or a commit dated in the past, keep their place."""
    out: list[Segment] = []
    for change in reversed(history):
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
             revisions: Mapping[str, Sequence[Revision]], parse: Parser = listed) -> Timeline:
    """`files`: environment → its file path; `revisions`: environment → that file's
    first-parent revisions, newest first. Depends on git only: cache it per commit.
    `parse` reads one revision (history.listed, or a caching wrapper of it)."""
    segments: list[Segment] = []
    for env, path in files.items():
        segments.extend(segments_of(changes(revisions.get(env, ()), path, env, model, parse)))
    commits = {r.sha: (r.when, r.author) for revs in revisions.values() for r in revs}
    lanes = tuple(e for e in files if any(s.environment == e for s in segments))
    return Timeline(model, lanes or tuple(files), tuple(segments), commits)


#: Clock skew tolerated between the forge's commit times and the controller's clock.
SKEW = timedelta(minutes=5)


def annotate(timeline: Timeline, records: Iterable[ApplyRecord] = (),
             lineage: Mapping[int, Mapping[str, str]] | None = None,
             live: Mapping[str, Sequence[int]] | None = None) -> Timeline:
    """Mark the segments the controller applied. An apply record (any model, any order) or
    a lineage tag (version → {environment: commit}, the `gitops.env.*` tags) names the
    commit the controller was at, which may be later than the commit that made the
    assignment (two merges between passes): it belongs to the segment of that environment
    and version that had started by then. `live` (environment → the versions live there
    now) marks an environment's open segment `pending` when git assigns a version that
    does not hold it: merged, but refused, waiting, failing or drifted away; and keeps a
    segment open whose version git no longer lists there but which is still live there
    (promoted onward and not taken yet)."""
    segments = list(timeline.segments)
    applied: dict[int, datetime] = {}
    for r in records:
        if r.model == timeline.model and r.action in ("promote", "set_alias"):
            i = _owner(segments, r.environment, r.version, r.at + SKEW)
            if i is not None:
                applied[i] = min(applied.get(i, r.at), r.at)
    recorded: set[int] = set()
    for version, envs in (lineage or {}).items():
        for env, sha in envs.items():
            known = timeline.commits.get(sha)
            i = _owner(segments, env, version, known[0] if known else None)
            if i is not None:
                recorded.add(i)
    now = live or {}
    for env, versions in now.items():
        # Unlisted in git but still live (promoted onward, not taken yet): the bar goes on.
        last = max((i for i, s in enumerate(segments) if s.environment == env),
                   key=lambda i: segments[i].start, default=None)
        if last is not None and segments[last].end is not None \
                and segments[last].version in versions:
            segments[last] = replace(segments[last], end=None)
    return replace(timeline, segments=tuple(
        replace(s, applied_at=applied.get(i), recorded=i in recorded,
                pending=s.end is None and s.environment in now
                and s.version not in now[s.environment])
        for i, s in enumerate(segments)))


def _owner(segments: Sequence[Segment], env: str, version: int, when: datetime | None
           ) -> int | None:
    """The index of the last segment of (env, version) started by `when` (None: the last
    one); the first one when none had started (a clock behind the forge's)."""
    mine = [i for i, s in enumerate(segments) if s.environment == env and s.version == version]
    if not mine:
        return None
    started = [i for i in mine if when is None or segments[i].start <= when]
    return started[-1] if started else mine[0]


def authors(timeline: Timeline) -> dict[str, str]:
    """commit → author, for "who set it" next to a version's lineage tags."""
    return {sha: author for sha, (_, author) in timeline.commits.items()}
