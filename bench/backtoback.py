"""Measurement 8: merge-to-applied under back-to-back merges, at 1,000 and 5,000 managed
models, side by side with the full pass (the drift check of every managed model) of the
same run. A new commit's changes must not wait for a pass over unchanged models: merges
come one after another, the next pushed as soon as the previous one is applied, so (after
the first) each webhook lands while the drift check that the previous one started is
still running.

Each size has its registry (`.bench/backtoback-<n>/pristine.db`, written straight into
SQLite by tests/support/bulk_seed.py, reused while its parameters match) copied fresh for
every run, an MLflow server on that copy, a bare git remote and `mlflow-gitops run` as a
subprocess (webhook, `--interval 3600`). Latency runs from the moment the push of the merge
returns to the timestamp of the controller's `applied` log line for that commit. The full
pass is then measured in the same process: converged passes triggered one at a time by a
webhook with no new commit, each timed by the controller's own duration histogram."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.fleet import Fleet
from bench.latency import BODY, SECRET, LogTail, Remote, passes
from bench.stats import median, percentile
from tests.support.bulk_seed import add_models
from tests.support.controller_proc import ControllerProcess, wait_until
from tests.support.servers import MlflowServer

SIZES = (1000, 5000)
SEED_FORMAT = 1
MARK_START = "<!-- back-to-back merges: written by `python -m bench` (8.) -->"
MARK_END = "<!-- end of back-to-back merges -->"
GOAL_RATIO = 0.3  # p95 / full pass, at the largest size
GOAL_SECONDS = 0.5  # p95 at the smallest size, on a quiet machine


@dataclass
class Size:
    managed: int
    merges: int = 0
    latencies: list[float] = field(default_factory=list)
    full_passes: list[float] = field(default_factory=list)  # converged passes, seconds
    merge_passes: tuple[int, float] = (0, 0.0)  # passes during the merges: count, seconds
    first_pass: float = 0.0  # the controller's first pass (startup), seconds
    load: list[float] = field(default_factory=list)  # 1-minute load average, per merge
    seed_seconds: float | None = None  # None: reused

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 50)

    @property
    def p95(self) -> float:
        return percentile(self.latencies, 95)

    @property
    def full_pass(self) -> float:
        return median(self.full_passes)

    @property
    def ratio(self) -> float:
        return self.p95 / self.full_pass


@dataclass
class BackToBack:
    sizes: list[Size] = field(default_factory=list)
    date: str = ""
    command: str = ""
    seconds: float = 0.0

    def targets(self) -> list[tuple[str, str, bool]]:
        out: list[tuple[str, str, bool]] = []
        for size in self.sizes:
            if size.managed == max(s.managed for s in self.sizes):
                out.append((f"back-to-back merges, {size.managed:,} managed models: p95 ≤ "
                            f"{GOAL_RATIO} × the full pass", f"{size.ratio:.2f}",
                            size.ratio <= GOAL_RATIO))
            if size.managed == min(s.managed for s in self.sizes):
                out.append((f"back-to-back merges, {size.managed:,} managed models: p95 ≤ "
                            f"{GOAL_SECONDS} s (quiet machine)", f"{size.p95:.2f} s",
                            size.p95 <= GOAL_SECONDS))
        return out


def measure(workdir: Path, merges: int, say: Callable[[str], None],
            sizes: tuple[int, ...] = SIZES) -> BackToBack:
    out = BackToBack(date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    started = time.monotonic()
    for managed in sizes:
        out.sizes.append(one_size(workdir / f"backtoback-{managed}", managed, merges, say))
    out.seconds = time.monotonic() - started
    return out


def seeded(folder: Path, fleet: Fleet) -> float | None:
    """The pristine registry of `fleet` (reused while its parameters match); the seconds
    seeding took, or None when reused."""
    params = {"models": fleet.models, "versions": fleet.versions, "prefix": fleet.prefix,
              "format": SEED_FORMAT}
    stamp = folder / "params.json"
    if stamp.exists() and json.loads(stamp.read_text()) == params \
            and (folder / "pristine.db").exists():
        return None
    shutil.rmtree(folder, ignore_errors=True)
    started = time.monotonic()
    with MlflowServer(folder / "seed"):  # the server creates the schema
        pass
    add_models(folder / "seed" / "mlflow.db", fleet.names(), fleet.versions,
               f"s3://bench/{fleet.prefix}",
               {fleet.production: "Production", fleet.staging: "Staging"},
               {"champion": fleet.champion})
    shutil.copy(folder / "seed" / "mlflow.db", folder / "pristine.db")
    shutil.rmtree(folder / "seed", ignore_errors=True)
    stamp.write_text(json.dumps(params))
    return time.monotonic() - started


def one_size(folder: Path, managed: int, merges: int, say: Callable[[str], None]) -> Size:
    fleet = Fleet(models=managed, versions=5, prefix="b2b")
    size = Size(managed, merges)
    size.seed_seconds = seeded(folder, fleet)
    run = folder / "run"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    shutil.copy(folder / "pristine.db", run / "mlflow.db")
    how = f"seeded in {size.seed_seconds:.0f}s" if size.seed_seconds else "reused registry"
    say(f"8. back-to-back merges, {managed:,} managed models: {how}")
    with MlflowServer(run) as server:
        remote = Remote(run / "remote", fleet)
        (run / "webhook-secret").write_bytes(SECRET)
        proc = ControllerProcess(run, remote.url, server.uri, "--log-level", "INFO",
                                 "--webhook-secret-file", str(run / "webhook-secret"),
                                 interval=3600)
        proc.start()
        try:
            t0 = time.monotonic()
            wait_until(lambda: passes(proc) >= 1, timeout=1200, every=0.5,
                       message=f"the first pass over {managed:,} models")
            size.first_pass = time.monotonic() - t0
            say(f"8. first pass over {managed:,} models: {size.first_pass:.1f}s")
            _merges(proc, remote, fleet, size, merges)
            _idle(proc, quiet=2 * size.first_pass + 3)
            count, total = _histogram(proc)
            size.merge_passes = (count - 1, total - size.first_pass)
            for _ in range(3):
                size.full_passes.append(_one_converged_pass(proc))
            say(f"8. {managed:,} managed: p50 {size.p50:.2f}s, p95 {size.p95:.2f}s, full pass "
                f"{size.full_pass:.2f}s (ratio {size.ratio:.2f})")
        finally:
            try:
                proc.terminate(timeout=60)
            except Exception:  # noqa: BLE001 - a bench must always clean up its process
                proc.kill()
    return size


def _merges(proc: ControllerProcess, remote: Remote, fleet: Fleet, size: Size,
            merges: int) -> None:
    tail = LogTail(proc.log_path)
    tail.records()  # skip the startup lines
    names = fleet.names()
    for i in range(merges):
        model = names[-(i + 1)]
        sha, merged = remote.merge_alias_move(model, fleet.champion - 1)
        size.load.append(os.getloadavg()[0])
        code = proc.post_webhook(BODY, proc.github_signature(BODY, SECRET))
        if code != 202:
            raise RuntimeError(f"bench: webhook answered {code}")
        size.latencies.append(tail.applied_at(sha, timeout=1200) - merged)


def _histogram(proc: ControllerProcess) -> tuple[int, float]:
    count, total = 0, 0.0
    for line in proc.metrics().splitlines():
        if line.startswith("mlflow_gitops_reconcile_duration_seconds_count"):
            count = int(float(line.split()[-1]))
        elif line.startswith("mlflow_gitops_reconcile_duration_seconds_sum"):
            total = float(line.split()[-1])
    return count, total


def _idle(proc: ControllerProcess, quiet: float) -> None:
    """Wait until no pass has finished for `quiet` seconds (longer than a pass takes): the
    merges leave the pass in flight and one coalesced pass behind them."""
    last, since = passes(proc), time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(0.25)
        now = passes(proc)
        if now != last:
            last, since = now, time.monotonic()


def _one_converged_pass(proc: ControllerProcess) -> float:
    count, total = _histogram(proc)
    proc.post_webhook(BODY, proc.github_signature(BODY, SECRET))
    wait_until(lambda: _histogram(proc)[0] > count, timeout=1200, every=0.1,
               message="a converged pass")
    after, after_total = _histogram(proc)
    return (after_total - total) / (after - count)


# -- BENCHMARKS.md ---------------------------------------------------------------------------

def _s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def section(b: BackToBack) -> str:
    lines = [
        MARK_START,
        "## Back-to-back merges while the drift check runs",
        "",
        f"- **Date:** {b.date}; `{b.command}` ({b.seconds / 60:.1f} min)",
        "- **Load:** the 1-minute load average at each merge "
        + "; ".join(f"{s.managed:,} managed: {min(s.load):.1f}–{max(s.load):.1f} "
                    f"(mean {sum(s.load) / len(s.load):.1f})" for s in b.sizes if s.load)
        + f" on {os.cpu_count()} cores",
        "",
        "| managed models | merges | merge-to-applied p50 / p95 | full pass (median of 3 "
        "converged passes) | p95 / full pass | passes during the merges (mean) | first pass |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in b.sizes:
        count, total = s.merge_passes
        lines.append(f"| {s.managed:,} | {len(s.latencies)} | {_s(s.p50)} / {_s(s.p95)} | "
                     f"{_s(s.full_pass)} | {s.ratio:.2f} | {count} "
                     f"({_s(total / count) if count else '–'}) | {_s(s.first_pass)} |")
    lines += ["", "| target | measured | |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {'met' if ok else '**missed**'} |" for t, m, ok in b.targets()]
    lines += [
        "",
        "Each merge moves one model's @champion (`--no-ff` merge pushed to a bare remote, then "
        "a signed `POST /webhook`); the next merge is pushed as soon as the controller logs "
        "the previous one `applied`. Each webhook wakes the commit lane, which applies the "
        "merge at once; the pass the webhook also asks for (the drift check of every managed "
        "model) waits until no merge has been applied for a second (ten at most), so in this "
        "burst it runs once after the merges (the column 'passes during the merges'), not "
        "beside each one. A drift check already running when a merge arrives (an interval "
        "pass, an MLflow webhook) runs beside it: the lane does not wait for it. Latency: "
        "push returned → the controller's `applied` log line. Full pass: a webhook with no "
        "new commit, one at a time after the merges, timed by the controller's "
        "`reconcile_duration_seconds` histogram (fetch + drift check of every managed "
        "model). Registries are written straight into SQLite "
        "(`tests/support/bulk_seed.py`) and copied fresh for every run.",
        MARK_END,
    ]
    return "\n".join(lines)


def write_section(path: Path, b: BackToBack) -> None:
    """Put this measurement's section into BENCHMARKS.md, replacing an earlier one."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = section(b)
    if MARK_START in text and MARK_END in text:
        head, rest = text.split(MARK_START, 1)
        tail = rest.split(MARK_END, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
