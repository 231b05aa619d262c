"""`diff` and `history`: what a pull request would change, and who changed what when. Both
read git (a merge computed in memory, the log of the environment files); neither writes."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow_gitops.cli.common import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    add_config,
    add_env,
    add_output,
    add_path,
    fatal,
    path_of,
    print_errors,
    print_json,
    print_table,
    require_valid,
)
from mlflow_gitops.cli.registries import build_registries, report_unreachable
from mlflow_gitops.core.ledger import Entry
from mlflow_gitops.core.model import DesiredState
from mlflow_gitops.desired import history
from mlflow_gitops.desired.history import Change

if TYPE_CHECKING:
    from mlflow_gitops.adapters.git.worktree import WorkTree


def register(sub: Any) -> None:
    p = sub.add_parser("diff", help="the plan that merging HEAD into BASE would cause",
                       description="For a pull request: merge HEAD into BASE in memory (no "
                       "checkout), validate the result and plan it against the live registry, "
                       "with gate results and the old and new version's metrics side by side. "
                       "Shows only the problems HEAD introduces; needs git 2.38 or newer. "
                       "Exit codes as plan.",
                       examples=["mlflow-gitops diff origin/main HEAD",
                                 "mlflow-gitops diff origin/main pr-branch -o markdown "
                                 "> comment.md",
                                 "mlflow-gitops diff main feature --repo ../ml-environments "
                                 "--detailed-exitcode"])
    p.add_argument("base", metavar="BASE", help="target branch or commit, e.g. origin/main")
    p.add_argument("head", metavar="HEAD", help="the pull request's branch or commit")
    add_path(p, help="folder of environment files, relative to the repository root "
             "(default: environments)")
    p.add_argument("--repo", default=".", metavar="DIR",
                   help="the local git repository (a folder; default: .)")
    p.add_argument("--detailed-exitcode", action="store_true",
                   help="exit 2 when merging would change the registry")
    add_output(p, ("text", "json", "markdown"))
    add_config(p)
    p.set_defaults(handler=cmd_diff)

    p = sub.add_parser("history", help="who assigned which version where and when",
                       description="The assignments of MODEL from the git log of the "
                       "environment files: time, author, commit, environment, old → new "
                       "version, newest first. With --output svg, a picture of which version "
                       "held which environment when (first-parent history, so a merged pull "
                       "request counts from its merge), the timeline of the web page. Where a "
                       "registry is configured, each row also says when the ledger saw it "
                       "applied; --at answers from the ledger alone.",
                       examples=["mlflow-gitops history fraud-detector",
                                 "mlflow-gitops history fraud-detector --env production "
                                 "--at 2026-12-03T14:00",
                                 "mlflow-gitops history fraud-detector --env production -o json",
                                 "mlflow-gitops history fraud-detector -o svg > timeline.svg"])
    p.add_argument("model", metavar="MODEL", help="registered model name")
    add_path(p)
    add_env(p, required=False, help="only this environment")
    p.add_argument("--at", metavar="TIME",
                   help="which version was live in --env at TIME (ISO, UTC unless it has an "
                   "offset, or a duration ago: 2d), from the ledger's applied times, not "
                   "commit dates")
    add_output(p, ("text", "json", "svg"))
    add_config(p)
    p.set_defaults(handler=cmd_history)


# --- diff ---------------------------------------------------------------------------------


def cmd_diff(args: argparse.Namespace) -> int:
    from mlflow_gitops.adapters.git.worktree import WorkTree
    from mlflow_gitops.cli.policies import diff_policy
    from mlflow_gitops.desired.loader import load_texts
    from mlflow_gitops.loop.reconciler import collect_metrics, reconcile
    from mlflow_gitops.planning.render import render_json, render_markdown, render_text

    tree = WorkTree(Path(args.repo))
    base, head = tree.rev(args.base), tree.rev(args.head)
    merged = tree.merged_tree(args.base, args.head)  # names, as the user wrote them, in errors
    folder = path_of(args).strip("/")
    merged_files = tree.files_at(merged, folder)
    if not merged_files:
        fatal(f"no environment files in '{folder}' after merging {args.head} into {args.base}; "
              "pass --path (relative to the repository root)")
    before_state, _ = load_texts(tree.files_at(base, folder), commit=base)
    after = require_valid(load_texts(merged_files, commit=head),
                   f"{folder} after merging {args.head} into {args.base}")
    registries = build_registries(args.config, after.registries())
    policy = diff_policy(Path(args.repo), base, args.config)
    result = reconcile(after, registries, previous=before_state, dry_run=True, policy=policy)
    report_unreachable(result.registry_errors, registries, args.config)
    # A pull request answers for what it changes: problems BASE already has are not its own.
    plan = replace(result.plan, errors=tuple(
        e for e in result.plan.errors if e.registry not in result.registry_errors))
    if before_state is not None:
        plan = plan.introduced_since(
            reconcile(before_state, registries, dry_run=True, policy=policy).plan)
    kept_back = len(result.plan.errors) - len(plan.errors)
    metrics = collect_metrics(result, registries, plan)
    edits = _edits(before_state, after)
    if args.output == "json":
        import json

        data = json.loads(render_json(plan, metrics))
        data["edits"] = edits
        print_json(data)
    elif args.output == "markdown":
        title = f"mlflow-gitops: merging `{args.head}` into `{args.base}`"
        lines = [f"- `{e['environment']}`: **{e['model']}** {_v(e['old'])} → {_v(e['new'])}"
                 for e in edits]
        text = render_markdown(plan, metrics, title=title)
        head_line, rest = text.split("\n", 1)
        print(head_line + "\n\nEdits in this pull request:\n\n" + "\n".join(lines or ["- none"])
              + "\n" + rest, end="")
    else:
        print_errors(plan)
        for e in edits:
            print(f"edit: {e['environment']}: {e['model']} {_v(e['old'])} → {_v(e['new'])}")
        print(render_text(plan, metrics, errors=False), end="")
    if kept_back:
        print(f"note: {kept_back} problem(s) that {args.base} already has are not shown "
              f"(mlflow-gitops plan on {args.base} lists them)", file=sys.stderr)
    if plan.failures or result.registry_errors:
        return EXIT_ERROR
    return EXIT_CHANGES if args.detailed_exitcode and plan.has_changes else EXIT_OK


def _edits(before: DesiredState | None, after: DesiredState) -> list[dict[str, Any]]:
    old_envs = before.by_name() if before else {}
    out = []
    for env in after.environments:
        old = old_envs.get(env.name)
        old_models = old.models if old else {}
        for model in sorted(set(env.models) | set(old_models)):
            a = old_models[model].version if model in old_models else None
            b = env.models[model].version if model in env.models else None
            if a != b:
                out.append({"environment": env.name, "model": model, "old": a, "new": b})
    return out


def _v(version: int | None) -> str:
    return f"v{version}" if version else "unassigned"


# --- history ------------------------------------------------------------------------------


def cmd_history(args: argparse.Namespace) -> int:
    from mlflow_gitops.adapters.git.worktree import WorkTree
    from mlflow_gitops.cli import ledger

    if args.at is not None:
        if args.output == "svg":
            fatal("--at prints a version, not a picture; drop --output svg")
        return ledger.history_at(args)

    folder_path = Path(path_of(args))
    tree = WorkTree(folder_path)
    folder = tree.relpath(folder_path)
    files = tree.files_at("HEAD", folder)
    names = {Path(p).stem: p for p in files}
    if args.env is not None and args.env not in names:
        fatal(f"no environment '{args.env}' in {folder} (environments: "
              f"{', '.join(sorted(names))})")
    if args.output == "svg":
        return _history_svg(tree, files, args.env, args.model, folder)
    entries: list[Change] = []
    for env_name, path in sorted(names.items()):
        if args.env is None or env_name == args.env:
            entries.extend(assignments(tree, path, env_name, args.model))
    entries.sort(key=lambda a: a.when, reverse=True)
    if not entries:
        fatal(f"{args.model} was never assigned in {folder}"
              + (f"/{Path(names[args.env]).name}" if args.env else ""))
    applied = ledger.applied_of(args.config, args.model, args.env) \
        if ledger.has_registry(args.config) else None
    if args.output == "json":
        print_json([{**vars(a), **({"applied": _applied(applied, a)} if applied is not None
                                   else {})} for a in entries])
        return EXIT_OK
    rows = [("MERGED", "AUTHOR", "COMMIT", "ENVIRONMENT", "CHANGE")
            + (("APPLIED",) if applied is not None else ())]
    rows += [(a.when, a.author, a.commit[:12], a.environment, f"{_v(a.old)} → {_v(a.new)}")
             + ((_applied(applied, a) or "not applied",) if applied is not None else ())
             for a in entries]
    print_table(rows)
    return EXIT_OK


def _applied(applied: list[Entry] | None, a: Change) -> str | None:
    """When the ledger saw this assignment go live: the record of its very commit, else the
    first one of that version in that environment after the commit (a merged pull request is
    applied at its merge commit); None where the ledger has none."""
    from datetime import datetime

    from mlflow_gitops.cli.ledger import iso

    if applied is None or a.new is None:
        return None
    same = [e for e in applied if e.environment == a.environment and e.to_version == a.new]
    exact = [e.at_ms for e in same if e.commit == a.commit]
    after_ms = datetime.fromisoformat(a.when).timestamp() * 1000
    later = [e.at_ms for e in same if e.at_ms >= after_ms]
    at = min(exact or later, default=None)
    return iso(at) if at is not None else None


def _history_svg(tree: WorkTree, texts: dict[str, str], env: str | None, model: str,
                 folder: str) -> int:
    """The timeline picture on stdout: the same one the web page shows for `model`, with
    the environments in the page's order when the files at HEAD are valid."""
    from datetime import datetime, timezone

    from mlflow_gitops.desired.loader import load_texts
    from mlflow_gitops.planning.overview import pipeline
    from mlflow_gitops.planning.timeline import timeline
    from mlflow_gitops.planning.timeline_svg import render_svg

    state, _ = load_texts(texts)
    order = [e.name for e in pipeline(state)] if state is not None else []
    names = sorted({Path(p).stem: p for p in texts}.items(),
                   key=lambda item: (order.index(item[0]) if item[0] in order else len(order),
                                     item[0]))
    files = {name: path for name, path in names if env is None or name == env}
    picture = timeline(model, files, {e: tree.file_log(path, first_parent=True)
                                      for e, path in files.items()})
    if not picture.segments:
        fatal(f"{model} was never assigned in {folder}")
    sys.stdout.write(render_svg(picture, datetime.now(timezone.utc)) + "\n")
    return EXIT_OK


def assignments(tree: WorkTree, path: str, env_name: str, model: str) -> list[Change]:
    """Every change of `model`'s version in `path`, newest first."""
    return history.changes(tree.file_log(path), path, env_name, model)
