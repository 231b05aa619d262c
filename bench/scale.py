"""Measurement 6: a pass costs what is managed, not what is registered.
Two registries of different sizes (5,000 and 20,000 registered models) hold the same 100
managed models; the rest are unmanaged models with two versions each, written straight into
the server's SQLite database (tests/support/bulk_seed.py: seconds instead of an hour of
REST calls). For each: a converged pass in-process through the controller's adapter (time,
and its calls counted by the CountingProxy), side by side with reading the whole registry
the way a pass did before (every page of both searches, JSON parsed)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mlflow_gitops.adapters.mlflow.registry import MODEL_PAGE, VERSION_PAGE, MlflowRegistry
from mlflow_gitops.loop.reconciler import reconcile

from bench.fleet import Fleet
from bench.stats import median
from tests.support.bulk_seed import add_models
from tests.support.counting_proxy import CountingProxy
from tests.support.servers import MlflowServer

MANAGED = Fleet(models=100, versions=5, prefix="managed")
SIZES = (5000, 20000)
SEED_FORMAT = 1


@dataclass
class Size:
    registered: int
    pass_seconds: list[float] = field(default_factory=list)
    pass_reads: int = 0
    pass_writes: int = 0
    full_seconds: list[float] = field(default_factory=list)
    full_calls: int = 0
    full_bytes: int = 0
    seed_seconds: float | None = None  # None: reused


@dataclass
class ScaleFigures:
    managed: int = MANAGED.models
    sizes: list[Size] = field(default_factory=list)

    def ratio(self, size: Size) -> float:
        return median(size.pass_seconds) / median(size.full_seconds)

    @property
    def flat(self) -> float:
        """Pass time at the largest size over the smallest (1.0 = flat)."""
        return median(self.sizes[-1].pass_seconds) / median(self.sizes[0].pass_seconds)


def measure(workdir: Path, repeats: int, say: Callable[[str], None]) -> ScaleFigures:
    out = ScaleFigures()
    for registered in SIZES:
        out.sizes.append(_one_size(workdir / f"scale-{registered}", registered, repeats, say))
    return out


def _one_size(folder: Path, registered: int, repeats: int, say: Callable[[str], None]) -> Size:
    size = Size(registered)
    params = {"registered": registered, "managed": MANAGED.models, "format": SEED_FORMAT}
    stamp = folder / "params.json"
    reuse = stamp.exists() and json.loads(stamp.read_text()) == params
    if not reuse:
        shutil.rmtree(folder, ignore_errors=True)
    say(f"6. registry of {registered:,} models ({MANAGED.models} managed): "
        f"{'reusing' if reuse else 'creating'} {folder}")
    with MlflowServer(folder) as server:
        if not reuse:
            started = time.monotonic()
            database = folder / "mlflow.db"
            add_models(database, MANAGED.names(), MANAGED.versions, "s3://bench/managed",
                       {MANAGED.production: "Production", MANAGED.staging: "Staging"},
                       {"champion": MANAGED.champion})
            unmanaged = [f"unmanaged-{i:06d}" for i in range(registered - MANAGED.models)]
            for start in range(0, len(unmanaged), 5000):
                add_models(database, unmanaged[start:start + 5000], 2, "s3://bench/other")
            size.seed_seconds = time.monotonic() - started
            stamp.write_text(json.dumps(params))
        desired = MANAGED.desired(MANAGED.files(), commit="d" * 40)
        direct = MlflowRegistry(server.uri)
        for _ in range(repeats + 1):  # the first one warms the server's caches
            started = time.perf_counter()
            result = reconcile(desired, {"default": direct}, previous=desired)
            size.pass_seconds.append(time.perf_counter() - started)
            if not result.ok or result.plan.changes:
                raise RuntimeError(f"bench: the {registered:,}-model registry is not converged "
                                   f"({len(result.plan.changes)} changes); delete {folder}")
        size.pass_seconds = size.pass_seconds[1:]
        with CountingProxy(server.uri) as proxy:
            reconcile(desired, {"default": MlflowRegistry(proxy.uri)}, previous=desired)
            size.pass_reads, size.pass_writes = proxy.reads(), proxy.writes()
        for _ in range(max(1, repeats // 2)):
            seconds, calls, body = read_everything(server.uri)
            size.full_seconds.append(seconds)
            size.full_calls, size.full_bytes = calls, body
    return size


def read_everything(uri: str) -> tuple[float, int, int]:
    """Every page of both searches, as the pass read before it read only managed models:
    (seconds, calls, bytes). JSON parsed, not turned into objects (a lower bound)."""
    import requests

    session = requests.Session()
    calls = total = 0
    started = time.perf_counter()
    for endpoint, params in (
            ("registered-models/search",
             {"max_results": MODEL_PAGE, "order_by": ["name ASC"]}),
            ("model-versions/search",
             {"max_results": VERSION_PAGE, "order_by": ["name ASC", "version_number ASC"]})):
        token = None
        while True:
            response = session.get(f"{uri}/api/2.0/mlflow/{endpoint}", timeout=300,
                                   params={**params, **({"page_token": token} if token else {})})
            response.raise_for_status()
            calls += 1
            total += len(response.content)
            token = response.json().get("next_page_token")
            if not token:
                break
    return time.perf_counter() - started, calls, total
