"""The pull-request workflow: `promote` and `rollback` open a branch (and a PR), `diff` shows
a reviewer what merging would change, `history` reads the audit trail from the git log."""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.cli._common import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    add_config,
    add_output,
    build_registries,
    fatal,
    print_json,
)
from controller.model import DesiredState, Environment


def register(sub: Any) -> None:
    for name, help_text in (("promote", "propose a version for an environment on a new branch"),
                            ("rollback", "propose the previous version again on a new branch")):
        p = sub.add_parser(name, help=help_text, description=_DESCRIPTIONS[name])
        p.add_argument("model", metavar="MODEL")
        if name == "promote":
            p.add_argument("--version", "-v", type=int, required=True, metavar="N")
            p.add_argument("--to", dest="env", required=True, metavar="ENV",
                           help="environment name (the file's stem, e.g. production)")
        else:
            p.add_argument("--env", required=True, metavar="ENV")
            p.add_argument("--to-version", type=int, metavar="N",
                           help="roll back to N instead of the version git history had before")
        p.add_argument("--path", default="environments",
                       help="folder of environment files in the repository (default: "
                       "environments)")
        default_branch = ("promote/MODEL-vN-to-ENV" if name == "promote"
                          else "rollback/MODEL-vN-in-ENV")
        p.add_argument("--branch", help=f"branch to create (default: {default_branch})")
        p.add_argument("--push", action="store_true", help="push the branch to --remote")
        p.add_argument("--remote", default="origin", help="git remote (default: origin)")
        p.add_argument("--open-pr", action="store_true",
                       help="push and open a pull request (GitHub) or merge request (GitLab) "
                       "whose body is the plan")
        p.add_argument("--token-file", help="forge token file (default: GITHUB_TOKEN / "
                       "GITLAB_TOKEN from the environment)")
        p.add_argument("--api-url", help="forge API root, for GitHub Enterprise or self-hosted "
                       "GitLab (e.g. https://git.example.com/api/v4)")
        add_config(p)
        p.set_defaults(handler=cmd_promote if name == "promote" else cmd_rollback)

    p = sub.add_parser("diff", help="the plan that merging HEAD into BASE would cause",
                       description="For a pull request: merge HEAD into BASE in memory (no "
                       "checkout), validate the result and plan it against the live registry, "
                       "with gate results and the old and new version's metrics side by side. "
                       "Exit codes as plan.")
    p.add_argument("base", metavar="BASE", help="target branch or commit, e.g. origin/main")
    p.add_argument("head", metavar="HEAD", help="the pull request's branch or commit")
    p.add_argument("--repo", default=".", help="the repository (default: .)")
    p.add_argument("--path", default="environments",
                   help="folder of environment files in the repository (default: environments)")
    p.add_argument("--detailed-exitcode", action="store_true",
                   help="exit 2 when merging would change the registry")
    add_output(p, ("text", "json", "markdown"))
    add_config(p)
    p.set_defaults(handler=cmd_diff)

    p = sub.add_parser("history", help="who assigned which version where and when",
                       description="The assignments of MODEL from the git log of the "
                       "environment files: time, author, commit, environment, old → new "
                       "version, newest first.")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--env", metavar="ENV", help="only this environment")
    p.add_argument("--path", default="environments",
                   help="folder of environment files (default: environments)")
    add_output(p)
    p.set_defaults(handler=cmd_history)


_DESCRIPTIONS = {
    "promote": "Set MODEL to version N in environments/ENV.yaml (comments and layout kept), "
    "validate, and commit on a new branch from the current one, which is left untouched. "
    "With a stage target, the version leaves any other stage environment in the same commit. "
    "--push pushes the branch; --open-pr also opens a pull request whose body is the plan.",
    "rollback": "Find the version ENV had before the current one in the git log of its file "
    "(or take --to-version) and propose it exactly as promote does, on a rollback/ branch.",
}


@dataclass(frozen=True)
class Assignment:
    when: str
    author: str
    commit: str
    subject: str
    environment: str
    model: str
    old: int | None
    new: int | None


# --- promote / rollback -------------------------------------------------------------------


def cmd_promote(args: argparse.Namespace) -> int:
    return _propose(args, args.version, "promote")


def cmd_rollback(args: argparse.Namespace) -> int:
    from controller.adapters.gitworktree import WorkTree

    tree = WorkTree(Path(args.path))
    env_file = _env_file(tree, args.path, args.env, "HEAD")
    history = _assignments(tree, env_file, args.env, args.model)
    if args.to_version is not None:
        return _propose(args, args.to_version, "rollback")
    current = history[0].new if history else None
    earlier = next((a.new for a in history if a.new is not None and a.new != current), None)
    if earlier is None:
        fatal(f"no earlier version of {args.model} in {env_file}'s git history; "
              "pass --to-version N")
    return _propose(args, earlier, "rollback")


def _propose(args: argparse.Namespace, version: int, kind: str) -> int:
    from controller import yamledit
    from controller.adapters.gitworktree import WorkTree
    from controller.desired import load_texts

    tree = WorkTree(Path(args.path))
    folder = tree.relpath(Path(args.path))
    base_branch = tree.current_branch()
    base = tree.rev("HEAD")
    files = tree.files_at(base, folder)
    desired = _valid(load_texts(files, commit=base), f"{folder} at {base_branch}")
    env = _environment(desired, args.env)
    current = env.models[args.model].version if args.model in env.models else None
    if current == version:
        fatal(f"{args.model} is already at v{version} in {env.name} ({env.file}); "
              "nothing to propose")
    registry, snapshot = _check_version(args, env, args.model, version)
    changed = {env.file: yamledit.set_model_version(files[env.file], args.model, version)}
    moved_out = []
    if env.target.kind == "stage":
        for other in desired.environments:
            entry = other.models.get(args.model)
            if (other.name != env.name and other.target.kind == "stage"
                    and other.registry == env.registry and entry and entry.version == version):
                changed[other.file] = yamledit.remove_model(files[other.file], args.model)
                moved_out.append(other.name)
    after = _valid(load_texts({**files, **changed}, commit=base), "the edited files")
    before = f"v{current}" if current else "unassigned"
    if kind == "promote":
        title = f"Promote {args.model} to v{version} in {env.name} ({before} → v{version})"
    else:
        title = f"Roll back {args.model} in {env.name}: {before} → v{version}"
    body = "".join(f"\n{args.model} v{version} leaves {name}: a version holds one stage."
                   for name in moved_out)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", args.model)
    branch = args.branch or (f"promote/{slug}-v{version}-to-{env.name}" if kind == "promote"
                             else f"rollback/{slug}-v{version}-in-{env.name}")
    commit = tree.commit_on_new_branch(branch, base, changed, title + ("\n" + body if body
                                                                        else ""))
    print(f"Created branch {branch} (commit {commit[:12]}) from {base_branch}, which is "
          "unchanged:")
    print(f"  {env.file}: {args.model} {before} → v{version}")
    for name in moved_out:
        print(f"  {desired.by_name()[name].file}: {args.model} v{version} removed (it leaves "
              f"{name}: a version holds one stage)")
    plan_text, markdown = _plan_views(after, registry, snapshot, desired)
    print("\nWhat merging would change:\n" + plan_text, end="")
    if args.push or args.open_pr:
        tree.push(args.remote, branch)
        print(f"Pushed {branch} to {args.remote}.")
    if args.open_pr:
        from controller.adapters import forge

        remote_url = tree.remote_url(args.remote)
        token = forge.token_from(args.token_file, forge.parse_remote(remote_url,
                                                                     args.api_url).kind)
        url = forge.open_pull_request(remote_url, branch, base_branch, title,
                                      markdown + body, token, api_url=args.api_url)
        print(f"Opened {url}")
    return EXIT_OK


def _check_version(args: argparse.Namespace, env: Environment, model: str,
                   version: int) -> tuple[Any, Any]:
    """The version must exist in the environment's registry before anyone reviews it."""
    from controller.errors import RegistryError

    registry = build_registries(args.config, (env.registry,))[env.registry]
    try:
        snapshot = registry.snapshot()
    except RegistryError as exc:
        fatal(f"cannot check {model} v{version} in registry '{env.registry}': {exc}")
    live = snapshot.model(model)
    if live is None:
        fatal(f"registered model '{model}' does not exist in registry '{env.registry}'")
    if version not in live.versions:
        from controller.planner import _ranges

        fatal(f"{model} v{version} does not exist in registry '{env.registry}' "
              f"(known versions: {_ranges(sorted(live.versions))})")
    return registry, snapshot


def _plan_views(after: DesiredState, registry: Any, snapshot: Any,
                before: DesiredState) -> tuple[str, str]:
    from controller.cli.local import _policy
    from controller.planner import plan
    from controller.reconciler import collect_metrics
    from controller.render import render_markdown, render_text

    registries = {registry.name: registry}
    snapshots = {registry.name: snapshot}
    factory = _policy()
    check = factory(after, snapshots, registries) if factory else None
    scoped = DesiredState(tuple(e for e in after.environments if e.registry == registry.name),
                          after.commit)
    the_plan = plan(scoped, snapshots, previous=before, check=check)
    metrics = collect_metrics(the_plan, snapshots, registries)
    return render_text(the_plan, metrics), render_markdown(the_plan, metrics)


# --- diff ---------------------------------------------------------------------------------


def cmd_diff(args: argparse.Namespace) -> int:
    from controller.adapters.gitworktree import WorkTree
    from controller.cli.local import _policy
    from controller.desired import load_texts
    from controller.reconciler import collect_metrics, reconcile
    from controller.render import render_json, render_markdown, render_text

    tree = WorkTree(Path(args.repo))
    base, head = tree.rev(args.base), tree.rev(args.head)
    merged = tree.merged_tree(base, head)
    folder = args.path.strip("/")
    before_state, _ = load_texts(tree.files_at(base, folder), commit=base)
    after = _valid(load_texts(tree.files_at(merged, folder), commit=head),
                   f"{folder} after merging {args.head} into {args.base}")
    registries = build_registries(args.config, after.registries())
    result = reconcile(after, registries, previous=before_state, dry_run=True,
                       policy=_policy())
    metrics = collect_metrics(result.plan, result.snapshots, registries)
    edits = _edits(before_state, after)
    if args.output == "json":
        import json

        data = json.loads(render_json(result.plan, metrics))
        data["edits"] = edits
        print_json(data)
    elif args.output == "markdown":
        title = f"mlflow-gitops: merging `{args.head}` into `{args.base}`"
        lines = [f"- `{e['environment']}`: **{e['model']}** {_v(e['old'])} → {_v(e['new'])}"
                 for e in edits]
        text = render_markdown(result.plan, metrics, title=title)
        head_line, rest = text.split("\n", 1)
        print(head_line + "\n\nEdits in this pull request:\n\n" + "\n".join(lines or ["- none"])
              + "\n" + rest, end="")
    else:
        for e in edits:
            print(f"edit: {e['environment']}: {e['model']} {_v(e['old'])} → {_v(e['new'])}")
        print(render_text(result.plan, metrics), end="")
    for name, message in sorted(result.registry_errors.items()):
        print(f"mlflow-gitops: registry '{name}' unreachable: {message}", file=sys.stderr)
    if not result.ok:
        return EXIT_ERROR
    return EXIT_CHANGES if args.detailed_exitcode and result.plan.has_changes else EXIT_OK


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
    from controller.adapters.gitworktree import WorkTree

    tree = WorkTree(Path(args.path))
    folder = tree.relpath(Path(args.path))
    files = tree.files_at("HEAD", folder)
    names = {Path(p).stem: p for p in files}
    if args.env is not None and args.env not in names:
        fatal(f"no environment '{args.env}' in {folder} (environments: "
              f"{', '.join(sorted(names))})")
    entries: list[Assignment] = []
    for env_name, path in sorted(names.items()):
        if args.env is None or env_name == args.env:
            entries.extend(_assignments(tree, path, env_name, args.model))
    entries.sort(key=lambda a: a.when, reverse=True)
    if not entries:
        fatal(f"{args.model} was never assigned in {folder}"
              + (f"/{Path(names[args.env]).name}" if args.env else ""))
    if args.output == "json":
        print_json([vars(a) for a in entries])
        return EXIT_OK
    rows = [("TIME", "AUTHOR", "COMMIT", "ENVIRONMENT", "CHANGE")]
    rows += [(a.when, a.author, a.commit[:12], a.environment, f"{_v(a.old)} → {_v(a.new)}")
             for a in entries]
    from controller.cli.local import _print_table

    _print_table(rows)
    return EXIT_OK


def _assignments(tree: Any, path: str, env_name: str, model: str) -> list[Assignment]:
    """Every change of `model`'s version in `path`, newest first."""
    from controller import yamledit
    from controller.errors import ConfigError

    revisions = list(reversed(tree.file_log(path)))
    out: list[Assignment] = []
    previous: int | None = None
    for rev in revisions:
        try:
            version = yamledit.model_version(rev.text, model) if rev.text is not None else None
        except ConfigError:
            continue  # an invalid commit assigned nothing; the controller skipped it too
        if version != previous:
            out.append(Assignment(rev.when.isoformat(), rev.author, rev.sha, rev.subject,
                                  env_name, model, previous, version))
            previous = version
    return list(reversed(out))


# --- shared -------------------------------------------------------------------------------


def _env_file(tree: Any, path: str, env_name: str, rev: str) -> str:
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


def _valid(loaded: tuple[DesiredState | None, list[Any]], what: str) -> DesiredState:
    state, diagnostics = loaded
    if state is None:
        for d in diagnostics:
            print(str(d), file=sys.stderr)
        fatal(f"{what}: {len(diagnostics)} problem(s); fix them first")
    return state
