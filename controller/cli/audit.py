"""`audit verify`: the ledger checked two ways. The hash chain (nothing deleted, edited,
reordered or forked) and the registry's own apply records against it (no applied change
without a ledger record: a process that died with records queued leaves such a gap)."""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from mlflow_gitops.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    add_config,
    add_output,
    add_path,
    fatal,
    path_of,
    print_json,
)


def register(sub: Any) -> None:
    p = sub.add_parser("audit", help="check the ledger's hash chain and its completeness",
                       description="Commands that check the ledger: the MLflow experiment in "
                       "each registry that records every change this tool wrote there.",
                       examples=["mlflow-gitops audit verify"])
    audit = p.add_subparsers(dest="audit_command", metavar="COMMAND", required=True,
                             help="verify: check the hash chain and look for unrecorded changes")
    v = audit.add_parser("verify", help="check that no ledger record was deleted, edited or "
                         "never written",
                         description="Read every record of each registry's ledger and check "
                         "the hash chain: each record carries the hash of the one before, so a "
                         "deleted, edited or reordered record, or two writers appending at once "
                         "(a fork), is named at the first record it concerns. Then compare the "
                         "registry's own apply records (the gitops.applied.<env> version tags) "
                         "of the environments in PATH and in the ledger with the ledger: a "
                         "change applied without a ledger record is named as a gap. Exit 1 "
                         "when the chain is broken or a change has no record.",
                         examples=["mlflow-gitops audit verify",
                                   "mlflow-gitops audit verify environments --config "
                                   "controller.yaml -o json"])
    add_path(v)
    add_config(v)
    add_output(v)
    v.set_defaults(handler=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    from mlflow_gitops.cli.ledger import ledgers
    from mlflow_gitops.planning.ledger import verify
    from mlflow_gitops.planning.ledger_gaps import applied_changes, find_gaps

    wanted = _managed(args)
    results = []
    registries = sorted(wanted) if wanted else None
    for name, ledger in ledgers(args.config, registries).items():
        records = ledger.read()
        problems = verify(records, ledger.stored_head())
        envs, models = wanted.get(name, (set(), set()))
        envs = envs | {r.entry.environment for r in records}
        models = models | {r.entry.name for r in records}
        snapshot = ledger.registry.snapshot(sorted(models)) if models and envs else None
        applied = applied_changes(snapshot, envs) if snapshot is not None else []
        gaps = find_gaps(applied, records)
        results.append({"registry": name, "experiment": ledger.experiment,
                        "records": len(records),
                        "intact": not problems and not gaps.missing,
                        "problems": [vars(p) for p in problems],
                        "gaps": [{**vars(a), "message": m}
                                 for a, m in zip(gaps.missing, gaps.messages(), strict=True)],
                        "applied_checked": gaps.checked,
                        "applied_before_ledger": gaps.before_ledger})
    if args.output == "json":
        print_json({"ledgers": results})
    else:
        for r in results:
            _print(r)
    return EXIT_OK if all(r["intact"] for r in results) else EXIT_ERROR


def _print(r: dict[str, Any]) -> None:
    where = f"ledger of registry '{r['registry']}' (experiment {r['experiment']})"
    checked = (f"{r['applied_checked']} applied change(s) checked against the registry"
               + (f", {r['applied_before_ledger']} older than the ledger not checked"
                  if r["applied_before_ledger"] else ""))
    if r["intact"]:
        print(f"{where}: {r['records']} records, chain intact; {checked}, none missing")
        return
    if r["problems"]:
        first = r["problems"][0]
        more = len(r["problems"]) - 1
        print(f"{where}: {first['message']}" + (f" ({more} more problem(s))" if more else ""),
              file=sys.stderr)
    for gap in r["gaps"]:
        print(f"{where}: {gap['message']}", file=sys.stderr)


def _managed(args: argparse.Namespace) -> dict[str, tuple[set[str], set[str]]]:
    """Per registry, the environments and models PATH names (empty when PATH is the default
    folder and it is absent or invalid: then the ledger's own names are checked)."""
    from mlflow_gitops.cli.common import read_folder
    from mlflow_gitops.desired.loader import load_texts

    folder = Path(path_of(args))
    explicit = args.path is not None or args.path_flag is not None
    if not folder.is_dir():
        if explicit:
            fatal(f"{folder}: no such folder; pass the folder of environment files")
        return {}
    state, diagnostics = load_texts(read_folder(folder))
    if state is None:
        if explicit and diagnostics:
            fatal(f"{diagnostics[0]}; fix it, or run `audit verify` without PATH to check "
                  "only what the ledger names")
        return {}
    out: dict[str, tuple[set[str], set[str]]] = defaultdict(lambda: (set(), set()))
    for env in state.environments:
        envs, models = out[env.registry]
        envs.add(env.name)
        models.update(env.models)
    return dict(out)
