"""`promote` and `rollback`: propose a version for an environment as a branch (and a pull
request). The starting branch, index and work tree are never touched."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow_gitops.cli.common import (
    EXIT_OK,
    add_config,
    add_env,
    add_output,
    add_path,
    add_version,
    fatal,
    path_of,
    print_json,
    require_valid,
    version_of,
)
from mlflow_gitops.cli.registries import build_registries, report_unreachable
from mlflow_gitops.core.model import DesiredState, Environment
from mlflow_gitops.core.plan import Plan

if TYPE_CHECKING:
    from mlflow_gitops.adapters.git.worktree import WorkTree


def register(sub: Any) -> None:
    for name, help_text in (("promote", "propose a version for an environment on a new branch"),
                            ("rollback", "propose the previous version again on a new branch")):
        p = sub.add_parser(name, help=help_text, description=_DESCRIPTIONS[name],
                           examples=_EXAMPLES[name])
        p.add_argument("model", metavar="MODEL", help="registered model name")
        if name == "promote":
            add_version(p, help="the model version to put into ENV, e.g. 3")
        else:
            add_version(p, help="roll back to this version instead of the one git history "
                        "had before", aliases=("--to-version", "--version", "-v"))
        add_path(p)
        add_env(p, destination=name == "promote")
        p.add_argument("--allow-emptying", action="store_true",
                       help="go ahead even when the version leaves a Production environment "
                       "with no version of MODEL (a version holds one stage)")
        default_branch = ("promote/MODEL-vN-to-ENV" if name == "promote"
                          else "rollback/MODEL-vN-in-ENV")
        p.add_argument("--branch", help=f"branch to create (default: {default_branch})")
        p.add_argument("--force", action="store_true",
                       help="create the branch even when the plan refuses the change")
        p.add_argument("--push", action="store_true", help="push the branch to --remote")
        p.add_argument("--remote", default="origin", help="git remote (default: origin)")
        p.add_argument("--open-pr", action="store_true",
                       help="push and open a pull request (GitHub) or merge request (GitLab) "
                       "whose body is the plan")
        p.add_argument("--token-file", metavar="FILE",
                       help="forge token file (default: GITHUB_TOKEN / GITLAB_TOKEN from the "
                       "environment)")
        p.add_argument("--api-url", metavar="URL",
                       help="forge API root, for GitHub Enterprise or self-hosted GitLab (e.g. "
                       "https://git.example.com/api/v4)")
        add_output(p)
        add_config(p)
        p.set_defaults(handler=cmd_promote if name == "promote" else cmd_rollback)


_EXAMPLES = {
    "promote": ["mlflow-gitops promote fraud-detector 3 --env staging",
                "mlflow-gitops promote fraud-detector 3 --env production --push --open-pr"],
    "rollback": ["mlflow-gitops rollback fraud-detector --env production",
                 "mlflow-gitops rollback fraud-detector 1 --env production --open-pr"],
}

_DESCRIPTIONS = {
    "promote": "Set MODEL to VERSION in PATH/ENV.yaml (comments and layout kept), validate, "
    "plan, and commit on a new branch from the current one, which is left untouched; a change "
    "the plan refuses makes no branch (exit 1) unless --force. "
    "With a stage target, the version leaves any other stage environment's file in the same "
    "commit; it stays live there (Waiting: moving to ENV) until ENV takes it. Only the "
    "problems this change introduces are shown, as diff does. "
    "--push pushes the branch; --open-pr also opens a pull request whose body is the plan.",
    "rollback": "Find the version ENV had before the current one in the git log of its file "
    "(or take VERSION) and propose it exactly as promote does, on a rollback/ branch.",
}


# --- promote / rollback -------------------------------------------------------------------


def cmd_promote(args: argparse.Namespace) -> int:
    version = version_of(args)
    assert version is not None
    return _propose(args, version, "promote")


def cmd_rollback(args: argparse.Namespace) -> int:
    from mlflow_gitops.adapters.git.worktree import WorkTree
    from mlflow_gitops.cli.review import assignments

    target = version_of(args, required=False)
    tree = WorkTree(Path(path_of(args)))
    env_file = _env_file(tree, path_of(args), args.env, "HEAD")
    history = assignments(tree, env_file, args.env, args.model)
    if target is not None:
        return _propose(args, target, "rollback")
    current = history[0].new if history else None
    earlier = next((a.new for a in history if a.new is not None and a.new != current), None)
    if earlier is None:
        fatal(f"no earlier version of {args.model} in {env_file}'s git history; "
              f"pass the version: 'rollback {args.model} N --env {args.env}'")
    return _propose(args, earlier, "rollback")


def _propose(args: argparse.Namespace, version: int, kind: str) -> int:
    from mlflow_gitops.adapters.git.worktree import WorkTree
    from mlflow_gitops.desired.edits import promotion_edit
    from mlflow_gitops.desired.loader import load_texts

    tree = WorkTree(Path(path_of(args)))
    folder = tree.relpath(Path(path_of(args)))
    base_branch = tree.current_branch()
    base = tree.rev("HEAD")
    files = tree.files_at(base, folder)
    desired = require_valid(load_texts(files, commit=base), f"{folder} at {base_branch}")
    env = _environment(desired, args.env)
    current = env.models[args.model].version if args.model in env.models else None
    if current == version:
        fatal(f"{args.model} is already at v{version} in {env.name} ({env.file}); "
              "nothing to propose")
    entry_kind = _check_version(args, env, args.model, version)
    edit = promotion_edit(desired, files, env, args.model, version,
                          "prompt" if entry_kind == "prompt" else "model")
    changed = dict(edit.changed)
    moved_out = [desired.by_name()[name] for name in edit.moved_out]
    verb = "promoting" if kind == "promote" else "rolling back"
    for other in moved_out:
        if other.target.value.lower() == "production" and not args.allow_emptying:
            fatal(f"{verb} {args.model} in {env.name} to v{version} would also remove v{version} "
                  f"from {other.name} (a version holds one stage), leaving {other.name} "
                  f"without {args.model}; to do that deliberately pass --allow-emptying, or "
                  f"first change {other.name}: mlflow-gitops rollback {args.model} "
                  f"--env {other.name}")
    after = require_valid(load_texts({**files, **changed}, commit=base), "the edited files")
    plan, plan_text, markdown = _plan_views(args, after, desired)
    refusals = [e for e in plan.errors if e.model == args.model
                and e.environment in {env.name, *(o.name for o in moved_out)}
                and e.kind not in ("waiting", "held")]
    if refusals and not args.force:
        fatal(f"the plan refuses it: {refusals[0]}; no branch created (fix that, or pass "
              "--force to create the branch anyway)")
    before, title, body = edit.before, edit.title(kind), edit.notes
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", args.model)
    branch = args.branch or (f"promote/{slug}-v{version}-to-{env.name}" if kind == "promote"
                             else f"rollback/{slug}-v{version}-in-{env.name}")
    forge_remote = _forge_remote(args, tree) if args.open_pr else None  # fail before pushing
    reused = tree.branch_with(branch, base, changed)
    commit = reused or tree.commit_on_new_branch(branch, base, changed,
                                                 title + ("\n" + body if body else ""))
    text = args.output == "text"
    if text:
        print(f"{'Reusing existing' if reused else 'Created'} branch {branch} (commit "
              f"{commit[:12]}) from {base_branch}, which is unchanged:")
        print(f"  {env.file}: {args.model} {before} → v{version}")
        for o in moved_out:
            print(f"  {o.file}: {args.model} v{version} removed (it leaves {o.name}: a version "
                  "holds one stage)")
        print("\nWhat merging would change:\n" + plan_text, end="")
    if args.push or args.open_pr:
        tree.push(args.remote, branch)
        if text:
            print(f"Pushed {branch} to {args.remote}.")
    url = None
    if forge_remote is not None:
        from mlflow_gitops.adapters import forge

        remote_url, token = forge_remote
        url = forge.open_pull_request(remote_url, branch, base_branch, title,
                                      markdown + body, token, api_url=args.api_url)
        if text:
            print(f"Opened {url}")
    if not text:
        import json

        from mlflow_gitops.planning.render import render_json

        print_json({"branch": branch, "commit": commit, "base_branch": base_branch,
                    "reused": reused is not None, "title": title,
                    "edits": [{"file": env.file, "environment": env.name, "model": args.model,
                               "old": current, "new": version}]
                    + [{"file": o.file, "environment": o.name, "model": args.model,
                        "old": version, "new": None} for o in moved_out],
                    "pushed": bool(args.push or args.open_pr), "pull_request": url,
                    "plan": json.loads(render_json(plan))})
    return EXIT_OK


def _forge_remote(args: argparse.Namespace, tree: WorkTree) -> tuple[str, str]:
    """The remote's URL and the forge token, checked before anything is pushed."""
    from mlflow_gitops.adapters import forge

    remote_url: str = tree.remote_url(args.remote)
    kind = forge.parse_remote(remote_url, args.api_url).kind
    return remote_url, forge.token_from(args.token_file, kind)


def _check_version(args: argparse.Namespace, env: Environment, model: str,
                   version: int) -> str:
    """The version must exist in the environment's registry before anyone reviews it; what
    the name is there ("model" or "prompt"), so the edit goes under `models:` or `prompts:`
    (a name the file already lists keeps its section)."""
    from mlflow_gitops.core.errors import RegistryError

    registry = build_registries(args.config, (env.registry,))[env.registry]
    try:
        snapshot = registry.snapshot([model])
    except RegistryError as exc:
        if exc.transient:
            raise  # unreachable: named as every command names it
        fatal(f"cannot check {model} v{version} in registry '{env.registry}': {exc}")
    live = snapshot.model(model)
    if live is None:
        fatal(f"no registered model or prompt '{model}' in registry '{env.registry}'")
    if version not in live.versions:
        from mlflow_gitops.planning.planner import version_ranges

        fatal(f"{model} v{version} does not exist in registry '{env.registry}' "
              f"(known versions: {version_ranges(sorted(live.versions))})")
    if live.is_prompt and env.target.kind == "stage":
        fatal(f"'{model}' is a prompt, and prompts have no stages: {env.name} targets "
              f"{env.target}; promote it to an environment whose target is an alias")
    return str(live.kind)


def _plan_views(args: argparse.Namespace, after: DesiredState,
                before: DesiredState) -> tuple[Plan, str, str]:
    """What merging the branch would change, as text for the terminal and markdown for the PR."""
    from mlflow_gitops.cli.policies import local_policy
    from mlflow_gitops.loop.reconciler import collect_metrics, reconcile
    from mlflow_gitops.planning.render import render_markdown, render_text

    registries = build_registries(args.config, after.registries())
    policy = local_policy()
    result = reconcile(after, registries, previous=before, dry_run=True, policy=policy)
    report_unreachable(result.registry_errors, registries, args.config)
    # Like diff: what this branch changes and the problems it brings, not those of others.
    plan = result.plan.introduced_since(
        reconcile(before, registries, dry_run=True, policy=policy).plan)
    metrics = collect_metrics(result, registries, plan)
    return plan, render_text(plan, metrics), render_markdown(plan, metrics)


# --- shared -------------------------------------------------------------------------------


def _env_file(tree: WorkTree, path: str, env_name: str, rev: str) -> str:
    folder = tree.relpath(Path(path))
    files = tree.files_at(rev, folder)
    for file in files:
        if Path(file).stem == env_name:
            return str(file)
    fatal(f"no environment '{env_name}' in {folder} (environments: "
          f"{', '.join(sorted(Path(f).stem for f in files))})")


def _environment(desired: DesiredState, name: str) -> Environment:
    envs = desired.by_name()
    if name not in envs:
        fatal(f"no environment '{name}' (environments: {', '.join(sorted(envs))})")
    return envs[name]
