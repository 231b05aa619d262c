"""`python -m bench` (what `make bench` runs): start a real MLflow server on a seeded SQLite
database (reused when its parameters match), measure, print the table, write BENCHMARKS.md."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.support (server, proxy, git helpers) lives beside us

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
warnings.simplefilter("ignore", FutureWarning)
logging.getLogger("mlflow").setLevel(logging.WARNING)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--models", type=int, default=1000)
    p.add_argument("--versions", type=int, default=5, help="versions per model")
    p.add_argument("--repeats", type=int, default=5, help="runs per figure of ours")
    p.add_argument("--changed-repeats", type=int, default=3,
                   help="runs of the reconcile after the commit (each restores the state)")
    p.add_argument("--baseline-repeats", type=int, default=3,
                   help="runs of the per-model loop on the converged state")
    p.add_argument("--changed", type=int, default=10, help="models the commit changes")
    p.add_argument("--merges", type=int, default=20, help="webhook merges")
    p.add_argument("--polling-merges", type=int, default=5)
    p.add_argument("--interval", type=float, default=5.0, help="polling --interval")
    p.add_argument("--reconciles", type=int, default=50, help="passes before reading RSS")
    p.add_argument("--skip-scale", action="store_true",
                   help="skip 6 (the 5,000/20,000-model registries) and 7 (processes)")
    p.add_argument("--only", choices=["back-to-back", "prompts", "ledger"],
                   help="run only this measurement (8.: back-to-back merges; 9.: prompts in "
                        "a converged pass; 10.: the ledger's cost) and update its section of "
                        "the report")
    p.add_argument("--ledger-records", type=lambda t: tuple(int(x) for x in t.split(",")),
                   default=(36_500, 365_000),
                   help="10.: ledger sizes to seed and read, comma-separated (365,000 = a "
                        "year at 1,000 changes a day)")
    p.add_argument("--b2b-merges", type=int, default=20,
                   help="8.: back-to-back merges per size")
    p.add_argument("--b2b-sizes", type=lambda t: tuple(int(x) for x in t.split(",")),
                   default=(1000, 5000), help="8.: managed models, comma-separated")
    p.add_argument("--workdir", type=Path, default=ROOT / ".bench")
    p.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md",
                   help="where to write the report ('-' for none)")
    return p.parse_args(argv)


LOAD: list[float] = []  # the 1-minute load average, sampled at every step


def say(message: str) -> None:
    LOAD.append(os.getloadavg()[0])
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def back_to_back(args: argparse.Namespace) -> object:
    """Measurement 8 on its own registries; its section of the report is written apart."""
    from bench import backtoback

    figures = backtoback.measure(args.workdir, args.b2b_merges, say, args.b2b_sizes)
    figures.command = "python -m bench " + " ".join(sys.argv[1:]) if sys.argv[1:] \
        else "make bench"
    return figures


def write_back_to_back(args: argparse.Namespace, figures: object) -> None:
    from bench import backtoback

    assert isinstance(figures, backtoback.BackToBack)
    for t, m, ok in figures.targets():
        print(f"| {t} | {m} | {'met' if ok else 'MISSED'} |")
    if str(args.output) != "-":
        backtoback.write_section(args.output, figures)
        say(f"wrote section 8 of {args.output}")


def prompts(args: argparse.Namespace) -> None:
    """Measurement 9 on its own server; its section of the report is written apart."""
    from bench import prompts as measurement

    figures = measurement.measure(args.workdir, args.repeats, say)
    figures.command = "python -m bench " + " ".join(sys.argv[1:]) if sys.argv[1:] \
        else "make bench"
    for t, m, ok in figures.targets():
        print(f"| {t} | {m} | {'met' if ok else 'MISSED'} |")
    if str(args.output) != "-":
        measurement.write_section(args.output, figures)
        say(f"wrote section 9 of {args.output}")


def ledger_cost(args: argparse.Namespace) -> None:
    """Measurement 10 on its own servers; its section of the report is written apart."""
    from bench import ledger

    figures = ledger.measure(args.workdir, args.ledger_records, say)
    figures.command = "python -m bench " + " ".join(sys.argv[1:]) if sys.argv[1:] \
        else "make bench"
    section = ledger.section(figures)
    print(section)
    if str(args.output) != "-":
        ledger.write_section(args.output, figures)
        say(f"wrote section 10 of {args.output}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.only == "back-to-back":
        write_back_to_back(args, back_to_back(args))
        return 0
    if args.only == "prompts":
        prompts(args)
        return 0
    if args.only == "ledger":
        ledger_cost(args)
        return 0
    import mlflow
    from mlflow import MlflowClient
    from mlflow_gitops.adapters.mlflow.registry import MODEL_PAGE, VERSION_PAGE, MlflowRegistry
    from mlflow_gitops.adapters.mlflow.search import chunks

    from bench import baseline, breakdown, coldstart, cost, latency, process, report, scale, seed
    from bench.calls import ServerCalls, split
    from bench.fleet import Fleet
    from bench.runtime import RuntimeVenv
    from tests.support.counting_proxy import CountingProxy
    from tests.support.servers import MlflowServer

    started = time.monotonic()
    fleet = Fleet(args.models, args.versions)
    res = report.Results(fleet=fleet, mlflow_version=mlflow.__version__, argv=sys.argv[1:],
                         model_page=MODEL_PAGE, version_page=VERSION_PAGE,
                         changed_models=args.changed)
    folder = seed.database_dir(args.workdir, fleet)
    reuse = seed.reusable(folder, fleet, mlflow.__version__)
    if not reuse:
        seed.reset(folder)
    (folder / "server.log").unlink(missing_ok=True)  # counted from the start of this run
    runtime = RuntimeVenv(ROOT, args.workdir).start()  # overlaps with seeding
    if not reuse:
        say(f"seeding {fleet.models:,} models x {fleet.versions} versions into {folder} "
            f"({seed.PROCESSES} processes of MlflowClient calls on the SQLite database)")
        res.seed_seconds = seed.seed(folder / "mlflow.db", fleet)
        say(f"seeded in {res.seed_seconds:.0f}s")
    server = MlflowServer(folder)
    say(f"starting the MLflow server on {'the reused' if reuse else 'the new'} database")
    server.start()
    proxy = CountingProxy(server.uri).start()
    try:
        client = MlflowClient(server.uri, server.uri)
        direct = MlflowRegistry(server.uri)
        counted = MlflowRegistry(proxy.uri)  # cross-checks the server-side counts
        fixed = seed.repair(client, direct, fleet)
        if not reuse:
            seed.mark_complete(folder, fleet, mlflow.__version__, res.seed_seconds or 0.0)
        else:
            say(f"{fixed} call(s) to restore the seeded state")
        snap = direct.snapshot(fleet.names())
        res.registry_models = len(snap.models)
        res.registry_versions = sum(len(m.versions) for m in snap.models.values())

        base = fleet.desired(fleet.files(), commit="b" * 40)
        prod, champ = fleet.changed(args.changed)
        commit = fleet.desired(fleet.files(production=prod, champion=champ), commit="c" * 40)
        changed_names = sorted(prod)

        calls = ServerCalls(folder / "server.log")
        restore = lambda: seed.repair(client, direct, fleet, changed_names)  # noqa: E731

        say(f"1. converged reconcile x{args.repeats}")
        res.converged = cost.converged(direct, calls, base, args.repeats)
        res.proxy_converged = cost.proxy_check(counted, proxy, base, base)
        res.breakdown = breakdown.measure(server.uri, MODEL_PAGE, VERSION_PAGE, fleet.files(),
                                          args.repeats)

        say(f"2. reconcile after a commit changing {args.changed} models "
            f"x{args.changed_repeats}")
        res.changed = cost.changed(direct, calls, base, commit, args.changed_repeats, restore)
        res.proxy_changed = cost.proxy_check(counted, proxy, commit, base, restore)

        say(f"3. the per-model loop x{args.baseline_repeats}, then once on the commit")
        for _ in range(args.baseline_repeats):
            calls.mark()
            seconds, changes = baseline.per_model_loop(client, baseline.wanted_from(base))
            if changes:
                raise RuntimeError("bench: the per-model loop changed a converged registry")
            res.baseline.append(cost.Run(seconds, *split(calls.since_mark())))
        calls.mark()
        seconds, changes = baseline.per_model_loop(client, baseline.wanted_from(commit))
        res.baseline_changed = cost.Run(seconds, *split(calls.since_mark()), changes=changes)
        restore()

        work = args.workdir / "work"
        latency.clean(work)
        say(f"4. webhook: {args.merges} merges, then passes up to {args.reconciles} for RSS")
        if runtime.ready():
            res.controller.runtime = "the runtime venv (mlflow-skinny)"
            python, pythonpath = runtime.python, runtime.pythonpath
        else:
            say(f"{runtime.error}: the webhook controller runs in the dev venv instead")
            python = pythonpath = None
        latency.webhook_run(work, fleet, server.uri, args.merges, args.reconciles,
                            res.controller, calls, say, python, pythonpath)
        say(f"4. polling at --interval {args.interval:g}: {args.polling_merges} merges")
        latency.polling_run(work, fleet, server.uri, args.polling_merges, args.interval,
                            res.controller, say)
        seed.repair(client, direct, fleet, sorted(set(res.controller.touched)))

        res.import_rss = breakdown.import_rss_mib(python or sys.executable, pythonpath)
        res.dev_import_rss = breakdown.import_rss_mib(sys.executable, None)
        say("5. validate cold start")
        envs = work / "fleet" / "environments"
        envs.mkdir(parents=True)
        for rel, text in fleet.files().items():
            (envs / Path(rel).name).write_text(text)
        res.validate_example = coldstart.measure(ROOT / "environments", runs=10)
        res.validate_fleet = coldstart.measure(envs, runs=5)
        if not args.skip_scale:
            say(f"7. whole processes: plan of {process.PLANNED} models vs the per-model loop")
            res.process = process.plan_vs_loop(work, server.uri, python or sys.executable,
                                               pythonpath or str(ROOT), args.repeats)
    finally:
        proxy.stop()
        server.stop()
    if not args.skip_scale:
        assert res.process is not None
        say("7. apply and plan against sqlite:/// (no server)")
        process.sqlite_apply(args.workdir / "work", res.process, args.changed_repeats)
        res.scale = scale.measure(args.workdir, args.repeats, say)
    b2b = back_to_back(args)
    res.total_seconds = time.monotonic() - started
    LOAD.append(os.getloadavg()[0])
    res.load = (min(LOAD), max(LOAD))
    res.bound = 2 * len(list(chunks(fleet.names())))  # name IN chunks, both searches
    print(report.table(res))
    if str(args.output) != "-":
        args.output.write_text(report.markdown(res))
        say(f"wrote {args.output}")
    write_back_to_back(args, b2b)
    prompts(args)
    ledger_cost(args)
    say(f"done in {res.total_seconds:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
