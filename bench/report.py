"""The benchmark's figures, the targets they are held to, and two renderings: the table
printed at the end of a run and BENCHMARKS.md. Rendering never measures anything."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone

from bench.breakdown import Breakdown
from bench.coldstart import ColdStart
from bench.cost import Run
from bench.fleet import Fleet
from bench.latency import ControllerFigures
from bench.process import ProcessFigures
from bench.scale import ScaleFigures
from bench.seed import PROCESSES
from bench.stats import median, percentile


@dataclass
class Results:
    fleet: Fleet
    mlflow_version: str
    argv: list[str]
    model_page: int
    version_page: int
    changed_models: int = 10
    seed_seconds: float | None = None
    registry_models: int = 0
    registry_versions: int = 0
    bound: int = 0
    converged: list[Run] = field(default_factory=list)
    changed: list[Run] = field(default_factory=list)
    proxy_converged: tuple[int, int] = (0, 0)  # (reads, writes) counted by the proxy
    proxy_changed: tuple[int, int] = (0, 0)
    baseline: list[Run] = field(default_factory=list)
    baseline_changed: Run | None = None
    controller: ControllerFigures = field(default_factory=ControllerFigures)
    validate_example: ColdStart | None = None
    validate_fleet: ColdStart | None = None
    breakdown: Breakdown | None = None
    import_rss: tuple[float, float, float] = (0.0, 0.0, 0.0)  # runtime venv: bare, ours, +mlflow
    dev_import_rss: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: ScaleFigures | None = None
    process: ProcessFigures | None = None
    load: tuple[float, float] = (0.0, 0.0)  # lowest and highest 1-minute load average seen
    total_seconds: float = 0.0
    date: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC"))

    # -- derived figures ---------------------------------------------------------------------

    @property
    def ours_seconds(self) -> float:
        return median([r.seconds for r in self.converged])

    @property
    def ours_reads(self) -> int:
        return max(r.reads for r in self.converged)

    @property
    def ours_writes(self) -> int:
        return max(r.writes for r in self.converged)

    @property
    def changes(self) -> int:
        return int(median([r.changes for r in self.changed]))

    @property
    def records(self) -> int:
        return int(median([r.records for r in self.changed]))

    @property
    def changed_writes(self) -> list[int]:
        return [r.writes for r in self.changed]

    @property
    def changed_reads(self) -> int:
        return max(r.reads for r in self.changed)

    @property
    def changed_seconds(self) -> float:
        return median([r.seconds for r in self.changed])

    @property
    def baseline_median(self) -> float:
        return median([r.seconds for r in self.baseline])

    @property
    def baseline_reads(self) -> int:
        return max(r.reads for r in self.baseline)

    @property
    def baseline_writes(self) -> int:
        return max(r.writes for r in self.baseline)

    @property
    def speedup(self) -> float:
        return self.baseline_median / self.ours_seconds

    @property
    def proxy_agrees(self) -> bool:
        return (self.proxy_converged == (self.ours_reads, self.ours_writes)
                and self.proxy_changed == (self.changed_reads, max(self.changed_writes)))

    def webhook(self, p: float) -> float:
        return percentile(self.controller.webhook_latencies, p)

    def polling(self, p: float) -> float:
        return percentile(self.controller.polling_latencies, p)

    # -- targets ---------------------------------------------------------------------------

    def targets(self) -> list[tuple[str, str, bool]]:
        """(target, measured, met)."""
        c = self.controller
        writes = self.changed_writes
        out = [
            (f"converged reconcile reads ≤ 2 × the `name IN` chunks of {self.fleet.models:,} "
             f"names = {self.bound}",
             f"{self.ours_reads}", 0 < self.ours_reads <= self.bound),
            ("converged reconcile writes = 0", f"{self.ours_writes}", self.ours_writes == 0),
            ("converged reconcile ≥ 10× faster than the per-model loop",
             f"{self.speedup:.0f}×", self.speedup >= 10),
            ("writes after the commit = changes + their lineage tags + evidence records",
             f"{max(writes)} = {self.changes} + {self.changes} + {self.records}",
             all(r.writes == 2 * r.changes + r.records for r in self.changed)),
            (f"webhook merge-to-applied p95 ≤ 0.5 s at {self.fleet.models:,} managed models "
             f"(n = {len(c.webhook_latencies)} ≥ 20)", f"{self.webhook(95):.2f} s",
             self.webhook(95) <= 0.5 and len(c.webhook_latencies) >= 20),
        ]
        out += self._scale_targets()
        if self.validate_example is not None:
            v = self.validate_example
            out.append(("`validate` cold start ≤ 0.3 s (the repository's example files), "
                        "without importing mlflow",
                        f"{v.seconds:.2f} s, mlflow modules imported: "
                        f"{len(v.mlflow_modules)}",
                        v.seconds <= 0.3 and not v.mlflow_modules))
        if self.validate_fleet is not None:
            v = self.validate_fleet
            out.append((f"the same bound for the {self.fleet.models:,}-model files",
                        f"{v.seconds:.2f} s, mlflow modules imported: "
                        f"{len(v.mlflow_modules)}",
                        v.seconds <= 0.3 and not v.mlflow_modules))
        out.append(("controller RSS ≤ 150 MB",
                    f"{c.rss_mib:.0f} MiB after {c.passes} passes, in {c.runtime}",
                    c.rss_mib * 1.048576 <= 150))
        return out


    def _scale_targets(self) -> list[tuple[str, str, bool]]:
        out: list[tuple[str, str, bool]] = []
        sc, pr = self.scale, self.process
        if sc is not None:
            first, last = sc.sizes[0], sc.sizes[-1]
            out += [
                (f"converged pass, {sc.managed} of {first.registered:,} models managed: "
                 "≤ 4 read calls", f"{first.pass_reads}", 0 < first.pass_reads <= 4),
                (f"… ≤ 10% of the time of reading the whole {first.registered:,}-model "
                 "registry", f"{sc.ratio(first):.1%}", sc.ratio(first) <= 0.10),
                (f"… cost flat from {first.registered:,} to {last.registered:,} registered "
                 "models: same read calls, time within 25%",
                 f"{first.pass_reads} → {last.pass_reads} calls, time × {sc.flat:.2f}",
                 first.pass_reads == last.pass_reads and sc.flat <= 1.25),
            ]
        if pr is not None:
            out.append(("whole-process `plan` of 300 models ≤ 0.08 × the per-model loop "
                        "process", f"{pr.ratio:.3f}", pr.ratio <= 0.08))
            out.append(("`apply` against sqlite:/// works",
                        "yes" if pr.sqlite_error is None else f"no: {pr.sqlite_error}",
                        pr.sqlite_error is None))
        return out


def _s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def rows(r: Results) -> list[tuple[str, str, str, str]]:
    """(measurement, mlflow-gitops, per-model loop, ratio)."""
    c = r.controller
    n = r.fleet.models
    bc = r.baseline_changed or Run(float("nan"), 0, 0)
    out = [
        (f"1. converged reconcile, {n:,} models: wall time (median of {len(r.converged)})",
         _s(r.ours_seconds), f"{_s(r.baseline_median)} (median of {len(r.baseline)})",
         f"{r.speedup:.0f}× faster"),
        *_breakdown_rows(r),
        ("1. converged reconcile: read calls", f"{r.ours_reads}", f"{r.baseline_reads:,}",
         f"{r.baseline_reads / max(1, r.ours_reads):,.0f}× fewer"),
        ("1. converged reconcile: write calls", f"{r.ours_writes}", f"{r.baseline_writes}", ""),
        (f"2. commit changing {r.changed_models} models: changes made", f"{r.changes}",
         f"{bc.changes}", ""),
        ("2. commit: write calls", f"{max(r.changed_writes)} ({r.changes} changes + "
         f"{r.changes} lineage tags + {r.records} evidence records)",
         f"{bc.writes} (no lineage tags)", ""),
        ("2. commit: read calls", f"{r.changed_reads}", f"{bc.reads:,}", ""),
        (f"2. commit: wall time (median of {len(r.changed)})", _s(r.changed_seconds),
         f"{_s(bc.seconds)} (1 run)", f"{bc.seconds / r.changed_seconds:.0f}× faster"),
        (f"4. webhook merge-to-applied, p50 / p95 (n={len(c.webhook_latencies)})",
         f"{_s(r.webhook(50))} / {_s(r.webhook(95))}", "", ""),
        ("4. … of which the webhook POST, sent to answered (median)",
         _s(median(c.webhook_post_seconds)), "", ""),
        (f"4. polling --interval {c.polling_interval:g}, p50 / p95 "
         f"(n={len(c.polling_latencies)})", f"{_s(r.polling(50))} / {_s(r.polling(95))}", "",
         ""),
        ("4. running controller, per converged pass: read / write calls",
         f"{c.converged_reads / max(1, c.converged_passes):.1f} / "
         f"{c.converged_writes / max(1, c.converged_passes):.1f}", "", ""),
        ("4. running controller: mean pass time (its own histogram)",
         _s(c.mean_pass_seconds), "", ""),
        ("4. per new commit: parsing and validating the three files (in-process)",
         _s(r.breakdown.load_seconds) if r.breakdown else "", "", ""),
        (f"5. controller RSS after {c.passes} reconciles, in {c.runtime}",
         f"{c.rss_mib:.0f} MiB ({c.first_rss_mib:.0f} MiB after its first pass, peak "
         f"{c.peak_rss_mib:.0f} MiB)", "", ""),
        (f"5. controller RSS after {c.dev_passes} reconcile(s), dev venv (full mlflow, "
         "pandas): the polling controller", f"{c.dev_rss_mib:.0f} MiB", "", ""),
    ]
    out += _scale_rows(r)
    if r.validate_example is not None and r.validate_fleet is not None:
        out.append((f"5. `validate` cold start, the repo's example (median of "
                    f"{r.validate_example.runs})", _s(r.validate_example.seconds), "", ""))
        out.append((f"5. `validate` cold start, the {n:,}-model files (median of "
                    f"{r.validate_fleet.runs})", _s(r.validate_fleet.seconds), "", ""))
    return out


def _scale_rows(r: Results) -> list[tuple[str, str, str, str]]:
    out: list[tuple[str, str, str, str]] = []
    if r.scale is not None:
        for size in r.scale.sizes:
            out.append((
                f"6. converged pass, {r.scale.managed} managed of {size.registered:,} "
                f"registered models (median of {len(size.pass_seconds)}) / reading the whole "
                "registry (every page of both searches)",
                f"{_s(median(size.pass_seconds))}, {size.pass_reads} read calls",
                f"{_s(median(size.full_seconds))}, {size.full_calls} calls, "
                f"{size.full_bytes / 1e6:.0f} MB", f"{r.scale.ratio(size):.1%}"))
    p = r.process
    if p is not None:
        out.append((f"7. whole-process `plan` of 300 models, exec to exit (median of "
                    f"{len(p.plan_seconds)}) / the per-model loop as a process",
                    f"{_s(median(p.plan_seconds))} ({p.plan_mlflow_modules} mlflow modules "
                    "imported)", f"{_s(median(p.loop_seconds))} (median of "
                    f"{len(p.loop_seconds)})", f"{p.ratio:.3f}"))
        if p.sqlite_error is None:
            out.append((f"7. `apply` against sqlite:/// ({p.sqlite_changes} changes, 100 "
                        f"models, no server), exec to exit (median of "
                        f"{len(p.sqlite_apply_seconds)}); then `plan`",
                        f"{_s(median(p.sqlite_apply_seconds))}; plan "
                        f"{_s(median(p.sqlite_plan_seconds))}", "", ""))
    return out


def _breakdown_rows(r: Results) -> list[tuple[str, str, str, str]]:
    b = r.breakdown
    if b is None:
        return []
    return [
        ("1. … of which the server answering the two bulk reads (HTTP, body not parsed)",
         f"{_s(b.server_seconds)} (models page {_s(b.models_page_seconds)}, "
         f"{b.models_page_bytes / 1e6:.1f} MB; versions page {_s(b.versions_page_seconds)}, "
         f"{b.versions_page_bytes / 1e6:.1f} MB)", "", ""),
        ("1. … and the client turning the pages into objects, planning, status",
         _s(max(0.0, r.ours_seconds - b.server_seconds)), "", ""),
    ]


def table(r: Results) -> str:
    lines = ["| measurement | mlflow-gitops | per-model loop | ratio |",
             "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows(r)]
    lines += ["", "| target | measured | |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {'met' if ok else 'MISSED'} |" for t, m, ok in r.targets()]
    return "\n".join(lines)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):  # noqa: SIM115 - a short read
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(int(line.split()[1]) for line in open("/proc/meminfo")  # noqa: SIM115
                   if line.startswith("MemTotal"))
        memory = f"{mem / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration):
        memory = "unknown memory"
    return (f"{os.cpu_count()} cores ({cpu}), {memory}, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}")


def markdown(r: Results) -> str:
    from bench.notes import notes  # the written analysis, kept apart from the rendering

    c = r.controller
    seeded = (f"seeded in this run ({r.seed_seconds:.0f} s, MlflowClient calls from "
              f"{PROCESSES} processes straight on the SQLite database)"
              if r.seed_seconds is not None else "reused from an earlier run (same parameters)")
    command = f"python -m bench {' '.join(r.argv)}" if r.argv else "make bench"
    parts = [
        "# Benchmarks",
        "",
        "What a reconcile costs the registry at scale, side by side with the per-model loop a "
        "user would otherwise write. Generated by `make bench`; every "
        "figure below is from one run.",
        "",
        f"- **Date:** {r.date}",
        f"- **Machine:** {machine()}",
        f"- **MLflow:** {r.mlflow_version} server, SQLite backend, one worker, on loopback; "
        f"the controller and the baseline are clients on the same machine",
        f"- **Registry:** {r.registry_models:,} registered models, {r.registry_versions:,} "
        f"versions; {seeded}",
        f"- **Environments:** Production (stage, v{r.fleet.production}), Staging (stage, "
        f"v{r.fleet.staging}) and @champion (alias, v{r.fleet.champion}), each listing every "
        "model",
        f"- **Page sizes:** {r.model_page:,} models, {r.version_page:,} versions per call",
        f"- **Reproduce:** `{command}` ({r.total_seconds / 60:.1f} min for this run, "
        + ("seeding included" if r.seed_seconds is not None else "on a reused database")
        + "; the seeded database is kept in `.bench/` and reused while its parameters match)",
        "",
        "## Figures",
        "",
        table(r).split("\n\n")[0],
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "|---|---|---|",
        *[f"| {t} | {m} | {'met' if ok else '**missed**'} |" for t, m, ok in r.targets()],
        "",
        *notes(r),
        "## How it is measured",
        "",
        "- **Calls** are counted at the server: uvicorn writes one access-log line per "
        "request it answered, so every timed run is also a counted run, with nothing in the "
        "request path. Reads and writes are split by the rule of "
        "`tests/support/counting_proxy.py`; one extra converged and one extra changed run go "
        "through that CountingProxy, and its counts "
        + ("agree" if r.proxy_agrees else f"DISAGREE (proxy: {r.proxy_converged}, "
                                          f"{r.proxy_changed})")
        + ". Wall time is `time.perf_counter()` around the whole pass or loop.",
        "- **1.** `reconcile()` in-process through `MlflowRegistry` (what one pass of the "
        "controller, `plan` and `apply` run) on the converged state.",
        f"- **2.** The commit rolls {r.changed_models} models back one version in "
        "Production and on @champion: per model, a promotion, an archival of the replaced "
        "version and an alias move, each with its `gitops.env.<environment>` lineage tag "
        "(written just before the change). The "
        "seeded state is restored outside the measurement before every run.",
        "- **3.** The loop: per model `get_latest_versions(name, [Staging, Production])` + "
        "`get_registered_model(name)`, then `transition_model_version_stage(..., "
        "archive_existing_versions=True)` / `set_registered_model_alias` where different. "
        f"{len(r.baseline)} runs on the converged state and 1 on the commit's state, in this "
        "run, against the same server and state as ours.",
        f"- **4.** `mlflow-gitops run` as a subprocess (JSON logs, INFO) following a bare git "
        "remote. Each merge is a `--no-ff` merge of a branch that moves one model's @champion, "
        "pushed to the remote. Latency runs from the moment the push returns to the timestamp "
        "of the controller's `applied` log line for that commit (written once the lineage tag "
        "and the alias calls have returned). Webhook: `--interval 3600`, a signed "
        "GitHub-style `POST "
        f"/webhook` right after the push, {len(c.webhook_latencies)} merges, one at a time. "
        f"Polling: `--interval {c.polling_interval:g}`, no webhook, "
        f"{len(c.polling_latencies)} merges (fewer, to stay within the 10-minute budget), "
        "each pushed after a random pause (seeded) so merges land at random points of the "
        "timer's cycle. p95 is the nearest-rank percentile.",
        f"- **5.** RSS is `VmRSS` (and `VmHWM`, the peak) from `/proc/<pid>/status` of the "
        f"webhook controller after {c.passes} reconciles of the {r.fleet.models:,}-model "
        "state (the merges above, then converged passes triggered by webhooks). That "
        "controller runs in `.bench/runtime-venv`, which holds only the project's runtime "
        "dependencies (mlflow-skinny, as the container image does), with this checkout on "
        "PYTHONPATH; the polling controller runs in the dev venv, whose full `mlflow` "
        "(installed to run the server) drags pandas and more into the process. `validate` "
        "cold start is the wall time of the `mlflow-gitops` console script from exec to exit, "
        "median of several runs after one warm-up (page cache warm, `.pyc` compiled); "
        "`python -X importtime` of the same command lists the modules it imports, and none "
        "may be `mlflow`.",
        "- **6.** Two more registries (`.bench/scale-<size>/`, reused while their parameters "
        "match): the same 100 managed models (5 versions, Production/Staging/@champion as "
        "above) among 5,000 and 20,000 registered models; the unmanaged ones (2 versions "
        "each) are written straight into the server's SQLite database "
        "(`tests/support/bulk_seed.py`). Per size: the converged `reconcile()` in-process "
        "(one warm-up, then the median), its calls counted by the CountingProxy in one more "
        "run, and, side by side, reading the whole registry as a pass did before "
        "(every page of both searches over HTTP, JSON parsed, not turned into objects).",
        "- **7.** Whole processes, exec to exit, in the same interpreter and venv as the "
        "webhook controller: `python -m mlflow_gitops.cli plan` of the first 300 fleet models "
        "(`--detailed-exitcode`) against the server above, and a process running the "
        "per-model loop of 3. over the same 300 models (`from mlflow import MlflowClient` "
        "included, as a user's script would). `python -X importtime` of the plan counts the "
        "`mlflow` modules it imported. Then `mlflow-gitops apply` of a commit changing 10 of "
        "100 models (30 changes) and a converged `plan`, against `sqlite:///…` with no server "
        "(dev venv: the SQL store needs the full `mlflow`), each run on a fresh copy of the "
        "seeded database.",
        "",
    ]
    return "\n".join(parts)
