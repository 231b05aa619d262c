"""Measurement 5b: `mlflow-gitops validate` from process start to exit, the way a pre-commit
hook or CI step runs it, and proof that it never imports mlflow (`python -X importtime`
lists every module the process imported)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ColdStart:
    seconds: float  # median wall time
    runs: int
    mlflow_modules: tuple[str, ...]  # mlflow modules the process imported (must be empty)
    slowest_imports: tuple[tuple[str, float], ...]  # (module, cumulative seconds)


def console_script() -> str:
    return str(Path(sys.executable).parent / "mlflow-gitops")


def measure(folder: Path, runs: int) -> ColdStart:
    command = [console_script(), "validate", str(folder)]
    subprocess.run(command, check=True, capture_output=True)  # warm the page cache and .pyc
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    imported = _imports(folder)
    mlflow = tuple(sorted(m for m in imported if m == "mlflow" or m.startswith("mlflow.")))
    slowest = tuple(sorted(imported.items(), key=lambda kv: -kv[1])[:5])
    return ColdStart(statistics.median(times), runs, mlflow, slowest)


def _imports(folder: Path) -> dict[str, float]:
    """Top-level imports of one validate run and their cumulative seconds."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "mlflow_gitops.cli",
                          "validate", str(folder)], check=True, capture_output=True, text=True)
    found: dict[str, float] = {}
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
        if not cumulative.isdigit():
            continue
        found[name.strip()] = int(cumulative) / 1e6
    return found
