"""The ledger in a real MLflow server: records are runs that plain MlflowClient.search_runs
reads, the chain survives the round trip, and deleted or edited runs are named."""

from __future__ import annotations

import json
import sqlite3
import time

from mlflow_gitops.adapters.mlflow.ledger import HEAD_TAG, MlflowLedger
from mlflow_gitops.adapters.mlflow.registry import MlflowRegistry
from mlflow_gitops.core.ledger import Entry, Query
from mlflow_gitops.core.tags import applied_tag
from mlflow_gitops.loop.ledger import Ledger
from mlflow_gitops.planning.ledger import verify
from mlflow_gitops.planning.ledger_gaps import applied_changes, find_gaps

from tests.support.registry_helpers import make_model

T0 = 1_700_000_000_000


def entries(n: int, env: str = "production") -> list[Entry]:
    return [Entry("default", env, "fraud", "set_alias", i + 1, i or None, i + 1,
                  f"{i:040x}", "Alice <alice@example.com>", T0 + i * 60_000, "merge",
                  version_created_ms=T0 - 3_600_000) for i in range(n)]


def ledger(server_uri: str, unique: str) -> MlflowLedger:
    return MlflowLedger(MlflowRegistry(server_uri), f"ledger-{unique}")


def test_records_round_trip_and_plain_search_runs_reads_them(mlflow_server, mlflow_client,
                                                              unique, monkeypatch) -> None:
    """Five records written through the controller's writer verify intact, filter by
    environment and time on the server, page on after a small newest-first first page, and
    read with plain search_runs as tags."""
    monkeypatch.setattr("mlflow_gitops.adapters.mlflow.ledger.FIRST_PAGE", 2)
    store = ledger(mlflow_server.uri, unique)
    writer = Ledger({"default": store}, "replica-a")
    writer.record(entries(3))
    writer.record(entries(5)[3:] + entries(1, env="staging"))
    assert writer.state.pending == 0 and writer.state.written == 6
    records = store.read()
    assert [r.seq for r in records] == [1, 6, 2, 3, 4, 5]  # by time, then number
    assert verify(records, store.stored_head()) == []
    prod = store.read(Query(environment="production", since_ms=T0 + 60_000,
                            until_ms=T0 + 180_000))
    assert [r.entry.to_version for r in prod] == [2, 3, 4]
    assert store.read(Query(environment="production", newest_first=True, limit=1)
                      )[0].entry.to_version == 5
    assert [r.entry.to_version for r in store.read(Query(
        environment="production", newest_first=True))] == [5, 4, 3, 2, 1]

    experiment = mlflow_client.get_experiment_by_name(f"ledger-{unique}")
    runs = mlflow_client.search_runs([experiment.experiment_id],
                                     "tags.environment = 'production' and tags.name = 'fraud'",
                                     order_by=["attributes.start_time ASC"])
    assert [r.data.tags["to_version"] for r in runs] == ["1", "2", "3", "4", "5"]
    assert runs[0].data.tags["merged_by"] == "Alice <alice@example.com>"
    assert runs[0].data.tags["reason"] == "merge" and runs[0].info.status == "FINISHED"
    assert runs[0].info.start_time == T0
    assert experiment.tags[HEAD_TAG].startswith("6 ")


def test_a_deleted_run_is_named(mlflow_server, mlflow_client, unique) -> None:
    """Deleting the run of record #2 (MLflow's delete) makes verify name #2 as deleted."""
    store = ledger(mlflow_server.uri, unique)
    Ledger({"default": store}, "w").record(entries(4))
    second = next(r for r in store.read() if r.seq == 2)
    mlflow_client.delete_run(second.ref)
    problems = verify(store.read(), store.stored_head())
    assert (problems[0].seq, problems[0].kind) == (2, "deleted")


def test_a_deleted_last_run_is_named(mlflow_server, mlflow_client, unique) -> None:
    """Deleting the newest run is caught through the experiment's head tag."""
    store = ledger(mlflow_server.uri, unique)
    Ledger({"default": store}, "w").record(entries(3))
    mlflow_client.delete_run(next(r for r in store.read() if r.seq == 3).ref)
    problems = verify(store.read(), store.stored_head())
    assert [(p.seq, p.kind) for p in problems] == [(3, "deleted")]
    assert store.head().seq == 3  # the next record never reuses a deleted number


def test_an_edited_run_is_named(mlflow_server, mlflow_client, unique) -> None:
    """Changing a record's tag through the API, or its time in the database, is an edit."""
    store = ledger(mlflow_server.uri, unique)
    Ledger({"default": store}, "w").record(entries(4))
    by_seq = {r.seq: r for r in store.read()}
    mlflow_client.set_tag(by_seq[3].ref, "to_version", "1")
    problems = verify(store.read(), store.stored_head())
    assert [(p.seq, p.kind) for p in problems] == [(3, "edited")]
    with sqlite3.connect(mlflow_server.root / "mlflow.db") as db:
        db.execute("UPDATE runs SET start_time = start_time - 1 WHERE run_uuid = ?",
                   (by_seq[2].ref,))
    problems = verify(store.read(), store.stored_head())
    assert [(p.seq, p.kind) for p in problems] == [(2, "edited"), (3, "edited")]


def test_an_unreachable_ledger_keeps_entries_and_writes_them_later(mlflow_server, unique
                                                                    ) -> None:
    """A ledger whose server is down queues the entries (pending, error shown); once it
    answers, the next flush writes them in order and the chain is intact."""
    down = MlflowLedger(MlflowRegistry("http://127.0.0.1:9"), f"ledger-{unique}")
    writer = Ledger({"default": down}, "w")
    writer.record(entries(2))
    assert writer.state.pending == 2 and writer.state.errors["default"]
    writer.stores["default"] = ledger(mlflow_server.uri, unique)
    writer.flush()
    assert writer.state.pending == 0 and "default" not in writer.state.errors
    store = ledger(mlflow_server.uri, unique)
    assert [r.entry.to_version for r in store.read()] == [1, 2]
    assert verify(store.read(), store.stored_head()) == []


def test_an_applied_change_without_a_record_is_a_gap(mlflow_server, mlflow_client, unique
                                                    ) -> None:
    """Apply records in the real registry are matched to ledger records: one the ledger
    holds is covered, one written after the ledger's last record with no record of its own
    (a process that died with records queued) is named, one older than the ledger is only
    counted."""
    model = f"gap-{unique}"
    make_model(mlflow_client, model, 3)
    store = ledger(mlflow_server.uri, unique)
    now = int(time.time() * 1000)
    recorded = Entry("default", "production", model, "set_alias", 1, None, 1, "a" * 40,
                     "Alice", now + 60_000, "merge")
    Ledger({"default": store}, "w").record([recorded])
    for version, commit, at_ms in ((1, "a" * 40, now + 60_000), (2, "b" * 40, now + 120_000),
                                   (3, "c" * 40, now + 1_000)):
        mlflow_client.set_model_version_tag(model, str(version), applied_tag("production"),
                                            json.dumps({"commit": commit, "at": at_ms / 1000}))
    snapshot = MlflowRegistry(mlflow_server.uri).snapshot([model])
    applied = applied_changes(snapshot, ["production", "staging"])
    assert [(a.version, a.commit[0]) for a in applied] == [(3, "c"), (1, "a"), (2, "b")]
    gaps = find_gaps(applied, store.read())
    assert [(g.version, g.commit) for g in gaps.missing] == [(2, "b" * 40)]
    assert (gaps.checked, gaps.before_ledger) == (2, 1)
    assert gaps.messages()[0].startswith(f"gap: {model} v2 applied to production at ")
    assert gaps.messages()[0].endswith(f"by commit {'b' * 12} has no ledger record")
