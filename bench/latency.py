"""Measurements 4 and 5: the running controller (`mlflow-gitops run` as a subprocess, the
way a Deployment runs it) against a bare git remote. Merge-to-applied latency is the time
from the merge landing in the remote to the controller's JSON log line for the applied
change (logged after the write and its tag returned); both clocks are this machine's.
Resident memory is read from /proc/<pid>/status after 50 reconciles."""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.calls import ServerCalls, split
from bench.fleet import Fleet
from tests.support.controller_proc import ControllerProcess, wait_until
from tests.support.gitrepos import bare_remote, commit_all, git, write_files

SECRET = b"bench-webhook-secret"
BODY = b'{"ref": "refs/heads/main"}'


@dataclass
class ControllerFigures:
    webhook_latencies: list[float] = field(default_factory=list)
    webhook_post_seconds: list[float] = field(default_factory=list)  # POST /webhook → 202
    polling_latencies: list[float] = field(default_factory=list)
    polling_interval: float = 5.0
    runtime: str = "the dev venv"  # where the webhook controller ran (see bench.runtime)
    passes: int = 0
    first_rss_mib: float = 0.0  # after its first pass
    rss_mib: float = 0.0  # after `passes` passes
    peak_rss_mib: float = 0.0
    dev_passes: int = 0  # the polling controller, in the dev venv (full mlflow)
    dev_rss_mib: float = 0.0
    mean_pass_seconds: float = 0.0
    converged_passes: int = 0  # passes driven with nothing to change
    converged_reads: int = 0  # their registry calls, counted at the server
    converged_writes: int = 0
    touched: list[str] = field(default_factory=list)  # models the merges changed


class Remote:
    """The bare remote and a work clone in which 'pull requests' are merged."""

    def __init__(self, root: Path, fleet: Fleet):
        self.fleet = fleet
        self.champion: dict[str, int] = {}
        self.bare, self.work = bare_remote(root, fleet.files())
        self.merges = 0

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def head(self) -> str:
        return git(self.work, "rev-parse", "HEAD")

    def merge_alias_move(self, model: str, version: int) -> tuple[str, float]:
        """Merge a branch that moves one model's @champion; returns (merge sha, time.time()
        when the push of main returned)."""
        self.merges += 1
        branch = f"promote-{self.merges}"
        self.champion[model] = version
        files = {k: v for k, v in self.fleet.files(champion=self.champion).items()
                 if k.endswith("champion.yaml")}
        git(self.work, "checkout", "-q", "-b", branch, "main")
        write_files(self.work, files)
        commit_all(self.work, f"{model}: @champion to v{version}")
        git(self.work, "push", "-q", "origin", branch)
        git(self.work, "checkout", "-q", "main")
        git(self.work, "merge", "-q", "--no-ff", branch, "-m", f"Merge branch '{branch}'")
        git(self.work, "push", "-q", "origin", "main")
        return self.head(), time.time()


class LogTail:
    """Reads the controller's JSON log as it grows."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0

    def records(self) -> list[dict[str, object]]:
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        out = []
        for line in data[:end].splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def applied_at(self, commit: str, timeout: float) -> float:
        """time.time() of the first 'applied' record for `commit`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for rec in self.records():
                if str(rec.get("message", "")).startswith("applied") and rec.get(
                        "commit") == commit:
                    return _epoch(str(rec["time"]))
            time.sleep(0.005)
        raise RuntimeError(f"bench: commit {commit[:12]} not applied within {timeout}s; "
                           f"see {self.path}")


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def start_controller(workdir: Path, remote: Remote, tracking_uri: str, interval: float,
                     webhook: bool, python: str | None = None, pythonpath: str | None = None
                     ) -> tuple[ControllerProcess, LogTail]:
    extra = ["--log-level", "INFO"]
    if webhook:
        (workdir / "webhook-secret").write_bytes(SECRET)
        extra += ["--webhook-secret-file", str(workdir / "webhook-secret")]
    proc = ControllerProcess(workdir, remote.url, tracking_uri, *extra, interval=interval,
                             env={"PYTHONPATH": pythonpath} if pythonpath else None)
    if python is not None:
        proc.args[0] = python  # the runtime venv: mlflow-skinny, as in the image
    proc.start()
    head = remote.head()
    wait_until(lambda: proc.status()["last_applied_commit"] == head, timeout=120, every=0.2,
               message="the controller's first pass")
    return proc, LogTail(proc.log_path)


def passes(proc: ControllerProcess) -> int:
    """Finished passes, from /metrics (cheap; /status renders every model's row)."""
    for line in proc.metrics().splitlines():
        if line.startswith("mlflow_gitops_reconcile_duration_seconds_count"):
            return int(float(line.split()[-1]))
    return 0


def pass_done(proc: ControllerProcess, after: int, timeout: float = 60) -> int:
    return int(wait_until(lambda: (n := passes(proc)) > after and n, timeout=timeout,
                          every=0.05, message="the pass to finish"))


def webhook_run(workdir: Path, fleet: Fleet, tracking_uri: str, merges: int,
                reconciles: int, figures: ControllerFigures, calls: ServerCalls,
                progress: Callable[[str], None], python: str | None = None,
                pythonpath: str | None = None) -> None:
    """`merges` webhook-triggered merges, then converged webhook passes up to `reconciles`
    passes in all, then the controller's resident memory."""
    remote = Remote(workdir / "webhook-remote", fleet)
    proc, tail = start_controller(workdir, remote, tracking_uri, interval=3600, webhook=True,
                                  python=python, pythonpath=pythonpath)
    assert proc.proc is not None
    figures.first_rss_mib = rss_mib(proc.proc.pid)[0]
    try:
        names = fleet.names()
        for i in range(merges):
            model = names[-(i + 1)]  # far from the models measurement 2 changes
            before = passes(proc)
            sha, merged = remote.merge_alias_move(model, fleet.champion - 1)
            posted = time.perf_counter()
            code = proc.post_webhook(BODY, proc.github_signature(BODY, SECRET))
            figures.webhook_post_seconds.append(time.perf_counter() - posted)
            if code != 202:
                raise RuntimeError(f"bench: webhook answered {code}")
            figures.webhook_latencies.append(tail.applied_at(sha, timeout=60) - merged)
            figures.touched.append(model)
            pass_done(proc, before)
        progress(f"webhook: {merges} merges applied; driving converged passes to {reconciles}")
        calls.mark()
        first = passes(proc)
        while passes(proc) < reconciles:
            before = passes(proc)
            proc.post_webhook(BODY, proc.github_signature(BODY, SECRET))
            pass_done(proc, before)
        figures.converged_passes = passes(proc) - first
        figures.converged_reads, figures.converged_writes = split(calls.since_mark())
        figures.passes = passes(proc)
        figures.rss_mib, figures.peak_rss_mib = rss_mib(proc.proc.pid)
        figures.mean_pass_seconds = mean_pass_seconds(proc.metrics())
    finally:
        _stop(proc)


def polling_run(workdir: Path, fleet: Fleet, tracking_uri: str, merges: int, interval: float,
                figures: ControllerFigures, progress: Callable[[str], None]) -> None:
    """`merges` merges with no webhook: the controller finds them on its --interval timer.
    Each merge lands at a random moment of the timer's cycle (seeded, reproducible)."""
    remote = Remote(workdir / "polling-remote", fleet)
    proc, tail = start_controller(workdir, remote, tracking_uri, interval=interval,
                                  webhook=False)
    figures.polling_interval = interval
    rng = random.Random(8)
    try:
        names = fleet.names()
        for i in range(merges):
            time.sleep(rng.uniform(0, interval))
            model = names[-(i + 1 + len(figures.webhook_latencies))]
            sha, merged = remote.merge_alias_move(model, fleet.champion - 1)
            figures.polling_latencies.append(
                tail.applied_at(sha, timeout=interval * 3 + 60) - merged)
            figures.touched.append(model)
            progress(f"polling: merge {i + 1}/{merges} applied")
        assert proc.proc is not None
        figures.dev_passes = passes(proc)
        figures.dev_rss_mib = rss_mib(proc.proc.pid)[0]
    finally:
        _stop(proc)


def rss_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB from /proc/<pid>/status."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def mean_pass_seconds(metrics_text: str) -> float:
    total = count = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("mlflow_gitops_reconcile_duration_seconds_sum"):
            total = float(line.split()[-1])
        elif line.startswith("mlflow_gitops_reconcile_duration_seconds_count"):
            count = float(line.split()[-1])
    return total / count if count else 0.0


def _stop(proc: ControllerProcess) -> None:
    try:
        proc.terminate(timeout=30)
    except Exception:  # noqa: BLE001 - a bench must always clean up its process
        proc.kill()


def clean(workdir: Path) -> None:
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
