"""The ledger's hash chain and its replay, pure.

Each record's hash is the sha256 of its canonical JSON (sorted keys, no spaces, ints and
strings only), which includes the previous record's hash and its own sequence number. So:
- a deleted record leaves a hole in the sequence numbers (or, at the end, a head that is
  further than the last record found);
- an edited record no longer matches its own hash (or, when the editor recomputed that
  hash, no longer matches the `prev_hash` the next record carries);
- a reordered record (two sequence numbers swapped) breaks both links;
- two writers that appended onto the same head (two replicas around a failover) leave two
  records with one sequence number: a fork, reported with both writers, never merged away.

Replay answers what was live when, from the controller's clock of each record, never from a
commit's dates (which a pull request author controls)."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from mlflow_gitops.core.ledger import DETAIL_LIMIT, Entry, Head, Record


def canonical(entry: Entry, seq: int, prev_hash: str, writer: str) -> str:
    """The exact text a record's hash is taken over."""
    body = asdict(entry)
    body["detail"] = body["detail"][:DETAIL_LIMIT]
    body.update(seq=seq, prev_hash=prev_hash, writer=writer)
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(entry: Entry, seq: int, prev_hash: str, writer: str) -> str:
    return hashlib.sha256(canonical(entry, seq, prev_hash, writer).encode()).hexdigest()


def chain(head: Head, entries: Iterable[Entry], writer: str) -> list[Record]:
    """`entries` as the records that follow `head`, each linked to the one before."""
    out: list[Record] = []
    seq, prev = head.seq, head.hash
    for entry in entries:
        if len(entry.detail) > DETAIL_LIMIT:
            entry = _short(entry)
        seq += 1
        this = digest(entry, seq, prev, writer)
        out.append(Record(entry, seq, prev, this, writer))
        prev = this
    return out


def _short(entry: Entry) -> Entry:
    from dataclasses import replace

    return replace(entry, detail=entry.detail[:DETAIL_LIMIT])


@dataclass(frozen=True)
class Problem:
    """One break in the chain, at the first sequence number it concerns."""

    seq: int
    kind: str  # deleted, edited, forked, reordered
    message: str


def verify(records: Sequence[Record], head: Head | None = None) -> list[Problem]:
    """Every break in the chain, in sequence order (empty: intact). `head` is what the store
    says was appended last; records missing after the last one found are deleted ones."""
    by_seq: dict[int, list[Record]] = defaultdict(list)
    for record in records:
        by_seq[record.seq].append(record)
    problems: list[Problem] = []
    last = max(by_seq, default=0)
    expected_end = max(last, head.seq if head is not None else 0)
    previous: Record | None = None
    missing_from: int | None = None
    for seq in range(1, expected_end + 1):
        found = by_seq.get(seq, [])
        if not found:
            missing_from = seq if missing_from is None else missing_from
            previous = None
            continue
        if missing_from is not None:
            problems.append(_deleted(missing_from, seq - 1))
            missing_from = None
        if len(found) > 1:
            problems.append(_forked(seq, found))
        record = min(found, key=lambda r: r.hash)
        problems.extend(_check_one(record, previous, seq))
        previous = record
    if missing_from is not None:
        problems.append(_deleted(missing_from, expected_end, at_end=True))
    if head is not None and head.seq and head.seq <= last and head.seq in by_seq and \
            head.hash not in {r.hash for r in by_seq[head.seq]}:
        problems.append(Problem(head.seq, "edited", f"record #{head.seq} is not the record "
                                "the ledger's head points to: it was replaced"))
    problems.sort(key=lambda p: p.seq)
    return problems


def _check_one(record: Record, previous: Record | None, seq: int) -> list[Problem]:
    out = []
    if digest(record.entry, record.seq, record.prev_hash, record.writer) != record.hash:
        out.append(Problem(seq, "edited", f"record #{seq}{_ref(record)} was edited: its "
                           f"content no longer matches its hash ({_what(record)})"))
    elif previous is not None and record.prev_hash != previous.hash:
        if previous.prev_hash == record.hash or record.prev_hash == "":
            kind, text = "reordered", "records were reordered"
        else:
            kind, text = "edited", f"record #{seq - 1} was edited or replaced"
        out.append(Problem(seq - 1, kind, f"{text}: record #{seq}{_ref(record)} does not "
                           f"follow record #{seq - 1}{_ref(previous)}"))
    elif seq == 1 and record.prev_hash != "":
        out.append(Problem(1, "deleted", "records before #1 were deleted and the rest "
                           "renumbered: record #1 points to an earlier record"))
    return out


def _deleted(first: int, last: int, at_end: bool = False) -> Problem:
    span = f"record #{first}" if first == last else f"records #{first}–#{last}"
    where = " at the end of the ledger" if at_end else ""
    verb = "is" if first == last else "are"
    return Problem(first, "deleted", f"{span} {verb} missing{where}: deleted")


def _forked(seq: int, found: Sequence[Record]) -> Problem:
    writers = ", ".join(sorted({f"{r.writer or '?'}{_ref(r)}" for r in found}))
    return Problem(seq, "forked", f"the chain forked at #{seq}: {len(found)} records by "
                   f"{writers} were appended onto the same record (two writers at once)")


def _ref(record: Record) -> str:
    return f" (run {record.ref})" if record.ref else ""


def _what(record: Record) -> str:
    e = record.entry
    return f"{e.environment} {e.name} v{e.version} {e.action}"


# --- replay ----------------------------------------------------------------------------------


def ordered(records: Iterable[Record]) -> list[Record]:
    """In the order the changes happened: the controller's clock, then sequence."""
    return sorted(records, key=lambda r: (r.entry.at_ms, r.seq))


def live_at(records: Iterable[Record], environment: str, name: str, at_ms: int
            ) -> tuple[int, ...]:
    """The versions of `name` that `environment` served at `at_ms` (usually one; none when
    nothing was live), replaying the records up to that instant."""
    live: set[int] = set()
    for record in ordered(records):
        e = record.entry
        if e.at_ms > at_ms:
            break
        if e.environment == environment and e.name == name:
            _apply(live, e)
    return tuple(sorted(live))


def _apply(live: set[int], e: Entry) -> None:
    if e.entering:
        if e.from_version is not None and e.from_version != e.to_version:
            live.discard(e.from_version)
        if e.to_version is not None:
            live.add(e.to_version)
    elif e.leaving:
        live.discard(e.version)


@dataclass(frozen=True)
class Interval:
    """A version live in an environment from `start_ms` until `end_ms` (None: still)."""

    environment: str
    name: str
    version: int
    start_ms: int
    end_ms: int | None
    commit: str


def intervals(records: Iterable[Record]) -> list[Interval]:
    """Every stretch a version served an environment, by (environment, name, start)."""
    open_: dict[tuple[str, str, int], tuple[int, str]] = {}
    out: list[Interval] = []
    for record in ordered(records):
        e = record.entry
        if not (e.entering or e.leaving):
            continue
        before: set[int] = {v for (env, n, v) in open_ if env == e.environment and n == e.name}
        after = set(before)
        _apply(after, e)
        for v in before - after:
            start, commit = open_.pop((e.environment, e.name, v))
            out.append(Interval(e.environment, e.name, v, start, e.at_ms, commit))
        for v in after - before:
            open_[(e.environment, e.name, v)] = (e.at_ms, e.commit)
    out.extend(Interval(env, n, v, start, None, commit)
               for (env, n, v), (start, commit) in open_.items())
    return sorted(out, key=lambda i: (i.environment, i.name, i.start_ms, i.version))
