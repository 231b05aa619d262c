"""Measurement 7: whole processes, exec to exit, the way a CI job runs them.

- `mlflow-gitops plan` of 300 models against the tracking server, side by side with a
  process running the per-model loop (bench/baseline.py) over the same 300 models; both in
  the same interpreter and venv, so the ratio includes each one's imports. `python -X
  importtime` of the plan lists the mlflow modules it imported (the REST reads use
  `requests` alone).
- `mlflow-gitops apply` and `plan` against `sqlite:///…` (no server): MLflow's own SQL store,
  on a copy of a seeded database so every run starts from the same state."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.fleet import Fleet
from tests.support.bulk_seed import add_models

PLANNED = 300

LOOP = """
import json, sys, time
from mlflow import MlflowClient
from bench.baseline import Wanted, per_model_loop
wanted = Wanted(**json.load(open(sys.argv[2])))
seconds, changes = per_model_loop(MlflowClient(sys.argv[1], sys.argv[1]), wanted)
assert changes == 0, changes
"""


@dataclass
class ProcessFigures:
    python: str = ""
    plan_seconds: list[float] = field(default_factory=list)
    loop_seconds: list[float] = field(default_factory=list)
    plan_mlflow_modules: int = -1
    sqlite_apply_seconds: list[float] = field(default_factory=list)
    sqlite_plan_seconds: list[float] = field(default_factory=list)
    sqlite_changes: int = 0
    sqlite_error: str | None = None

    @property
    def ratio(self) -> float:
        return statistics.median(self.plan_seconds) / statistics.median(self.loop_seconds)


def _run(command: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=600)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 2):  # 2: plan --detailed-exitcode with changes
        raise RuntimeError(f"bench: {' '.join(command[:4])} failed: {done.stderr[-500:]}")
    return seconds


def plan_vs_loop(work: Path, uri: str, python: str, pythonpath: str, runs: int
                 ) -> ProcessFigures:
    out = ProcessFigures(python=python)
    fleet = Fleet(models=PLANNED)  # the first 300 models of the 1,000 seeded ones
    folder = work / "plan300" / "environments"
    shutil.rmtree(folder.parent, ignore_errors=True)
    folder.mkdir(parents=True)
    for rel, text in fleet.files().items():
        (folder / Path(rel).name).write_text(text)
    wanted = work / "plan300" / "wanted.json"
    names = fleet.names()
    wanted.write_text(json.dumps({"production": {n: fleet.production for n in names},
                                  "staging": {n: fleet.staging for n in names},
                                  "champion": {n: fleet.champion for n in names}}))
    env = {**os.environ, "PYTHONPATH": pythonpath, "MLFLOW_TRACKING_URI": uri}
    plan = [python, "-m", "mlflow_gitops.cli", "plan", str(folder), "--detailed-exitcode"]
    loop = [python, "-c", LOOP, uri, str(wanted)]
    _run(plan, env)  # warm the page cache and .pyc
    _run(loop, env)
    for _ in range(runs):
        out.plan_seconds.append(_run(plan, env))
    for _ in range(max(1, runs // 2)):
        out.loop_seconds.append(_run(loop, env))
    traced = subprocess.run([python, "-X", "importtime", *plan[1:]], env=env,
                            capture_output=True, text=True, timeout=600)
    out.plan_mlflow_modules = sum(
        1 for line in traced.stderr.splitlines()
        if line.startswith("import time:") and line.rsplit("|", 1)[-1].strip()
        .split(".")[0] == "mlflow")
    return out


def sqlite_apply(work: Path, out: ProcessFigures, runs: int) -> None:
    """apply (a commit changing 10 of 100 models) and a converged plan, on sqlite:///."""
    fleet = Fleet(models=100, versions=5, prefix="lite")
    root = work / "sqlite"
    shutil.rmtree(root, ignore_errors=True)
    (root / "environments").mkdir(parents=True)
    pristine = root / "pristine.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
    try:
        schema = subprocess.run(
            [sys.executable, "-c", "import sys; from mlflow import MlflowClient; "
             "MlflowClient(sys.argv[1], sys.argv[1]).search_registered_models()",
             f"sqlite:///{pristine}"], capture_output=True, text=True, timeout=600)
        if schema.returncode != 0:
            raise RuntimeError(schema.stderr.strip().splitlines()[-1])
        add_models(pristine, fleet.names(), fleet.versions, "s3://bench/lite",
                   {fleet.production: "Production", fleet.staging: "Staging"},
                   {"champion": fleet.champion})
        prod, champ = fleet.changed(10)
        cli = [str(Path(sys.executable).parent / "mlflow-gitops")]
        for _ in range(runs):
            shutil.copy(pristine, root / "mlflow.db")
            for rel, text in fleet.files(production=prod, champion=champ).items():
                (root / "environments" / Path(rel).name).write_text(text)
            out.sqlite_apply_seconds.append(_run([*cli, "apply", "environments"], env, root))
            out.sqlite_plan_seconds.append(
                _run([*cli, "plan", "environments", "--detailed-exitcode"], env, root))
        out.sqlite_changes = 30
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        out.sqlite_error = str(exc)[:300]
