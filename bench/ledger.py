"""Measurement 10: what the ledger costs. (a) Registry calls per applied change, ledger and
change side by side, counted by the CountingProxy in front of a real MLflow server while
`reconcile` applies alias moves with the ledger on (one change per pass, then a batch in one
pass). (b) Read time of `report --since 30d` and `history --at` over a large ledger: records
chained by the real code (planning.ledger.chain, so `audit verify` reads them intact) and
written straight into the server's SQLite database as the rows MlflowLedger's create_run /
update_run make (one run + its tags per record), at one record per 86.4 s (1,000 changes a
day) ending now. Baseline for the reads, in the same run: plain `MlflowClient.search_runs`
paging through the same filter (what a user without this tool runs)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mlflow_gitops.adapters.mlflow.ledger import HEAD_TAG, MlflowLedger, run_name, run_tags
from mlflow_gitops.adapters.mlflow.registry import MlflowRegistry
from mlflow_gitops.core.ledger import Entry, Head
from mlflow_gitops.desired.loader import load_texts
from mlflow_gitops.loop.ledger import Ledger
from mlflow_gitops.loop.reconciler import reconcile
from mlflow_gitops.planning.ledger import chain

from bench.stats import median
from tests.support.bulk_seed import add_models
from tests.support.counting_proxy import CountingProxy
from tests.support.servers import MlflowServer

MARK_START = "<!-- ledger: written by `python -m bench` (10.) -->"
MARK_END = "<!-- end of ledger -->"
EXPERIMENT = "mlflow-gitops-ledger"
DAY_MS = 86_400_000
ENVIRONMENTS = ("staging", "production")
MODELS = 50  # the large ledger's records spread over this many models
NOTE = ("**Aim and result:** reads of a year of 1,000 changes a day should stay under a few "
        "seconds. That holds for `history --at`. It does not hold for `report --since 30d` "
        "(about 25 s: it must read the 30,000 records of its window, and MLflow answers at "
        "about 1 ms per run, about as fast as plain `search_runs`), nor for `audit verify`, "
        "which is linear in the ledger (31 s at 36,500 records, so about 5 min at 365,000 by "
        "extrapolation; not timed at that size).")
VERIFY_UP_TO = 40_000  # `audit verify` reads every record: timed up to this size only


@dataclass
class Writes:
    changes: int
    passes: int
    ledger_writes: int
    ledger_reads: int
    change_writes: int
    change_reads: int


@dataclass
class Reads:
    records: int
    per_day: int
    seed_seconds: float
    report_inproc: list[float] = field(default_factory=list)
    report_cli: list[float] = field(default_factory=list)
    report_records: int = 0
    plain_30d: list[float] = field(default_factory=list)
    history_inproc: list[float] = field(default_factory=list)
    history_cli: list[float] = field(default_factory=list)
    plain_history: list[float] = field(default_factory=list)
    verify_seconds: float | None = None
    verify_intact: bool | None = None


@dataclass
class LedgerCost:
    writes: list[Writes] = field(default_factory=list)
    reads: list[Reads] = field(default_factory=list)
    date: str = ""
    command: str = ""
    seconds: float = 0.0


def _env(alias: str, models: dict[str, int]) -> str:
    body = "".join(f"  {m}: {v}\n" for m, v in sorted(models.items()))
    return (f"apiVersion: mlflow-gitops/v1\nkind: Environment\n"
            f"target:\n  alias: {alias}\nmodels:\n{body}")


def _split(counts: dict[tuple[str, str], int]) -> tuple[int, int, int, int]:
    """(ledger writes, ledger reads, change writes, change reads)."""
    lw = lr = cw = cr = 0
    for (method, path), n in counts.items():
        ledger = "/runs/" in path or "/experiments/" in path
        write = method != "GET" and not path.endswith("/search") and "get-by-name" not in path
        if ledger:
            lw, lr = (lw + n, lr) if write else (lw, lr + n)
        else:
            cw, cr = (cw + n, cr) if write else (cw, cr + n)
    return lw, lr, cw, cr


def writes(folder: Path, say: Callable[[str], None], batch: int = 20, singles: int = 5
           ) -> list[Writes]:
    """Alias moves applied by `reconcile` with the ledger on, counted per call."""
    names = [f"ledger-bench-{i:03d}" for i in range(batch)]
    out = []
    with MlflowServer(folder / "writes") as server:
        add_models(server.root / "mlflow.db", names, versions=singles + 2)
        proxy = CountingProxy(server.uri).start()
        try:
            registry = MlflowRegistry(proxy.uri)
            ledger = Ledger({"default": MlflowLedger(registry, EXPERIMENT)}, "bench")
            registries = {"default": registry}

            def apply(models: dict[str, int], commit: str) -> None:
                state, problems = load_texts({"environments/production.yaml": _env(
                    "champion", models)}, commit=commit)
                assert state is not None, problems
                reconcile(state, registries, ledger=ledger, merged_by="bench")

            apply({n: 1 for n in names}, "0" * 40)  # the starting state; not counted
            say(f"10a. {singles} passes of one alias move each, then one pass of {batch}")
            proxy.counts.clear()
            for i in range(singles):
                apply({**{n: 1 for n in names}, names[0]: i + 2}, f"{i + 1:040x}")
            out.append(Writes(singles, singles, *_split(dict(proxy.counts))))
            proxy.counts.clear()
            apply({n: 2 for n in names}, "f" * 40)
            out.append(Writes(batch, 1, *_split(dict(proxy.counts))))
            assert ledger.state.pending == 0, ledger.state.last_error
        finally:
            proxy.stop()
    return out


def _seed_records(database: Path, count: int, now_ms: int) -> float:
    """`count` chained records, one per 86.4 s ending at `now_ms`, as runs in the
    database's ledger experiment (created by the server beforehand). Seconds taken."""
    started = time.monotonic()
    step = DAY_MS // 1000
    entries = []
    served: dict[tuple[str, str], int] = {}
    for i in range(count):
        env, model = ENVIRONMENTS[i % 2], f"model-{(i // 2) % MODELS:03d}"
        before = served.get((env, model))
        version = (before or 0) + 1
        served[(env, model)] = version
        at = now_ms - (count - 1 - i) * step
        reason = "rollback" if i % 97 == 0 and before else "merge"
        entries.append(Entry("default", env, model, "set_alias", version, before, version,
                             f"{i:040x}", "Bench <bench@example.com>", at, reason,
                             version_created_ms=at - 3_600_000))
    records = chain(Head(), entries, "bench")
    with sqlite3.connect(database) as db:
        exp = db.execute("SELECT experiment_id, artifact_location FROM experiments WHERE name"
                         " = ?", (EXPERIMENT,)).fetchone()
        runs, tags = [], []
        for r in records:
            run_id = uuid.uuid4().hex
            name = run_name(r)
            runs.append((run_id, name, "UNKNOWN", "", "", "bench", "FINISHED", r.at_ms,
                         r.at_ms, "", "active", f"{exp[1]}/{run_id}/artifacts", exp[0]))
            tags.extend((k, v, run_id) for k, v in {**run_tags(r),
                                                    "mlflow.runName": name}.items())
        db.executemany("INSERT INTO runs (run_uuid, name, source_type, source_name, "
                       "entry_point_name, user_id, status, start_time, end_time, "
                       "source_version, lifecycle_stage, artifact_uri, experiment_id) VALUES "
                       "(?,?,?,?,?,?,?,?,?,?,?,?,?)", runs)
        db.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", tags)
        last = records[-1]
        db.execute("INSERT OR REPLACE INTO experiment_tags (key, value, experiment_id) VALUES "
                   "(?,?,?)", (HEAD_TAG, f"{last.seq} {last.hash}", exp[0]))
    return time.monotonic() - started


def _timed(fn: Callable[[], object], repeats: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return times, result


def reads(folder: Path, count: int, say: Callable[[str], None], repeats: int = 3,
          verify: bool = True) -> Reads:
    """The large ledger: seed `count` records, then time the reads."""
    from mlflow import MlflowClient
    from mlflow_gitops.cli.ledger import _until_entered
    from mlflow_gitops.core.ledger import Query
    from mlflow_gitops.planning.delivery import report
    from mlflow_gitops.planning.ledger import live_at
    from mlflow_gitops.planning.ledger import verify as check

    root = folder / f"reads-{count}"
    with MlflowServer(root) as server:
        client = MlflowClient(server.uri)
        client.create_experiment(EXPERIMENT)
    say(f"10b. seeding {count:,} chained ledger records into {root / 'mlflow.db'}")
    now_ms = int(time.time() * 1000)
    out = Reads(count, 1000, _seed_records(root / "mlflow.db", count, now_ms))
    say(f"seeded in {out.seed_seconds:.0f}s")
    config = root / "controller.yaml"
    with MlflowServer(root) as server:
        config.write_text(f"registries:\n  default:\n    tracking_uri: {server.uri}\n")
        store = MlflowLedger(MlflowRegistry(server.uri), EXPERIMENT)
        client = MlflowClient(server.uri)
        exp_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
        since = now_ms - 30 * DAY_MS
        middle = now_ms - count * 86_400 // 2

        def ours_30d() -> int:
            entries = [r.entry for r in store.iter(Query(since_ms=since))]
            report(entries, since, now_ms)
            return len(entries)

        def plain(filter_string: str, order: list[str], stop_at_first: bool = False) -> int:
            n, token = 0, None
            while True:
                page = client.search_runs([exp_id], filter_string, max_results=5000,
                                          order_by=order, page_token=token)
                n += len(page)
                token = page.token
                if stop_at_first or not token:
                    return n

        def ours_at() -> object:
            found = _until_entered(store, "production", "model-007", middle)
            return live_at(found, "production", "model-007", middle)

        out.report_inproc, got = _timed(ours_30d, repeats)
        out.report_records = int(got)  # type: ignore[call-overload]
        out.plain_30d, _ = _timed(lambda: plain(f"attributes.start_time >= {since}",
                                                ["attributes.start_time ASC"]), repeats)
        out.history_inproc, _ = _timed(ours_at, repeats)
        out.plain_history, _ = _timed(lambda: plain(
            f"tags.environment = 'production' and tags.name = 'model-007' and "
            f"attributes.start_time <= {middle}", ["attributes.start_time DESC"], True),
            repeats)
        command = str(Path(sys.executable).parent / "mlflow-gitops")
        env = {**os.environ, "MLFLOW_TRACKING_URI": server.uri}
        at_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(middle / 1000))
        for argv, into in ((["report", "--since", "30d", "-o", "json"], out.report_cli),
                           (["history", "model-007", "--env", "production", "--at", at_iso],
                            out.history_cli)):
            for _ in range(repeats):
                started = time.perf_counter()
                subprocess.run([command, *argv, "--config", str(config)], env=env, cwd=root,
                               check=True, capture_output=True)
                into.append(time.perf_counter() - started)
        if verify:
            say(f"10b. audit verify over {count:,} records (every record read and hashed)")
            started = time.perf_counter()
            out.verify_intact = not check(store.read(), store.stored_head())
            out.verify_seconds = time.perf_counter() - started
    return out


def measure(workdir: Path, sizes: tuple[int, ...], say: Callable[[str], None]) -> LedgerCost:
    out = LedgerCost(date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    started = time.monotonic()
    folder = workdir / "ledger"
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    out.writes = writes(folder, say)
    for count in sizes:
        out.reads.append(reads(folder, count, say, verify=count <= VERIFY_UP_TO))
        shutil.rmtree(folder / f"reads-{count}", ignore_errors=True)
    out.seconds = time.monotonic() - started
    return out


# -- BENCHMARKS.md ---------------------------------------------------------------------------

def _s(values: list[float] | float | None) -> str:
    if values is None or values == []:
        return "–"
    seconds = median(values) if isinstance(values, list) else values
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _ratio(ours: list[float], base: list[float]) -> str:
    return f"{median(ours) / median(base):.2f}" if ours and base else "–"


def section(c: LedgerCost) -> str:
    lines = [MARK_START, "## The ledger's cost", "",
             f"- **Date:** {c.date}; `{c.command}` ({c.seconds / 60:.1f} min) on "
             f"{os.cpu_count()} cores", "",
             "Registry calls while `reconcile` applies alias moves with the ledger on "
             "(CountingProxy; ledger = `/runs/*` and `/experiments/*`):", "",
             "| applied changes | passes | ledger writes (per change) | ledger reads | "
             "the changes' own writes (per change) | ledger writes / change writes |",
             "|---|---|---|---|---|---|"]
    for w in c.writes:
        lines.append(f"| {w.changes} | {w.passes} | {w.ledger_writes} "
                     f"({w.ledger_writes / w.changes:.2f}) | {w.ledger_reads} | "
                     f"{w.change_writes} ({w.change_writes / w.changes:.2f}) | "
                     f"{w.ledger_writes / max(w.change_writes, 1):.2f} |")
    lines += ["", "Reads over a large ledger (records at 1,000 a day, ending now; median of "
              "3; baseline: plain `MlflowClient.search_runs` paging through the same filter "
              "in the same run):", "",
              "| records (days) | seeding | `report --since 30d`: in-process / command "
              "(records read) | plain search_runs, 30 days | ratio | `history --at` "
              "(mid-ledger): in-process / command | plain search_runs, first page | ratio | "
              "`audit verify` (all records) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in c.reads:
        verify = "–" if r.verify_seconds is None else \
            f"{_s(r.verify_seconds)} ({'intact' if r.verify_intact else 'BROKEN'})"
        lines.append(
            f"| {r.records:,} ({r.records / r.per_day:.0f}) | {_s(r.seed_seconds)} | "
            f"{_s(r.report_inproc)} / {_s(r.report_cli)} ({r.report_records:,}) | "
            f"{_s(r.plain_30d)} | {_ratio(r.report_inproc, r.plain_30d)} | "
            f"{_s(r.history_inproc)} / {_s(r.history_cli)} | {_s(r.plain_history)} | "
            f"{_ratio(r.history_inproc, r.plain_history)} | {verify} |")
    lines += ["", "Records are chained by the product's own code and written straight into "
              "the server's SQLite database as the rows `create_run` + `update_run` make "
              "(one run and its tags per record); the server then answers every read. "
              "Command times include starting the `mlflow-gitops` process.", "", NOTE,
              MARK_END]
    return "\n".join(lines)


def write_section(path: Path, c: LedgerCost) -> None:
    """Put this measurement's section into BENCHMARKS.md, replacing an earlier one."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = section(c)
    if MARK_START in text and MARK_END in text:
        head, rest = text.split(MARK_START, 1)
        text = head + block + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
