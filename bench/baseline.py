"""Measurement 3: the loop a user would otherwise write with MlflowClient, one model at a
time: read its latest Staging/Production versions and its aliases, then transition (with
archive_existing_versions) or move the alias where they differ. Same server, same state,
same run as ours."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Wanted:
    """What the environment files say, as the loop would read them: model → version."""

    production: dict[str, int]
    staging: dict[str, int]
    champion: dict[str, int]


def per_model_loop(client: Any, wanted: Wanted) -> tuple[float, int]:
    """Run the loop once; returns (seconds, changes made)."""
    changes = 0
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stages and get_latest_versions are deprecated
        for name in sorted(wanted.production):
            latest = {mv.current_stage: int(mv.version) for mv in
                      client.get_latest_versions(name, stages=["Staging", "Production"])}
            aliases = client.get_registered_model(name).aliases or {}
            for stage, want in (("Production", wanted.production[name]),
                                ("Staging", wanted.staging[name])):
                if latest.get(stage) != want:
                    client.transition_model_version_stage(
                        name, str(want), stage, archive_existing_versions=True)
                    changes += 1
            if str(aliases.get("champion")) != str(wanted.champion[name]):
                client.set_registered_model_alias(name, "champion", str(wanted.champion[name]))
                changes += 1
    return time.perf_counter() - started, changes


def wanted_from(desired: Any) -> Wanted:
    """The versions the environment files ask for, as the loop's author would read them."""
    maps = {env.name: {m: entry.version for m, entry in env.models.items()}
            for env in desired.environments}
    return Wanted(maps["production"], maps["staging"], maps["champion"])
