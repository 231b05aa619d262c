"""`propose`: a new version that qualifies becomes a pull request by itself (SPEC §3
`propose:`, §5). For each environment with a `propose:` block and each model it lists, the
newest version that would pass the environment's whole policy now goes on one branch,
`propose/<environment>/<model>`, with the same one-line edit, commit message and pull
request body as `promote`. A newer candidate replaces the branch's commit and edits the same
pull request; a pull request closed without merging is remembered (the forge is asked) and
its version is not proposed again; a second run with nothing new changes nothing."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow_gitops.cli.common import (
    EXIT_OK,
    add_config,
    add_output,
    add_path,
    build_registries,
    fatal,
    path_of,
    print_json,
    require_valid,
)

if TYPE_CHECKING:
    from mlflow_gitops.adapters.git.worktree import WorkTree
    from mlflow_gitops.core.model import DesiredState, Environment, LiveVersion
    from mlflow_gitops.planning.proposals import Decision

#: Written into every proposal's pull request body, so a closed one can be told apart.
MARKER = "<!-- mlflow-gitops:propose environment={env} model={model} version={version} -->"
_MARKER_RE = re.compile(r"<!-- mlflow-gitops:propose environment=(?P<env>\S+) "
                        r"model=(?P<model>\S+) version=(?P<version>\d+) -->")


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
    add_path(p, path_flag=True)
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


@dataclass(frozen=True)
class Forge:
    """Where pull requests go, resolved before anything is pushed."""

    remote_url: str
    token: str
    api_url: str | None


@dataclass
class Outcome:
    environment: str
    model: str
    current: int | None
    candidate: int | None
    branch: str | None
    action: str  # created | updated | unchanged | none
    skipped: list[dict[str, Any]]
    pull_request: str | None = None


def cmd_propose(args: argparse.Namespace) -> int:
    from mlflow_gitops.adapters.git.worktree import WorkTree
    from mlflow_gitops.desired.loader import load_texts

    tree = WorkTree(Path(path_of(args)))
    folder = tree.relpath(Path(path_of(args)))
    base_branch = tree.current_branch()
    base = tree.rev("HEAD")
    files = tree.files_at(base, folder)
    desired = require_valid(load_texts(files, commit=base), f"{folder} at {base_branch}")
    envs = [e for e in desired.environments if e.propose is not None]
    if not envs:
        fatal(f"no environment in {folder} has a propose: block; add one, e.g. "
              "'propose: {when: {tags: {validation_status: passed}}}'")
    forge = _forge(args, tree) if args.open_pr else None
    outcomes = [_carry_out(args, tree, desired, files, base, base_branch, decision, forge)
                for decision in _decide(args, desired, envs, forge)]
    if args.output == "json":
        print_json({"base": base, "proposals": [vars(o) for o in outcomes]})
    else:
        for o in outcomes:
            _print(o)
    return EXIT_OK


def _forge(args: argparse.Namespace, tree: WorkTree) -> Forge:
    """The forge and its token, checked before any branch is made or pushed."""
    from mlflow_gitops.adapters import forge

    remote_url = tree.remote_url(args.remote)
    kind = forge.parse_remote(remote_url, args.api_url).kind
    return Forge(remote_url, forge.token_from(args.token_file, kind), args.api_url)


def _decide(args: argparse.Namespace, desired: DesiredState, envs: list[Environment],
            forge: Forge | None) -> list[Decision]:
    """One decision per (environment, model), from one read of the managed models."""
    from mlflow_gitops.cli.policies import local_policy
    from mlflow_gitops.core.errors import RegistryError
    from mlflow_gitops.loop.reconciler import read_live
    from mlflow_gitops.planning.proposals import decide

    registries = build_registries(args.config, desired.registries())
    snapshots, errors = read_live(registries, desired)
    for name, message in sorted(errors.items()):
        fatal(f"registry '{name}' unreachable: {message}")
    policy = local_policy()
    metrics: dict[tuple[str, str], Mapping[str, float] | None] = {}

    def metrics_for(registry: str) -> Any:
        def metrics_of(version: LiveVersion) -> Mapping[str, float] | None:
            if not version.run_id:
                return None
            key = (registry, version.run_id)
            if key not in metrics:
                try:
                    metrics[key] = registries[registry].run_metrics(version.run_id)
                except RegistryError:
                    metrics[key] = None
            return metrics[key]
        return metrics_of

    decisions = []
    for env in envs:
        snapshot = snapshots[env.registry]
        for model in sorted(env.models):
            decisions.append(decide(
                desired, env.name, model, snapshot,
                lambda state: policy(state, snapshots, registries),
                metrics_for(env.registry),
                already_refused=_closed(forge, env.name, model) if forge else frozenset()))
    return decisions


def branch_name(environment: str, model: str) -> str:
    """The one stable branch of an (environment, model)'s proposals."""
    return f"propose/{environment}/{re.sub(r'[^A-Za-z0-9._-]+', '-', model)}"


def _closed(forge: Forge, environment: str, model: str) -> frozenset[int]:
    """Versions whose proposal a person closed without merging (asked of the forge)."""
    from mlflow_gitops.adapters.pulls import pull_requests

    found = pull_requests(forge.remote_url, branch_name(environment, model), forge.token,
                          forge.api_url)
    versions = set()
    for pull in found:
        match = _MARKER_RE.search(pull.body)
        if pull.state == "closed" and match and match["env"] == environment \
                and match["model"] == model:
            versions.add(int(match["version"]))
    return frozenset(versions)


def _carry_out(args: argparse.Namespace, tree: WorkTree, desired: DesiredState,
               files: Mapping[str, str], base: str, base_branch: str, decision: Decision,
               forge: Forge | None) -> Outcome:
    from mlflow_gitops.desired.edits import promotion_edit

    skipped = [{"version": s.version, "reason": s.reason} for s in decision.skipped]
    outcome = Outcome(decision.environment, decision.model, decision.current,
                      decision.candidate, None, "none", skipped)
    if decision.candidate is None:
        return outcome
    env = desired.by_name()[decision.environment]
    edit = promotion_edit(desired, files, env, decision.model, decision.candidate)
    branch = branch_name(env.name, decision.model)
    outcome.branch = branch
    title = edit.title("promote")
    marker = MARKER.format(env=env.name, model=decision.model, version=decision.candidate)
    remote_tip = tree.remote_branch_tip(args.remote, branch) if args.push or args.open_pr \
        else None
    current_tip = remote_tip or tree.branch_tip(branch)
    if current_tip is not None and all(tree.file_at(current_tip, path) == text
                                       for path, text in edit.changed.items()):
        outcome.action = "unchanged"
    else:
        tree.commit_on_branch(branch, base, dict(edit.changed), title + (
            "\n" + edit.notes if edit.notes else ""))
        outcome.action = "updated" if current_tip is not None else "created"
        if args.push or args.open_pr:
            tree.force_push(args.remote, branch)
    if forge is not None:
        outcome.pull_request = _pull_request(args, forge, desired, files, base_branch, edit,
                                             branch, title, marker, outcome)
    return outcome


def _pull_request(args: argparse.Namespace, forge: Forge, desired: DesiredState,
                  files: Mapping[str, str], base_branch: str, edit: Any, branch: str,
                  title: str, marker: str, outcome: Outcome) -> str:
    """Open the branch's pull request, or edit the open one when its candidate changed."""
    from mlflow_gitops.adapters.forge import open_pull_request
    from mlflow_gitops.adapters.pulls import pull_requests, update_pull_request

    open_ones = [p for p in pull_requests(forge.remote_url, branch, forge.token,
                                          forge.api_url) if p.state == "open"]
    if open_ones and marker in open_ones[0].body and open_ones[0].title == title:
        return open_ones[0].url
    body = _body(args, desired, files, edit, marker)
    if open_ones:
        if outcome.action == "unchanged":
            outcome.action = "updated"
        return update_pull_request(forge.remote_url, open_ones[0].number, title, body,
                                   forge.token, forge.api_url)
    if outcome.action == "unchanged":
        outcome.action = "created"
    return open_pull_request(forge.remote_url, branch, base_branch, title, body, forge.token,
                             api_url=forge.api_url)


def _body(args: argparse.Namespace, desired: DesiredState, files: Mapping[str, str],
          edit: Any, marker: str) -> str:
    """The plan of merging the proposal (gates, metrics old and new), as `promote` writes it."""
    from mlflow_gitops.cli.policies import local_policy
    from mlflow_gitops.desired.loader import load_texts
    from mlflow_gitops.loop.reconciler import collect_metrics, reconcile
    from mlflow_gitops.planning.render import render_markdown

    after = require_valid(load_texts({**files, **edit.changed}, commit=desired.commit),
                          "the proposed files")
    registries = build_registries(args.config, after.registries())
    result = reconcile(after, registries, previous=desired, dry_run=True,
                       policy=local_policy())
    metrics = collect_metrics(result.plan, result.snapshots, registries)
    return (render_markdown(result.plan, metrics) + edit.notes + "\n\nOpened by "
            "`mlflow-gitops propose`: a newer qualifying version updates this pull request; "
            "closing it unmerged means this version is not proposed again.\n" + marker + "\n")


def _print(o: Outcome) -> None:
    where = f"{o.environment}/{o.model}"
    current = f"v{o.current}" if o.current else "unassigned"
    if o.candidate is None:
        print(f"{where}: nothing to propose ({current} is assigned; no newer version "
              "qualifies)")
    else:
        verb = {"created": "proposed", "updated": "proposal updated to",
                "unchanged": "already proposed:"}[o.action]
        print(f"{where}: {verb} v{o.candidate} ({current} → v{o.candidate}) on branch "
              f"{o.branch}" + (f" — {o.pull_request}" if o.pull_request else ""))
    for s in o.skipped:
        print(f"  skipped v{s['version']}: {s['reason']}")
