"""Seed the benchmark registry once and reuse it: a SQLite database under .bench/ whose
parameters are recorded beside it. Seeding runs before the server starts, as MlflowClient
calls straight on the database from one process per core (through the single-worker server
it takes about four times as long). A repair step (one bulk read through the server, then a
call only per deviation) puts back the converged state that an interrupted earlier run, or
a measurement, left changed."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench.fleet import Fleet

PROCESSES = min(4, max(2, os.cpu_count() or 2))  # SQLite has one writer at a time
OWNERSHIP_PREFIX = "gitops.env."


def database_dir(root: Path, fleet: Fleet) -> Path:
    return root / f"registry-{fleet.models}x{fleet.versions}"


def reusable(folder: Path, fleet: Fleet, mlflow_version: str) -> bool:
    params = folder / "params.json"
    if not params.exists() or not (folder / "mlflow.db").exists():
        return False
    try:
        recorded = json.loads(params.read_text())
    except ValueError:
        return False
    return bool(recorded.get("complete")) and recorded.get("key") == fleet.key(mlflow_version)


def reset(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)


def mark_complete(folder: Path, fleet: Fleet, mlflow_version: str, seconds: float) -> None:
    (folder / "params.json").write_text(json.dumps(
        {"key": fleet.key(mlflow_version), "complete": True, "seed_seconds": round(seconds, 1)},
        indent=2) + "\n")


def seed(database: Path, fleet: Fleet, processes: int = PROCESSES) -> float:
    """Create every model with its versions, stages and alias; returns the seconds taken."""
    started = time.monotonic()
    uri = f"sqlite:///{database}"
    _client(uri).search_registered_models(max_results=1)  # create the schema once, first
    names = fleet.names()
    chunks = [(uri, fleet, names[i::processes]) for i in range(processes)]
    # spawn, not fork: the parent holds a database connection that must not be shared.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        for _ in pool.map(_seed_chunk, chunks):
            pass
    return time.monotonic() - started


def _client(uri: str) -> Any:
    warnings.simplefilter("ignore")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    from mlflow import MlflowClient

    return MlflowClient(uri, uri)


def _seed_chunk(job: tuple[str, Fleet, list[str]]) -> int:
    uri, fleet, names = job
    client = _client(uri)
    for name in names:
        _seed_model(client, fleet, name)
    return len(names)


def _seed_model(client: Any, fleet: Fleet, name: str) -> None:
    _retry(lambda: client.create_registered_model(name), exists_ok=True)
    for _ in range(fleet.versions):
        _retry(lambda: client.create_model_version(
            name, source=f"s3://bench/{name}", await_creation_for=0))
    _retry(lambda: client.transition_model_version_stage(
        name, str(fleet.production), "Production"))
    _retry(lambda: client.transition_model_version_stage(name, str(fleet.staging), "Staging"))
    _retry(lambda: client.set_registered_model_alias(name, "champion", str(fleet.champion)))


def repair(client: Any, registry: Any, fleet: Fleet, names: list[str] | None = None) -> int:
    """Restore the seeded state of `names` (default: every model); returns the calls made.
    Reads in bulk through the controller's adapter, writes only what deviates."""
    snapshot = registry.snapshot(names if names is not None else fleet.names())
    calls = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names if names is not None else fleet.names():
            live = snapshot.model(name)
            if live is None or len(live.versions) != fleet.versions:
                raise RuntimeError(f"{name}: not seeded as expected; delete .bench/ and rerun")
            # Leave the stages first, then enter them, so no step needs archive_existing.
            order = sorted(live.versions.values(),
                           key=lambda lv: fleet.seeded_stage(lv.version) != "None")
            for lv in order:
                want = fleet.seeded_stage(lv.version)
                if lv.stage != want:
                    client.transition_model_version_stage(name, str(lv.version), want)
                    calls += 1
                for key in lv.tags:
                    if key.startswith(OWNERSHIP_PREFIX):
                        client.delete_model_version_tag(name, str(lv.version), key)
                        calls += 1
            if dict(live.aliases) != {"champion": fleet.champion}:
                for alias in live.aliases:
                    if alias != "champion":
                        client.delete_registered_model_alias(name, alias)
                        calls += 1
                client.set_registered_model_alias(name, "champion", str(fleet.champion))
                calls += 1
    return calls


def _retry(fn: Any, exists_ok: bool = False, attempts: int = 5) -> Any:
    """SQLite answers 'database is locked' when the seeding processes write at once."""
    from mlflow.exceptions import MlflowException

    for attempt in range(attempts):
        try:
            return fn()
        except MlflowException as exc:
            if exists_ok and exc.error_code == "RESOURCE_ALREADY_EXISTS":
                return None
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    return None
