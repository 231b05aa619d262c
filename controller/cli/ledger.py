"""The ledger's commands: `report` (the four delivery metrics) and what `history` asks of the
ledger (`--at`, the applied column); `audit verify` lives in mlflow_gitops.cli.audit. Each
registry keeps its own ledger; the commands read every configured registry's."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from mlflow_gitops.cli.common import (
    EXIT_OK,
    Fatal,
    add_config,
    add_env,
    add_output,
    add_path,
    fatal,
    path_of,
    print_json,
    print_table,
)
from mlflow_gitops.core.errors import GitOpsError
from mlflow_gitops.core.ledger import Entry, Query, Record

if TYPE_CHECKING:
    from mlflow_gitops.adapters.mlflow.ledger import MlflowLedger
    from mlflow_gitops.adapters.mlflow.registry import MlflowRegistry
    from mlflow_gitops.core.ports import RegistryPort
    from mlflow_gitops.loop.ledger import Ledger

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def register(sub: Any) -> None:
    p = sub.add_parser("report", help="the four delivery metrics, from the ledger",
                       description="Per environment (and model): deployments, lead time from "
                       "a model version's creation to live (median, p90), change failure rate "
                       "(deployments later rolled back or failing verification, over "
                       "deployments) and time to restore (median), from the ledger's applied "
                       "times. Environments in PATH are listed even without deployments.",
                       examples=["mlflow-gitops report", "mlflow-gitops report --since 90d "
                                 "--env production -o json"])
    add_path(p)
    p.add_argument("--since", default="30d", metavar="WHEN",
                   help="start of the window: a duration ago (30d, 12h) or an ISO time "
                   "(default: 30d)")
    add_env(p, required=False, help="only this environment")
    p.add_argument("--model", metavar="M", help="only this model")
    add_output(p)
    add_config(p)
    p.set_defaults(handler=cmd_report)


def parse_when(text: str, now: float) -> float:
    """'2d' (that long ago), or an ISO time (UTC unless it names an offset): epoch seconds."""
    match = _RELATIVE.match(text)
    if match:
        return now - float(match.group(1)) * _UNIT[match.group(2)]
    raw = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        fatal(f"{text!r} is not a time: give an ISO time (2026-12-03T14:00, UTC unless it has "
              "an offset) or a duration ago (2d, 12h, 30m)")
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def iso(ms: int | float) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def ledgers(config_path: str | None, names: Iterable[str] | None = None
            ) -> dict[str, MlflowLedger]:
    """Each configured registry's ledger (adapters.mlflow.ledger), or exit 1 when the config
    turns the ledger off."""
    from mlflow_gitops.adapters.config import load_config
    from mlflow_gitops.adapters.mlflow.ledger import MlflowLedger
    from mlflow_gitops.cli.registries import build_registries

    config = load_config(config_path)
    if not config.ledger.enabled:
        fatal("the ledger is turned off in the config (ledger: enabled: false)")
    wanted = tuple(sorted(names if names is not None else config.registries)) or ("default",)
    registries = build_registries(config_path, wanted)
    # A Named registry keeps its error wording for the ledger's reads too.
    return {name: MlflowLedger(cast("MlflowRegistry", reg), config.ledger.experiment)
            for name, reg in registries.items()}


def writer_ledger(config_path: str | None, registries: Mapping[str, RegistryPort],
                  writer: str) -> Ledger | None:
    """The ledger writer (loop.ledger.Ledger) for the registries a command writes to, or
    None when the config turns the ledger off."""
    from mlflow_gitops.adapters.config import load_config
    from mlflow_gitops.adapters.mlflow.ledger import MlflowLedger
    from mlflow_gitops.loop.ledger import Ledger

    config = load_config(config_path)
    if not config.ledger.enabled:
        return None
    from mlflow_gitops.cli.registries import mlflow_adapter

    return Ledger({name: MlflowLedger(mlflow_adapter(reg), config.ledger.experiment)
                   for name, reg in registries.items()}, writer)


def local_writer() -> str:
    """Who appends when a person runs `apply`: 'apply by <user>@<host>'."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"apply by {user}@{socket.gethostname()}"


# --- report ----------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    from mlflow_gitops.planning.delivery import report, to_json

    now = time.time()
    since = parse_when(args.since, now)
    envs, registries = _known_environments(args)
    if args.env is not None:
        envs = [args.env]
    records: list[Record] = []
    query = Query(environment=args.env, name=args.model, since_ms=int(since * 1000))
    for ledger in ledgers(args.config, registries).values():
        records.extend(ledger.iter(query))
    rows = report((r.entry for r in records), int(since * 1000), int(now * 1000),
                  environments=envs)
    if args.model is not None:
        rows = [(env, [m for m in models if m.model == args.model]) for env, models in rows]
    if args.output == "json":
        print_json(to_json(rows))
        return EXIT_OK
    print(f"Delivery since {iso(since * 1000)} ({len(records)} ledger records)")
    table = [("ENVIRONMENT", "MODEL", "DEPLOYMENTS", "LEAD TIME p50", "LEAD TIME p90",
              "FAILURE RATE", "RESTORE p50")]
    for env, models in rows:
        shown = models if args.model is not None else [env, *models]
        for m in shown:
            table.append((m.environment, m.model or "(all)", str(m.deployments),
                          _dur(m.lead_time_median), _dur(m.lead_time_p90), _rate(
                              m.change_failure_rate), _dur(m.time_to_restore_median)))
    print_table(table)
    return EXIT_OK


def _known_environments(args: argparse.Namespace) -> tuple[list[str], list[str] | None]:
    """Environment names and registries from PATH when it holds valid files; otherwise every
    configured registry and only what the ledger holds."""
    from mlflow_gitops.desired.loader import load_texts

    folder = Path(path_of(args))
    if not folder.is_dir():
        if args.path is not None:
            fatal(f"{folder}: no such folder; pass the folder of environment files")
        return [], None
    from mlflow_gitops.cli.common import read_folder

    state, _ = load_texts(read_folder(folder))
    if state is None:
        return [], None
    return [e.name for e in state.environments], list(state.registries())


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    from mlflow_gitops.policy.units import duration

    return duration(seconds)


def _rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


# --- history ---------------------------------------------------------------------------------


def history_at(args: argparse.Namespace) -> int:
    """`history MODEL --env ENV --at TIME`: which version the ledger says was live then."""
    from mlflow_gitops.planning.ledger import live_at

    if args.env is None:
        fatal("--at needs --env: which environment's version to look up")
    at = parse_when(args.at, time.time())
    at_ms = int(at * 1000)
    records: list[Record] = []
    for ledger in ledgers(args.config).values():
        records.extend(_until_entered(ledger, args.env, args.model, at_ms))
    live = live_at(records, args.env, args.model, at_ms)
    since = max((r for r in records if r.entry.entering and r.entry.to_version in live),
                key=lambda r: (r.at_ms, r.seq), default=None)
    if args.output == "json":
        print_json({"model": args.model, "environment": args.env, "at": iso(at_ms),
                    "versions": list(live), "since": _record_json(since)})
        return EXIT_OK
    if not live:
        print(f"{args.model} had no version live in {args.env} at {iso(at_ms)} "
              "(by the ledger's applied times)")
        return EXIT_OK
    versions = ", ".join(f"v{v}" for v in live)
    line = f"{args.model} in {args.env} at {iso(at_ms)}: {versions}"
    if since is not None:
        e = since.entry
        line += (f" (live since {iso(e.at_ms)}, commit {e.commit[:12] or '-'}, merged by "
                 f"{e.merged_by or 'unknown'}, {e.reason})")
    print(line)
    return EXIT_OK


def _until_entered(ledger: MlflowLedger, env: str, model: str, at_ms: int) -> list[Record]:
    """The records up to `at_ms`, newest first, back to the last one that put a version in:
    enough to replay the answer, however long the ledger."""
    out = []
    for record in ledger.iter(Query(environment=env, name=model, until_ms=at_ms,
                                    newest_first=True)):
        out.append(record)
        if record.entry.entering:
            break
    return out


def _record_json(record: Record | None) -> dict[str, Any] | None:
    if record is None:
        return None
    e = record.entry
    return {"seq": record.seq, "at": iso(e.at_ms), "version": e.to_version,
            "commit": e.commit, "merged_by": e.merged_by, "reason": e.reason}


def has_registry(config_path: str | None) -> bool:
    """Whether a registry is configured at all (else `history` stays git-only, quietly)."""
    return bool(config_path or os.environ.get("MLFLOW_TRACKING_URI"))


def applied_of(config_path: str | None, model: str, env: str | None) -> list[Entry] | None:
    """Every record that put a version of `model` into an environment: the `history` table's
    applied column. None when no ledger can be read (said on stderr)."""
    try:
        found: list[Entry] = []
        for ledger in ledgers(config_path).values():
            found.extend(r.entry for r in ledger.iter(Query(environment=env, name=model))
                         if r.entry.entering)
        return found
    except (GitOpsError, Fatal) as exc:
        print(f"mlflow-gitops: note: applied times unavailable: {exc}", file=sys.stderr)
        return None
