"""Commands on a local folder of environment files: validate, plan, apply, status."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow_gitops.cli.common import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    add_config,
    add_output,
    add_path,
    check_stages,
    fatal,
    folder_commit,
    known_registries,
    known_sources,
    load_desired,
    path_of,
    print_errors,
    print_json,
    print_table,
    read_folder,
    stageless_registries,
)
from mlflow_gitops.cli.registries import build_registries, report_unreachable
from mlflow_gitops.core.states import State

if TYPE_CHECKING:
    from mlflow_gitops.core.model import Environment
    from mlflow_gitops.core.plan import Change, ModelError
    from mlflow_gitops.core.ports import RegistryPort
    from mlflow_gitops.loop.executor import Applied
    from mlflow_gitops.loop.reconciler import PassResult


def register(sub: Any) -> None:
    p = sub.add_parser("validate", help="check environment files offline (schema + cross-file)",
                       description="Validate every environment file and the files together. "
                       "Offline: no registry is contacted. Exit 0 valid, 1 invalid.",
                       examples=["mlflow-gitops validate",
                                 "mlflow-gitops validate path/to/environments -o json"])
    add_path(p)
    add_config(p)
    add_output(p)
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser("plan", help="show what apply would change",
                       description="Compare the environment files with the live registry and "
                       "print what apply would change, with gate results and the metrics of the "
                       "old and new version side by side. Per-model errors go to stderr. "
                       "Exit 0 (or 2 with --detailed-exitcode when changes are pending), "
                       "1 on errors.",
                       examples=["mlflow-gitops plan",
                                 "mlflow-gitops plan --detailed-exitcode   # 2: changes pending",
                                 "mlflow-gitops plan -o markdown > plan.md"])
    add_path(p)
    add_config(p)
    add_output(p, ("text", "json", "markdown"))
    p.add_argument("--detailed-exitcode", action="store_true",
                   help="exit 2 when there are changes to apply (as terraform plan)")
    p.set_defaults(handler=cmd_plan)

    p = sub.add_parser("apply", help="reconcile the registry with a local folder once",
                       description="One reconcile from a local folder: plan, then write each "
                       "change and its gitops.env.<environment> lineage tag. A failing model "
                       "never stops the others; per-model errors go to stderr. "
                       "Exit 0 converged, 1 some model failed.",
                       examples=["mlflow-gitops apply",
                                 "mlflow-gitops apply --dry-run -o json"])
    add_path(p)
    add_config(p)
    add_output(p)
    p.add_argument("--dry-run", action="store_true", help="plan only: make no writes")
    p.add_argument("--allow-dirty", action="store_true",
                   help="apply uncommitted edits of PATH too; their lineage tag is the "
                   "commit with a -dirty suffix (default: refuse)")
    p.set_defaults(handler=cmd_apply)

    p = sub.add_parser("status", help="desired vs live per environment and model",
                       description="Per environment and model: desired version, live version "
                       "and Synced / OutOfSync / Error. With --model, every version of that "
                       "model with its stage, aliases, and the environment and commit that set "
                       "them.",
                       examples=["mlflow-gitops status",
                                 "mlflow-gitops status --model fraud-detector"])
    add_path(p)
    add_config(p)
    add_output(p)
    p.add_argument("--model", "-m", metavar="MODEL", help="show every version of MODEL")
    p.set_defaults(handler=cmd_status)


def cmd_validate(args: argparse.Namespace) -> int:
    from mlflow_gitops.desired.loader import load_texts

    files = read_folder(Path(path_of(args)))
    state, diagnostics = load_texts(files, known_registries=known_registries(args.config),
                                    known_sources=known_sources(args.config))
    if state is not None:
        from mlflow_gitops.desired.stageless import stage_problems

        diagnostics = stage_problems(state, stageless_registries(args.config))
        state = None if diagnostics else state
    if args.output == "json":
        print_json({"valid": state is not None, "files": sorted(files),
                    "diagnostics": [d.to_dict() for d in diagnostics]})
        return EXIT_OK if state is not None else EXIT_ERROR
    if state is None:
        for d in diagnostics:
            print(str(d), file=sys.stderr)
        print(f"{len(diagnostics)} problem(s) in {len(files)} file(s)", file=sys.stderr)
        return EXIT_ERROR
    models = sum(len(e.models) for e in state.environments)
    print(f"{len(files)} environment file(s) valid: "
          + ", ".join(f"{e.name} ({e.target}, {_counted(e)})"
                      for e in state.environments) + f"; {models} assignment(s)")
    return EXIT_OK


def _counted(env: Environment) -> str:
    """'2 model(s)', or '1 model(s), 1 prompt(s)' where the file lists prompts."""
    prompts = sum(1 for e in env.models.values() if e.kind == "prompt")
    text = f"{len(env.models) - prompts} model(s)"
    return text + (f", {prompts} prompt(s)" if prompts else "")


def _pass(args: argparse.Namespace, dry_run: bool,
          progress: Callable[[Applied], None] | None = None
          ) -> tuple[PassResult, dict[str, RegistryPort]]:
    from mlflow_gitops.adapters.git.local import commit_author
    from mlflow_gitops.cli.ledger import local_writer, writer_ledger
    from mlflow_gitops.cli.policies import local_policy
    from mlflow_gitops.loop.reconciler import reconcile

    path = Path(path_of(args))
    commit = folder_commit(path)
    if not dry_run and commit.endswith("-dirty") and not args.allow_dirty:
        fatal(f"{path} has uncommitted changes: commit them first (each change is tagged "
              "with the commit it came from), or pass --allow-dirty to apply them tagged "
              f"{commit[:12]}…-dirty")
    if not dry_run and commit.endswith("-dirty"):
        print(f"mlflow-gitops: warning: applying uncommitted changes of {path}; lineage tag "
              f"{commit[:12]}…-dirty", file=sys.stderr)
    desired = load_desired(path, commit=commit,
                           known_registries=known_registries(args.config),
                           known_sources=known_sources(args.config))
    check_stages(desired, args.config)
    registries = build_registries(args.config, desired.registries())
    ledger = None if dry_run else writer_ledger(args.config, registries, local_writer())
    merged_by = commit_author(path, commit) if ledger is not None else ""
    result = reconcile(desired, registries, dry_run=dry_run, policy=local_policy(args.config),
                       progress=progress, ledger=ledger, merged_by=merged_by)
    if ledger is not None and ledger.state.pending:
        print(f"mlflow-gitops: warning: the ledger could not record {ledger.state.pending} "
              f"applied change(s) ({ledger.state.last_error}); the registry changes stand, "
              "and `mlflow-gitops audit verify` shows them as unrecorded", file=sys.stderr)
    report_unreachable(result.registry_errors, registries, args.config)
    if result.registry_errors:  # said once above, not again for every model on it
        result = replace(result, plan=replace(result.plan, errors=tuple(
            e for e in result.plan.errors if e.registry not in result.registry_errors)))
    return result, registries


def cmd_plan(args: argparse.Namespace) -> int:
    from mlflow_gitops.loop.reconciler import collect_metrics
    from mlflow_gitops.planning.render import render_json, render_markdown, render_text

    result, registries = _pass(args, dry_run=True)
    metrics = collect_metrics(result, registries)
    if args.output == "text":
        print_errors(result.plan)
        print(render_text(result.plan, metrics, errors=False), end="")
    elif args.output == "json":
        print(render_json(result.plan, metrics))
    else:
        print(render_markdown(result.plan, metrics), end="")
    if not result.ok:
        return EXIT_ERROR
    if args.detailed_exitcode and result.plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


def cmd_apply(args: argparse.Namespace) -> int:
    from mlflow_gitops.planning.render import render_json, render_text

    if args.dry_run:
        result, _ = _pass(args, dry_run=True)
        if args.output == "json":
            print(render_json(result.plan))
        else:
            print_errors(result.plan)
            print(render_text(result.plan, errors=False), end="")
        return EXIT_OK if result.ok else EXIT_ERROR

    def progress(done: Applied) -> None:
        if args.output == "text":
            print(f"  applied {done.change.environment}: {done.change.describe()} "
                  f"({done.seconds:.2f}s)", flush=True)

    result, _ = _pass(args, dry_run=False, progress=progress)
    applied = result.applied
    assert applied is not None
    if args.output == "json":
        print_json({"commit": result.plan.commit, "ok": result.ok,
                    "applied": [{**_change_dict(a.change), "seconds": a.seconds}
                                for a in applied.applied],
                    "errors": [_error_dict(e) for e in applied.errors if e.is_failure],
                    "waiting": [_error_dict(e) for e in applied.errors if e.kind == "waiting"],
                    "held": [_error_dict(e) for e in applied.errors if e.kind == "held"],
                    "status": [row.to_dict() for row in result.status],
                    "copies": [vars(c) for c in result.copies]})
    else:
        for c in result.copies:
            print(f"  copied {c.source_registry}/{c.source_model} v{c.source_version} → "
                  f"{c.registry}/{c.model} v{c.version} (for {c.environment})")
        from mlflow_gitops.planning.render import kept_back_line

        for error in applied.errors:
            if error.is_failure:
                print(f"  error {error}", file=sys.stderr)
            else:
                print(f"  {kept_back_line(error)}")
        failed_models = {(e.environment, e.model) for e in applied.errors if e.is_failure}
        kept = {(e.environment, e.model) for e in applied.errors if not e.is_failure}
        print(f"Apply {'complete' if result.ok else 'incomplete'}: "
              f"{len(applied.applied)} change(s) applied, {len(failed_models)} model(s) "
              f"not converged" + (f", {len(kept)} waiting or held." if kept else "."))
    return EXIT_OK if result.ok else EXIT_ERROR


def _error_dict(error: ModelError) -> dict[str, Any]:
    return vars(error) | {"gates": [vars(g) for g in error.gates]}


def _change_dict(change: Change) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(change)


def cmd_status(args: argparse.Namespace) -> int:
    if args.model:
        return _model_status(args)
    result, _ = _pass(args, dry_run=True)
    rows = result.status
    if args.output == "json":
        print_json({"commit": result.plan.commit, "environments": [r.to_dict() for r in rows],
                    "registry_errors": result.registry_errors})
    else:
        from mlflow_gitops.planning.overview import pipeline

        table = [("ENVIRONMENT", "TARGET", "MODEL", "DESIRED", "LIVE", "SYNC")]
        for env in pipeline(result.desired):  # the page's column order
            mine = [r for r in rows if r.environment == env.name]
            for r in mine:
                table.append((r.environment, r.target,
                              f"{r.model} (prompt)" if r.kind == "prompt" else r.model,
                              f"v{r.desired}" if r.desired else "-",
                              ", ".join(f"v{v}" for v in r.live) or "-", r.sync))
            if not mine:  # listed, so nobody wonders where it went
                table.append((env.name, str(env.target), "(no models)", "-", "-",
                              str(State.Synced)))
        print_table(table)
        from mlflow_gitops.policy.evidence import when

        for r in rows:
            if r.message and r.sync != State.Synced:
                until = f" — until {when(r.until)}" if r.sync == State.Waiting and r.until \
                    else ""
                print(f"  {r.environment}/{r.model}: {r.message}{until}")
    return EXIT_ERROR if any(r.sync == State.Error for r in rows) or result.registry_errors \
        else EXIT_OK


def _model_status(args: argparse.Namespace) -> int:
    from mlflow_gitops.planning.status import model_versions

    path = Path(path_of(args))
    desired = load_desired(path) if path.exists() else None
    names = desired.registries() if desired else ("default",)
    registries = build_registries(args.config, names)
    found: list[tuple[str, Any]] = []
    for name, registry in registries.items():
        live = registry.snapshot([args.model]).model(args.model)
        if live is not None:
            scoped = None
            if desired is not None:
                from mlflow_gitops.core.model import DesiredState

                scoped = DesiredState(tuple(e for e in desired.environments
                                            if e.registry == name), desired.commit)
            found.append((name, model_versions(live, scoped)))
    if not found:
        fatal(f"model '{args.model}' not found in registr{'ies' if len(names) > 1 else 'y'} "
              f"{', '.join(names)}")
    if args.output == "json":
        print_json({"model": args.model, "registries": {
            name: [v.to_dict() for v in versions] for name, versions in found}})
        return EXIT_OK
    for name, versions in found:
        if len(found) > 1 or name != "default":
            print(f"registry {name}:")
        table = [("VERSION", "STAGE", "ALIASES", "SERVING IN", "SET BY (environment@commit)")]
        for v in versions:
            table.append((f"v{v.version}", v.stage,
                          ", ".join(f"@{a}" for a in v.aliases) or "-",
                          ", ".join(v.serving_in) or "-",
                          ", ".join(f"{e}@{_short(c)}" for e, c in v.environments) or "-"))
        print_table(table)
    return EXIT_OK


def _short(commit: str) -> str:
    """A lineage commit as people read it: 12 characters, keeping the -dirty marker."""
    return commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")
