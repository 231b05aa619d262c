"""The user's local work tree as plain facts: which commit a folder's files come from (for
lineage tags) and a file's first-parent history (for promotion policy). Work-tree
operations themselves live in mlflow_gitops.adapters.git.worktree."""

from __future__ import annotations

from pathlib import Path

from mlflow_gitops.core.errors import ConfigError
from mlflow_gitops.desired.history import Revision


def head_commit(folder: Path) -> str | None:
    """SHA of HEAD when `folder` is inside a git work tree, else None."""
    import git

    try:
        repo = git.Repo(folder, search_parent_directories=True)
        return repo.head.commit.hexsha
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError):
        return None


def is_dirty(folder: Path) -> bool:
    """Does `folder` have uncommitted (or untracked) changes?"""
    import git

    try:
        repo = git.Repo(folder, search_parent_directories=True)
        return bool(repo.git.status("--porcelain", "--", str(folder.resolve())))
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError):
        return False


def file_revisions(path: Path, rev: str = "HEAD", max_count: int = 200) -> list[Revision]:
    """The commits of `rev` that changed the file `path`, newest first, with the file's text
    then. First parent only, so a merged pull request counts from its merge, not from when
    it was written. Empty when `path` is not in a git work tree or the repository has no
    commits yet."""
    from mlflow_gitops.adapters.git.worktree import WorkTree

    try:
        tree = WorkTree(path.parent)
        relpath = tree.relpath(path)
    except ConfigError:
        return []
    if not tree.has_commits():
        return []
    return tree.file_log(relpath, rev, max_count, first_parent=True)


def user_name() -> str | None:
    """`git config user.name` where git is set up, else None."""
    import git

    try:
        return str(git.Git().config("user.name")).strip() or None
    except (git.GitCommandError, OSError):
        return None


def commit_author(folder: Path, sha: str) -> str:
    """'Name <email>' of commit `sha` in the repository around `folder` ("" if unknown): who
    merged it, for the ledger (for a merge commit made by a forge, the person who merged)."""
    import git

    try:
        commit = git.Repo(folder, search_parent_directories=True).commit(sha.removesuffix(
            "-dirty"))
        return f"{commit.author.name} <{commit.author.email}>"
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.BadName, ValueError):
        return ""
