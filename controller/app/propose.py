"""One proposal round: for each
environment with a `propose:` block and each model it lists, the newest qualifying version
(planning.proposals) goes on the branch `propose/<environment>/<model>` with the same edit,
message and pull request body as `promote`. A newer candidate replaces the branch's commit
and edits the same pull request; one closed without merging is remembered (the forge is
asked); a round with nothing new changes nothing. The CLI runs it on the user's clone, the
controller on a clone of its own (`ControllerProposer`)."""

from __future__ import annotations

import hashlib
import logging
import re
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow_gitops.adapters.git.auth import Auth
from mlflow_gitops.adapters.git.worktree import WorkTree
from mlflow_gitops.adapters.uris import scrub
from mlflow_gitops.core.errors import ConfigError, GitOpsError, RegistryError, SourceError
from mlflow_gitops.core.facts import PassFacts, RunKey, RunRead
from mlflow_gitops.core.model import DesiredState, LiveVersion
from mlflow_gitops.core.ports import GateCheck, PolicyFactory, RegistryPort
from mlflow_gitops.desired.edits import Edit, promotion_edit
from mlflow_gitops.desired.loader import load_texts
from mlflow_gitops.loop.facts import read_live, read_runs
from mlflow_gitops.loop.reconciler import collect_metrics, reconcile
from mlflow_gitops.planning.proposals import Decision, MetricsOf, decide
from mlflow_gitops.planning.render import render_markdown
from mlflow_gitops.policy.facts import runs_needed

log = logging.getLogger("mlflow_gitops.proposals")

#: Written into every proposal's pull request body, so a closed one can be told apart; the
#: names are written as `ref_component` encodes them, so any name (spaces, `-->`) fits.
MARKER = "<!-- mlflow-gitops:propose environment={env} model={model} version={version} -->"
_MARKER_RE = re.compile(r"<!-- mlflow-gitops:propose environment=(?P<env>\S+) "
                        r"model=(?P<model>\S+) version=(?P<version>\d+) -->")


@dataclass(frozen=True)
class Forge:
    """Where pull requests go, resolved before anything is pushed."""

    remote_url: str
    token: str
    api_url: str | None = None


@dataclass(frozen=True)
class Round:
    """What one round works on: a clone, the folder of environment files in it, the commit
    to propose on (and the branch pull requests go into)."""

    tree: WorkTree
    folder: str
    base: str
    base_branch: str
    remote: str = "origin"
    push: bool = False
    forge: Forge | None = None


@dataclass
class Outcome:
    environment: str
    model: str
    current: int | None
    candidate: int | None
    branch: str | None
    action: str  # created | updated | unchanged | closed | none | failed
    skipped: list[dict[str, Any]] = field(default_factory=list)
    pull_request: str | None = None
    error: str | None = None  # why this (environment, model) failed; the others went on

    def describe(self) -> str:
        where = f"{self.environment}/{self.model}"
        if self.error is not None:
            return f"{where}: proposal failed: {self.error}"
        current = f"v{self.current}" if self.current else "unassigned"
        if self.candidate is None:
            return f"{where}: nothing to propose ({current} is assigned; no newer version " \
                   "qualifies)"
        verb = {"created": "proposed", "updated": "proposal updated to",
                "unchanged": "already proposed:",
                "closed": "not proposed again (closed without merging):"}[self.action]
        return (f"{where}: {verb} v{self.candidate} ({current} → v{self.candidate}) on branch "
                f"{self.branch}" + (f" — {self.pull_request}" if self.pull_request else ""))


def branch_name(environment: str, model: str) -> str:
    """The one stable branch of an (environment, model)'s proposals: each name as one
    `ref_component`, so distinct pairs never share a branch and every branch passes
    `git check-ref-format`."""
    return f"propose/{ref_component(environment)}/{ref_component(model)}"


_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_LONGEST = 120  # characters of one encoded component; longer ones end in a digest


def ref_component(name: str) -> str:
    """`name` as one path component of a git branch, injectively: letters, digits, `_` and
    `-` stay (so `fraud-detector` and `fraud_detector` stay apart and readable), every other
    UTF-8 byte becomes `+` and two lower-case hex digits (`a..b` → `a+2e+2eb`, `模型` →
    `+e6+a8+a1+e5+9e+8b`). The result has no `.`, space, control character or any of
    `~^:?*[\\@`, so none of git's ref rules can trip. A result longer than 120 characters
    keeps its first 100 and ends in `+h` and 16 hex digits of its SHA-256 (`+h` never
    occurs otherwise, as `h` is not a hex digit)."""
    out = "".join(ch if ch in _SAFE else "".join(f"+{b:02x}" for b in ch.encode("utf-8"))
                  for ch in name) or "+00"
    if len(out) > _LONGEST:
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
        cut = out[:100]
        partial = cut.rfind("+")
        out = (cut[:partial] if partial >= len(cut) - 2 else cut) + "+h" + digest
    return out


def propose_round(work: Round, registries: Mapping[str, RegistryPort],
                  policy: PolicyFactory) -> list[Outcome]:
    """Decide and carry out every proposal of the environments at `work.base`."""
    files = work.tree.files_at(work.base, work.folder)
    desired, diagnostics = load_texts(files, commit=work.base)
    if desired is None:
        raise ConfigError(f"{work.folder} at {work.base[:12]} is invalid ({diagnostics[0]}); "
                          "nothing is proposed from an invalid commit")
    snapshots, errors = read_live(registries, desired)
    if errors:
        name, message = sorted(errors.items())[0]
        raise RegistryError(f"registry '{name}' unreachable: {message}")
    runs: dict[RunKey, RunRead] = {}  # each run read once per round
    now = time.time()

    def metrics_of(registry: str) -> MetricsOf:
        def read(version: LiveVersion) -> Mapping[str, float] | None:
            if not version.run_id:
                return None
            runs.update(read_runs({(registry, version.run_id)}, registries, runs))
            return runs[(registry, version.run_id)].metrics
        return read

    def check_for(state: DesiredState) -> GateCheck | None:
        runs.update(read_runs(runs_needed(state, snapshots), registries, runs))
        return policy(state, PassFacts(snapshots, {}, now, runs))

    outcomes = []
    for env in desired.environments:
        if env.propose is None:
            continue
        for model in sorted(env.models):
            # One model's failure (a forge that refuses, a push that times out) is its own:
            # the round goes on with the others and reports it.
            try:
                decision = decide(
                    desired, env.name, model, snapshots[env.registry],
                    check_for, metrics_of(env.registry),
                    already_refused=_closed(work.forge, env.name, model))
                outcomes.append(_carry_out(work, desired, files, decision, registries, policy))
            except GitOpsError as exc:
                log.warning("proposal for %s/%s failed: %s", env.name, model, exc,
                            extra={"fields": {"environment": env.name, "model": model}})
                outcomes.append(Outcome(env.name, model, None, None, None, "failed",
                                        error=str(exc)))
    return outcomes


def _closed(forge: Forge | None, environment: str, model: str) -> frozenset[int]:
    """Versions whose proposal a person closed without merging (asked of the forge)."""
    if forge is None:
        return frozenset()
    from mlflow_gitops.adapters.pulls import pull_requests

    versions = set()
    for pull in pull_requests(forge.remote_url, branch_name(environment, model), forge.token,
                              forge.api_url):
        match = _MARKER_RE.search(pull.body)
        if pull.state == "closed" and match and match["env"] == ref_component(environment) \
                and match["model"] == ref_component(model):
            versions.add(int(match["version"]))
    return frozenset(versions)


def _carry_out(work: Round, desired: DesiredState, files: Mapping[str, str],
               decision: Decision, registries: Mapping[str, RegistryPort],
               policy: PolicyFactory) -> Outcome:
    skipped = [{"version": s.version, "reason": s.reason} for s in decision.skipped]
    outcome = Outcome(decision.environment, decision.model, decision.current,
                      decision.candidate, None, "none", skipped)
    if decision.candidate is None:
        return outcome
    env = desired.by_name()[decision.environment]
    edit = promotion_edit(desired, files, env, decision.model, decision.candidate)
    branch = outcome.branch = branch_name(env.name, decision.model)
    title = edit.title("promote")
    tree = work.tree
    # When pushing, only the remote's branch counts: a local one left by a push that failed
    # must not pass for "already proposed" (and get a pull request for a missing branch).
    tip = tree.remote_branch_tip(work.remote, branch) if work.push else tree.branch_tip(branch)
    if tip is not None and all(tree.file_at(tip, path) == text
                               for path, text in edit.changed.items()):
        outcome.action = "unchanged"
    else:
        tree.commit_on_branch(branch, work.base, dict(edit.changed),
                              title + ("\n" + edit.notes if edit.notes else ""))
        outcome.action = "updated" if tip is not None else "created"
        if work.push:
            tree.force_push(work.remote, branch)
    if work.forge is not None:
        marker = MARKER.format(env=ref_component(env.name),
                               model=ref_component(decision.model), version=decision.candidate)
        outcome.pull_request = _pull_request(work, work.forge, desired, files, edit, branch,
                                             title, marker, outcome, registries, policy)
    return outcome


def _pull_request(work: Round, forge: Forge, desired: DesiredState, files: Mapping[str, str],
                  edit: Edit, branch: str, title: str, marker: str, outcome: Outcome,
                  registries: Mapping[str, RegistryPort], policy: PolicyFactory) -> str:
    """Open the branch's pull request, or edit the open one when its candidate changed."""
    from mlflow_gitops.adapters.forge import open_pull_request
    from mlflow_gitops.adapters.pulls import pull_requests, update_pull_request

    pulls = pull_requests(forge.remote_url, branch, forge.token, forge.api_url)
    open_ones = [p for p in pulls if p.state == "open"]
    closed = [p for p in pulls if p.state == "closed" and marker in p.body]
    if not open_ones and closed:
        # Closed by a person while this round was under way (after `_closed` asked): the
        # same answer as if it had been closed before, never a second pull request.
        outcome.action = "closed"
        return closed[0].url
    if open_ones and marker in open_ones[0].body and open_ones[0].title == title:
        return open_ones[0].url
    body = _body(desired, files, edit, marker, registries, policy)
    if open_ones:
        outcome.action = "updated"
        return update_pull_request(forge.remote_url, open_ones[0].number, title, body,
                                   forge.token, forge.api_url)
    if outcome.action == "unchanged":
        outcome.action = "created"
    return open_pull_request(forge.remote_url, branch, work.base_branch, title, body,
                             forge.token, api_url=forge.api_url)


def _body(desired: DesiredState, files: Mapping[str, str], edit: Edit, marker: str,
          registries: Mapping[str, RegistryPort], policy: PolicyFactory) -> str:
    """The plan of merging the proposal (gates, metrics old and new), as `promote` writes it."""
    after, _ = load_texts({**files, **edit.changed}, commit=desired.commit)
    if after is None:
        raise ConfigError(f"the proposed edit of {edit.model} in {edit.environment} does not "
                          "validate; report this")
    result = reconcile(after, registries, previous=desired, dry_run=True, policy=policy)
    metrics = collect_metrics(result, registries)
    return (render_markdown(result.plan, metrics) + edit.notes + "\n\nOpened by "
            "`mlflow-gitops propose`: a newer qualifying version updates this pull request; "
            "closing it unmerged means this version is not proposed again.\n" + marker + "\n")


#: Seconds any one git call of the controller's proposals (clone, fetch, ls-remote, push)
#: may take before it is killed; forge calls have their own timeout (adapters.forge).
REMOTE_TIMEOUT = 60.0


class ControllerProposer:
    """The controller's proposal rounds, on a clone of its own next to the git cache (the
    cache itself is bare and read-only to proposals). Each round fetches the followed branch,
    proposes on its tip and pushes with the git source's credentials."""

    def __init__(self, url: str, branch: str, folder: str, clone_dir: Path, auth: Auth,
                 registries: Mapping[str, RegistryPort], policy: PolicyFactory,
                 forge: Forge | None) -> None:
        self.url, self.branch, self.folder = url, branch, folder
        self.clone_dir = clone_dir
        self._auth = auth
        self._registries = registries
        self._policy = policy
        self._forge = forge

    def run(self) -> list[str]:
        """One round; a line per (environment, model). Raises GitOpsError on a failure."""
        tree = self.checkout()
        base = tree.rev(f"refs/remotes/origin/{self.branch}")
        work = Round(tree, self.folder, base, self.branch, push=True, forge=self._forge)
        return [o.describe() for o in propose_round(work, self._registries, self._policy)]

    def checkout(self) -> WorkTree:
        """The clone, fetched: the followed branch's tip is refs/remotes/origin/<branch>."""
        if not (self.clone_dir / ".git").is_dir():
            self.clone_dir.parent.mkdir(parents=True, exist_ok=True)
            self._git(None, "clone", "--quiet", "--no-checkout", "--single-branch",
                      "--branch", self.branch, self.url, str(self.clone_dir))
        self._git(self.clone_dir, "fetch", "--quiet", "--prune", "origin",
                  f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}")
        return WorkTree(self.clone_dir, auth=self._auth, remote_timeout=REMOTE_TIMEOUT)

    def _git(self, cwd: Path | None, *args: str) -> None:
        import os

        from mlflow_gitops.adapters.git.worktree import STALL_GUARD

        try:
            with self._auth() as (env, options):
                done = subprocess.run(["git", *options, *args], cwd=cwd, capture_output=True,
                                      text=True, env={**os.environ, **STALL_GUARD, **env},
                                      timeout=REMOTE_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise SourceError(f"proposals: git {args[0]} did not finish within "
                              f"{REMOTE_TIMEOUT:.0f}s; trying again later") from None
        if done.returncode != 0:
            detail = (done.stderr.strip().splitlines() or ["failed"])[-1]
            raise SourceError(f"proposals: git {args[0]} failed: {scrub(detail)}")
