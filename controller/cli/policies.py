"""The promotion policy as each command sees it: the pure policy (mlflow_gitops.policy) with
the git history of wherever the desired state came from (a local work tree, a pull
request's base, the controller's git source)."""

from __future__ import annotations

from pathlib import Path

from mlflow_gitops.adapters.git.local import file_revisions
from mlflow_gitops.adapters.git.source import GitSource
from mlflow_gitops.core.ports import PolicyFactory
from mlflow_gitops.policy.facts import HISTORY_DEPTH, FileHistory, make_policy


def local_history(rev: str = "HEAD", max_count: int = HISTORY_DEPTH,
                  root: Path | None = None) -> FileHistory:
    """History from the git work tree that holds the files: `file` is the path the desired
    state was loaded from (relative to `root` when given, e.g. a repository's paths)."""
    return FileHistory(lambda file: file_revisions((root or Path()) / file, rev, max_count))


def local_policy() -> PolicyFactory:
    """`plan` / `apply` on a folder: gates with the history of the folder's git work tree
    (none outside one: `from` then looks at the live and desired state only)."""
    return make_policy(lambda desired: local_history())


def diff_policy(repo: Path, base: str) -> PolicyFactory:
    """`diff BASE HEAD --repo DIR`: history as BASE has it (what the pull request is merged
    into), with the desired state's file paths relative to the repository."""
    return make_policy(lambda desired: local_history(rev=base, root=repo))


def gitsource_history(source: GitSource, rev: str | None = None,
                      max_count: int = HISTORY_DEPTH) -> FileHistory:
    """History from the controller's git source: `file` is the path inside the repository,
    first parents only, so a merged pull request is dated by its merge."""
    return FileHistory(lambda file: source.file_history(file, max_count=max_count, rev=rev,
                                                        first_parent=True))


def policy_for_source(source: GitSource) -> PolicyFactory:
    """`run`: gates with the history of the controller's git source at the commit being
    reconciled."""
    return make_policy(lambda desired: gitsource_history(
        source, rev=desired.commit if desired.commit != "local" else None))
