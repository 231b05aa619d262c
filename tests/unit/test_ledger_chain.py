"""The ledger's hash chain and replay (mlflow_gitops.planning.ledger): intact chains verify,
each kind of tampering is named at its first record, and replay answers what was live when."""

from __future__ import annotations

from dataclasses import replace

from mlflow_gitops.core.ledger import Entry, Head, Record
from mlflow_gitops.planning.ledger import chain, intervals, live_at, verify

T0 = 1_700_000_000_000


def entry(i: int, action: str = "set_alias", frm: int | None = None, to: int | None = None,
          env: str = "production", name: str = "m", reason: str = "merge") -> Entry:
    version = to if to is not None else (frm or 1)
    return Entry("default", env, name, action, version, frm, to,  # type: ignore[arg-type]
                 f"c{i}", "Alice <a@example.com>", T0 + i * 1000, reason)  # type: ignore[arg-type]


def records(n: int = 5) -> list:  # type: ignore[type-arg]
    return chain(Head(), [entry(i, frm=i or None, to=i + 1) for i in range(n)], "replica-a")


def test_an_intact_chain_verifies_and_continues_from_its_head() -> None:
    """Records chained in two batches (the second from the first's head) verify clean."""
    first = records(3)
    more = chain(Head(first[-1].seq, first[-1].hash), [entry(9, frm=3, to=4)], "replica-b")
    assert [r.seq for r in first + more] == [1, 2, 3, 4]
    assert more[0].prev_hash == first[-1].hash
    assert verify(first + more, Head(4, more[0].hash)) == []


def test_a_deleted_record_is_named() -> None:
    """Removing record #3 of 5 reports #3 as deleted, and nothing before it."""
    rs = records()
    problems = verify(rs[:2] + rs[3:])
    assert problems[0].seq == 3 and problems[0].kind == "deleted"
    assert "#3" in problems[0].message


def test_a_deleted_last_record_is_named_through_the_head() -> None:
    """Removing the newest record is seen only against the stored head: #5 is missing."""
    rs = records()
    assert verify(rs[:4]) == []
    problems = verify(rs[:4], Head(5, rs[4].hash))
    assert [(p.seq, p.kind) for p in problems] == [(5, "deleted")]


def test_an_edited_record_is_named() -> None:
    """Changing a field of record #2 (its version) breaks its own hash: #2 is edited."""
    rs = records()
    rs[1] = replace(rs[1], entry=replace(rs[1].entry, to_version=99))
    problems = verify(rs)
    assert [(p.seq, p.kind) for p in problems] == [(2, "edited")]


def test_an_edit_with_a_recomputed_hash_is_named_by_the_next_record() -> None:
    """An editor who also recomputes record #2's hash is caught by #3's link to it."""
    rs = records()
    forged = chain(Head(1, rs[0].hash), [replace(rs[1].entry, to_version=99)], "replica-a")[0]
    rs[1] = forged
    problems = verify(rs)
    assert problems[0].seq == 2 and problems[0].kind == "edited"


def test_reordered_records_are_detected() -> None:
    """Swapping the times of two records is an edit of both; swapping their numbers too."""
    rs = records()
    a, b = rs[1], rs[2]
    rs[1] = replace(a, entry=replace(a.entry, at_ms=b.entry.at_ms))
    rs[2] = replace(b, entry=replace(b.entry, at_ms=a.entry.at_ms))
    assert verify(rs)[0].seq == 2
    rs = records()
    rs[1], rs[2] = replace(rs[2], seq=2), replace(rs[1], seq=3)
    assert verify(rs)[0].seq == 2


def test_two_writers_on_one_head_are_a_fork_naming_both() -> None:
    """Two replicas appending onto the same record leave two #4s: a fork, both named."""
    rs = records(3)
    head = Head(3, rs[-1].hash)
    a = chain(head, [entry(10, frm=3, to=4)], "replica-a")
    b = chain(head, [entry(11, frm=3, to=5)], "replica-b")
    problems = verify(rs + a + b)
    assert [(p.seq, p.kind) for p in problems] == [(4, "forked")]
    assert "replica-a" in problems[0].message and "replica-b" in problems[0].message


def test_first_records_deleted_and_renumbered_is_detected() -> None:
    """Dropping #1 and renumbering the rest from 1 cannot hide: the new #1 still links."""
    rs = records()
    assert verify(rs[1:])[0].seq == 1


def test_replay_answers_by_applied_time_with_stage_semantics() -> None:
    """Promote v1, then v2 (from v1), then archive v1 and unset: live is v1, v2, v2, none."""
    es = [entry(0, "promote", None, 1), entry(10, "promote", 1, 2),
          entry(11, "archive", 1, None), entry(20, "delete_alias", 2, None)]
    rs = chain(Head(), es, "w")
    assert live_at(rs, "production", "m", T0 - 1) == ()
    assert live_at(rs, "production", "m", T0 + 5_000) == (1,)
    assert live_at(rs, "production", "m", T0 + 10_000) == (2,)
    assert live_at(rs, "production", "m", T0 + 15_000) == (2,)
    assert live_at(rs, "production", "m", T0 + 20_000) == ()
    assert live_at(rs, "staging", "m", T0 + 15_000) == ()
    spans = [(i.version, i.start_ms - T0, None if i.end_ms is None else i.end_ms - T0)
             for i in intervals(rs)]
    assert spans == [(1, 0, 10_000), (2, 10_000, 20_000)]


def test_an_apply_record_matches_only_its_own_ledger_record() -> None:
    """A ledger record matches an apply record only with the same environment, model,
    version and commit, dated from a second before to ten minutes after it."""
    from mlflow_gitops.planning.ledger_gaps import AppliedChange, find_gaps

    def applied(version: int, commit: str, at_ms: int) -> AppliedChange:
        return AppliedChange("default", "production", "fraud", version, commit, at_ms)

    def record(version: int, commit: str, at_ms: int, seq: int) -> Record:
        entry = Entry("default", "production", "fraud", "set_alias", version, None, version,
                      commit, "", at_ms, "merge")
        return Record(entry, seq, "", "")

    records = [record(1, "a", 10_000, 1), record(2, "b", 20_000, 2)]
    gaps = find_gaps([applied(1, "a", 10_500), applied(2, "a", 20_000),
                      applied(2, "b", 20_000 - 601_000), applied(2, "b", 21_500)], records)
    assert [(g.version, g.commit, g.at_ms) for g in gaps.missing] == [(2, "a", 20_000),
                                                                      (2, "b", 21_500)]
    assert (gaps.checked, gaps.before_ledger) == (3, 1)
    assert find_gaps([applied(1, "a", 1)], []).before_ledger == 1
