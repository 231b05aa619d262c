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


def is_dirty(folder: Path) -> bool:
    """Does `folder` have uncommitted (or untracked) changes?"""
    import git

    try:
        repo = git.Repo(folder, search_parent_directories=True)
        return bool(repo.git.status("--porcelain", "--", str(folder.resolve())))
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError):
        return False


def file_revisions(path: Path, rev: str = "HEAD", max_count: int = 200
                   ) -> list[tuple[str, float, str | None]]:
    """The commits of `rev` that changed the file `path`, newest first: (sha, commit time in
    epoch seconds, the file's text then, None where the commit deleted it). First parent
    only, so a merged pull request counts from its merge, not from when it was written.
    Empty when `path` is not in a git work tree or the repository has no commits yet."""
    import git

    try:
        repo = git.Repo(path.parent, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return []
    root = Path(repo.working_tree_dir or "").resolve()
    try:
        relpath = path.resolve().relative_to(root).as_posix()
    except ValueError:
        return []
    out: list[tuple[str, float, str | None]] = []
    try:
        if not repo.head.is_valid():
            return []
        for commit in repo.iter_commits(rev, paths=relpath, max_count=max_count,
                                        first_parent=True):
            try:
                text: str | None = (commit.tree / relpath).data_stream.read().decode(
                    "utf-8", "replace")
            except KeyError:
                text = None
            out.append((commit.hexsha, float(commit.committed_date), text))
    except (git.GitCommandError, ValueError) as exc:
        raise SourceError(f"cannot read the git history of {path} at {rev}: {exc}; "
                          "check that the repository is intact (git log -- "
                          f"{relpath})") from exc
    return out
