"""The timeline drawn from what was applied: the ledger's intervals (a version live in an
environment from one record to the next) become the bars, each labelled with the git
assignment it carried out; a git assignment the ledger never saw applied stays a dashed
outline (merged, not applied). Assignments older than an environment's first ledger record
are left as git and the apply records show them (the ledger may have been turned on later).
Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone

from mlflow_gitops.planning.ledger import Interval
from mlflow_gitops.planning.timeline import SKEW, Segment, Timeline


def _when(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, timezone.utc)


def with_applied(timeline: Timeline, intervals: Sequence[Interval]) -> Timeline:
    """`timeline` with each lane's bars replaced by the applied intervals of `timeline.model`
    (unchanged where the ledger has none for that lane)."""
    mine = [i for i in intervals if i.name == timeline.model]
    if not mine:
        return timeline
    lanes = list(timeline.environments)
    lanes += sorted({i.environment for i in mine} - set(lanes))
    out: list[Segment] = []
    for env in lanes:
        applied = sorted((i for i in mine if i.environment == env), key=lambda i: i.start_ms)
        git = list(timeline.lane(env))
        if not applied:
            out.extend(git)
            continue
        since = _when(applied[0].start_ms) - SKEW
        used: set[int] = set()
        for interval in applied:
            start = _when(interval.start_ms)
            match = _assignment(git, interval.version, start)
            if match is not None:
                used.add(match)
            source = git[match] if match is not None else None
            out.append(Segment(
                env, interval.version, start,
                _when(interval.end_ms) if interval.end_ms is not None else None,
                source.commit if source else interval.commit,
                source.author if source else "", source.subject if source else "",
                applied_at=start, recorded=True))
        for n, segment in enumerate(git):
            if n in used:
                continue
            if segment.start < since:
                out.append(segment)  # before the ledger: as git and the apply records say
            else:
                out.append(replace(segment, pending=True, applied_at=None))
    return replace(timeline, environments=tuple(lanes),
                   segments=tuple(sorted(out, key=lambda s: (lanes.index(s.environment),
                                                             s.start))))


def _assignment(git: Sequence[Segment], version: int, applied: datetime) -> int | None:
    """The git assignment an applied interval carried out: the last one of that version
    merged by then (clock skew allowed), else the first one of it."""
    same = [n for n, s in enumerate(git) if s.version == version]
    started = [n for n in same if git[n].start <= applied + SKEW]
    if started:
        return started[-1]
    return same[0] if same else None
