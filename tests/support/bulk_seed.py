"""Unmanaged models in bulk, written straight into the SQLite database of a real MLflow
server (tests/support/servers.py): thousands of registered models in a second instead of
minutes of REST calls. The rows are those MLflow's SqlAlchemyStore writes for
`create_registered_model` + `create_model_version` (schema of MLflow 3.x, `workspace`
'default' where the column exists); the server reads them like any other model."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def add_models(database: Path, names: Sequence[str], versions: int = 1,
               source: str = "s3://bucket/unmanaged", stages: Mapping[int, str] | None = None,
               aliases: Mapping[str, int] | None = None) -> None:
    """Register `names` (each with `versions` READY versions, in `stages` or None, and
    `aliases`) in one transaction; names that already exist are left as they are."""
    stage = dict(stages or {})
    now = int(time.time() * 1000)
    with sqlite3.connect(database, timeout=30) as db:
        workspace = "workspace" in {row[1] for row in db.execute(
            "PRAGMA table_info(registered_models)")}
        extra, value = (", workspace", ", 'default'") if workspace else ("", "")
        db.executemany(
            f"INSERT OR IGNORE INTO registered_models (name, creation_time, last_updated_time"
            f"{extra}) VALUES (?, ?, ?{value})", [(n, now, now) for n in names])
        db.executemany(
            f"INSERT OR IGNORE INTO model_versions (name, version, creation_time, "
            f"last_updated_time, current_stage, source, status, storage_location{extra}) "
            f"VALUES (?, ?, ?, ?, ?, ?, 'READY', ?{value})",
            [(n, v, now, now, stage.get(v, "None"), source, source)
             for n in names for v in range(1, versions + 1)])
        db.executemany(
            f"INSERT OR IGNORE INTO registered_model_aliases (alias, version, name{extra}) "
            f"VALUES (?, ?, ?{value})",
            [(a, v, n) for n in names for a, v in (aliases or {}).items()])
