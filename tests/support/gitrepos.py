"""Real git repositories for tests: a bare repo stands in for the remote, a clone for the
user's work tree, a merge for a merged pull request."""

from __future__ import annotations

import subprocess
from pathlib import Path

AUTHOR = {"GIT_AUTHOR_NAME": "Ada Tester", "GIT_AUTHOR_EMAIL": "ada@example.com",
          "GIT_COMMITTER_NAME": "Ada Tester", "GIT_COMMITTER_EMAIL": "ada@example.com"}


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    import os

    full_env = {**os.environ, **AUTHOR, **(env or {})}
    out = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                         env=full_env)
    return out.stdout.strip()


def init_repo(path: Path, files: dict[str, str] | None = None, branch: str = "main") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", branch)
    git(path, "config", "user.name", AUTHOR["GIT_AUTHOR_NAME"])
    git(path, "config", "user.email", AUTHOR["GIT_AUTHOR_EMAIL"])
    if files:
        write_files(path, files)
        commit_all(path, "initial environments")
    return path


def write_files(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def bare_remote(tmp: Path, files: dict[str, str], branch: str = "main") -> tuple[Path, Path]:
    """A bare 'remote' seeded with `files`, and a work clone of it. Returns (bare, work)."""
    seed = init_repo(tmp / "seed", files, branch)
    bare = tmp / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(seed), str(bare)], check=True)
    work = tmp / "work"
    subprocess.run(["git", "clone", "-q", str(bare), str(work)], check=True)
    git(work, "config", "user.name", AUTHOR["GIT_AUTHOR_NAME"])
    git(work, "config", "user.email", AUTHOR["GIT_AUTHOR_EMAIL"])
    return bare, work


def merge_branch(work: Path, branch: str, files: dict[str, str], message: str) -> str:
    """Open a 'pull request' on `branch`, then merge it into main with a merge commit."""
    git(work, "checkout", "-q", "-b", branch, "origin/main")
    for rel, text in files.items():
        (work / rel).write_text(text)
    commit_all(work, message)
    git(work, "push", "-q", "origin", branch)
    git(work, "checkout", "-q", "main")
    git(work, "pull", "-q", "origin", "main")
    git(work, "merge", "-q", "--no-ff", branch, "-m", f"Merge branch '{branch}'")
    git(work, "push", "-q", "origin", "main")
    return git(work, "rev-parse", "HEAD")
