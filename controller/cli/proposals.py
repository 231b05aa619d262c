"""`propose`: a new version that qualifies becomes a pull request by itself. For each
environment with a `propose:` block and each model it lists, the
newest version that would pass the environment's whole policy now goes on one branch,
`propose/<environment>/<model>`, with the same one-line edit, commit message and pull
request body as `promote`. A newer candidate replaces the branch's commit and edits the same
pull request; a pull request closed without merging is remembered (the forge is asked) and
its version is not proposed again; a second run with nothing new changes nothing."""

from __future__ import annotations

import argparse
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
    require_valid,
)
from mlflow_gitops.cli.registries import build_registries


def register(sub: Any) -> None:
    p = sub.add_parser(
        "propose", help="open a branch (and pull request) for each new qualifying version",
        description="For every environment with a propose: block, find the newest version "
        "of each model it lists that is newer than the one assigned, carries the when: tags, "
        "meets the when: metric bounds and passes the environment's whole policy now (from, "
        "soak, gates, windows, not rejected, not held), and put it on the branch "
        "propose/ENV/MODEL (one commit on the current branch, which is left untouched). A "
        "newer candidate replaces that branch and edits the same pull request; a pull "
        "request closed without merging is not proposed again; nothing changes when there "
        "is nothing new. Every newer version not proposed is listed with the reason.",
        examples=["mlflow-gitops propose", "mlflow-gitops propose --push --open-pr",
                  "mlflow-gitops propose environments -o json"])
    add_path(p)
    p.add_argument("--push", action="store_true", help="push each proposal branch to --remote "
                   "(replacing what it held)")
    p.add_argument("--remote", default="origin", help="git remote (default: origin)")
    p.add_argument("--open-pr", action="store_true",
                   help="push, and open or update one pull request (GitHub) or merge request "
                   "(GitLab) per branch, whose body is the plan")
    p.add_argument("--token-file", metavar="FILE", help="forge token file (default: "
                   "GITHUB_TOKEN / GITLAB_TOKEN from the environment)")
    p.add_argument("--api-url", metavar="URL", help="forge API root, for GitHub Enterprise or "
                   "self-hosted GitLab (e.g. https://git.example.com/api/v4)")
    add_output(p)
    add_config(p)
    p.set_defaults(handler=cmd_propose)


def cmd_propose(args: argparse.Namespace) -> int:
    from mlflow_gitops.adapters import forge
    from mlflow_gitops.adapters.git.worktree import WorkTree
    from mlflow_gitops.app.propose import Forge, Round, propose_round
    from mlflow_gitops.cli.policies import local_policy
    from mlflow_gitops.desired.loader import load_texts

    tree = WorkTree(Path(path_of(args)))
    folder = tree.relpath(Path(path_of(args)))
    base_branch = tree.current_branch()
    base = tree.rev("HEAD")
    desired = require_valid(load_texts(tree.files_at(base, folder), commit=base),
                            f"{folder} at {base_branch}")
    if not any(e.propose is not None for e in desired.environments):
        fatal(f"no environment in {folder} has a propose: block; add one, e.g. "
              "'propose: {when: {tags: {validation_status: passed}}}'")
    where = None
    if args.open_pr:  # resolved before any branch is made or pushed
        remote_url = tree.remote_url(args.remote)
        kind = forge.parse_remote(remote_url, args.api_url).kind
        where = Forge(remote_url, forge.token_from(args.token_file, kind), args.api_url)
    work = Round(tree, folder, base, base_branch, args.remote, args.push or args.open_pr,
                 where)
    outcomes = propose_round(work, build_registries(args.config, desired.registries()),
                             local_policy())
    failed = any(o.error is not None for o in outcomes)  # the others were still proposed
    if args.output == "json":
        print_json({"base": base, "proposals": [vars(o) for o in outcomes]})
        return EXIT_ERROR if failed else EXIT_OK
    for o in outcomes:
        print(o.describe())
        for s in o.skipped:
            print(f"  skipped v{s['version']}: {s['reason']}")
    return EXIT_ERROR if failed else EXIT_OK
