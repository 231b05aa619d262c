"""Where the time of a pass goes, measured separately so BENCHMARKS.md can say what is the
registry's and what is ours: the server answering the two bulk reads (plain HTTP, the body
read but not parsed), and parsing and validating the environment files of a new commit."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.stats import median


@dataclass(frozen=True)
class Breakdown:
    models_page_seconds: float  # GET registered-models/search, one page
    versions_page_seconds: float  # GET model-versions/search, one page
    models_page_bytes: int
    versions_page_bytes: int
    load_seconds: float  # load_texts() of the three environment files

    @property
    def server_seconds(self) -> float:
        return self.models_page_seconds + self.versions_page_seconds


def measure(uri: str, model_page: int, version_page: int, files: dict[str, str],
            repeats: int) -> Breakdown:
    import requests
    from mlflow_gitops.desired.loader import load_texts

    session = requests.Session()
    timings: dict[str, list[float]] = {"models": [], "versions": []}
    sizes: dict[str, int] = {}
    requests_ = {
        "models": ("registered-models/search",
                   {"max_results": model_page, "order_by": ["name ASC"]}),
        "versions": ("model-versions/search",
                     {"max_results": version_page,
                      "order_by": ["name ASC", "version_number ASC"]}),
    }
    for _ in range(repeats):
        for key, (endpoint, params) in requests_.items():
            started = time.perf_counter()
            response = session.get(f"{uri}/api/2.0/mlflow/{endpoint}", params=params,
                                   timeout=60)
            body = response.content
            timings[key].append(time.perf_counter() - started)
            response.raise_for_status()
            sizes[key] = len(body)
    loads = []
    for _ in range(repeats):
        started = time.perf_counter()
        state, _ = load_texts(files, commit="0" * 40)
        loads.append(time.perf_counter() - started)
        assert state is not None
    return Breakdown(median(timings["models"]), median(timings["versions"]), sizes["models"],
                     sizes["versions"], median(loads))


def import_rss_mib(python: str, pythonpath: str | None) -> tuple[float, float, float]:
    """RSS of a fresh interpreter (MiB): bare, after importing the controller's own modules
    for `run`, and after also importing the MLflow client modules the adapter uses."""
    import json
    import os
    import subprocess

    script = (
        "import json\n"
        "def rss():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmRSS'):\n"
        "            return int(line.split()[1]) / 1024\n"
        "out = [rss()]\n"
        "import mlflow_gitops.cli.run, mlflow_gitops.loop.runner\n"
        "import mlflow_gitops.adapters.git.source\n"
        "import mlflow_gitops.adapters.http, mlflow_gitops.adapters.metrics\n"
        "out.append(rss())\n"
        "import mlflow_gitops.adapters.mlflow.registry as m\n"
        "m.MlflowRegistry('http://127.0.0.1:1')\n"
        "import mlflow.store.model_registry.rest_store, mlflow.store.tracking.rest_store\n"
        "out.append(rss())\n"
        "print(json.dumps(out))\n")
    env = {**os.environ, **({"PYTHONPATH": pythonpath} if pythonpath else {})}
    done = subprocess.run([python, "-c", script], capture_output=True, text=True, env=env,
                          check=True, timeout=120)
    bare, controller, with_mlflow = json.loads(done.stdout.strip().splitlines()[-1])
    return bare, controller, with_mlflow
