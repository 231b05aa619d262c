"""The user's local work tree: which commit a folder's files come from (for lineage tags)
and the file texts at a commit (for `diff`, `history`, `rollback`)."""

from __future__ import annotations

from pathlib import Path

from controller.errors import SourceError


def head_commit(folder: Path) -> str | None:
    """SHA of HEAD when `folder` is inside a git work tree, else None."""
    import git

    try:
        repo = git.Repo(folder, search_parent_directories=True)
        return repo.head.commit.hexsha
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError):
        return None


def open_repo(folder: Path):  # type: ignore[no-untyped-def]
    import git

    try:
        return git.Repo(folder, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise SourceError(f"{folder} is not inside a git repository") from None
