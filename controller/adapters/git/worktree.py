"""The user's git repository, for the pull-request workflow (`promote`, `rollback`, `diff`,
`history`). Commits are built with plumbing on a private index, so creating a promotion
branch never touches the user's work tree, index or current branch."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from mlflow_gitops.adapters.git.auth import Auth
from mlflow_gitops.core.errors import ConfigError, SourceError
from mlflow_gitops.desired.history import Revision

#: Abort a transfer that moves under 1 KB/s for 30 s (git's own HTTP stall guard), so a
#: remote that accepts the connection and then trickles cannot hold a call for long.
STALL_GUARD = {"GIT_HTTP_LOW_SPEED_LIMIT": "1000", "GIT_HTTP_LOW_SPEED_TIME": "30"}


class WorkTree:
    def __init__(self, folder: Path, auth: Auth | None = None,
                 remote_timeout: float | None = None):
        import git

        try:
            self.repo = git.Repo(folder, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise ConfigError(f"{folder} is not inside a git repository; promote, rollback, "
                              "diff and history work on a clone of your environments "
                              "repository") from None
        if self.repo.bare or self.repo.working_tree_dir is None:
            raise ConfigError(f"{folder} is a bare repository; run this in a clone")
        self.root = Path(self.repo.working_tree_dir).resolve()
        self._auth = auth  # credentials for calls that reach a remote (the controller's)
        #: Seconds a push, fetch or ls-remote may take before git is killed (None: no limit).
        self.remote_timeout = remote_timeout

    def relpath(self, path: Path) -> str:
        """`path` relative to the repository root, with forward slashes."""
        try:
            return PurePosixPath(path.resolve().relative_to(self.root)).as_posix()
        except ValueError:
            raise ConfigError(f"{path} is outside the repository at {self.root}") from None

    def _remote_git(self, *args: str) -> str:
        """A call that reaches a remote: with the credentials session when there is one."""
        kw: dict[str, Any] = {}
        if self.remote_timeout is not None:
            kw["kill_after_timeout"] = self.remote_timeout
        if self._auth is None:
            return self._git(*args, env={**os.environ, **STALL_GUARD}, **kw)
        with self._auth() as (env, options):
            return self._git(*options, *args, env={**os.environ, **STALL_GUARD, **env}, **kw)

    def _git(self, *args: str, env: dict[str, str] | None = None, **kw: Any) -> str:
        import git

        try:
            out: str = self.repo.git.execute(["git", *args], env=env, **kw)
            return out
        except git.GitCommandError as exc:
            detail = (exc.stderr or "").strip().replace("stderr: ", "").strip("'\n ")
            raise SourceError(f"git {args[0]} failed: {detail.splitlines()[-1] if detail else exc}"
                              ) from exc

    def current_branch(self) -> str:
        name = self._git("rev-parse", "--abbrev-ref", "HEAD")
        if name == "HEAD":
            raise ConfigError("HEAD is detached: check out the branch to promote from")
        return name

    def rev(self, rev: str) -> str:
        try:
            return self._git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
        except SourceError:
            raise ConfigError(f"unknown revision '{rev}': give a branch, tag or commit") from None

    def branch_exists(self, name: str) -> bool:
        return bool(self._git("branch", "--list", name))

    def files_at(self, rev: str, folder: str) -> dict[str, str]:
        """Every file directly in `folder` at `rev` (a commit or a tree id): {path: text}."""
        from mlflow_gitops.desired.loader import is_environment_file

        listing = self._git("ls-tree", "-z", rev, f"{folder.rstrip('/')}/")
        files = {}
        for entry in filter(None, listing.split("\0")):
            meta, path = entry.split("\t", 1)
            if meta.split()[1] == "blob" and is_environment_file(path):
                files[path] = self._git("cat-file", "blob", meta.split()[2],
                                        strip_newline_in_stdout=False)
        return files

    def has_commits(self) -> bool:
        return self.repo.head.is_valid()

    def file_log(self, relpath: str, rev: str = "HEAD", limit: int = 200,
                 first_parent: bool = False) -> list[Revision]:
        """Commits of `rev`'s history that changed `relpath`, newest first, with its text and
        commit time. With `first_parent`, a merged pull request appears as its merge (dated
        when it was merged), not as the branch commit its author dated."""
        sep = "\x1f"
        options = ["--first-parent"] if first_parent else []
        out = self._git("log", *options, f"--max-count={limit}",
                        f"--format=%H{sep}%an <%ae>{sep}%cI{sep}%s", rev, "--", relpath)
        revisions = []
        for line in filter(None, out.splitlines()):
            sha, author, when, subject = line.split(sep, 3)
            try:
                text: str | None = self._git("show", f"{sha}:{relpath}",
                                             strip_newline_in_stdout=False)
            except SourceError:
                text = None
            revisions.append(Revision(sha, author, datetime.fromisoformat(when), subject, text))
        return revisions

    def merged_tree(self, base: str, head: str) -> str:
        """The tree merging `head` into `base` would produce (git merge-tree, no checkout).
        Needs git 2.38 (`merge-tree --write-tree`); exit 1 there means conflicts, anything
        else is git failing, reported with its own words."""
        import git

        version = git_version(self.repo)
        if version < (2, 38):
            raise ConfigError(f"diff needs git 2.38 or newer (merge-tree --write-tree); this "
                              f"is git {'.'.join(map(str, version))}: upgrade git")
        try:
            out: str = self.repo.git.execute(["git", "merge-tree", "--write-tree", base, head])
        except git.GitCommandError as exc:
            if exc.status == 1:
                raise ConfigError(f"{head} does not merge cleanly into {base}: resolve the "
                                  "conflicts first") from exc
            detail = str(exc.stderr or "").strip().replace("stderr: ", "").strip("'\n ")
            raise ConfigError(f"git merge-tree {base} {head} failed: "
                              f"{detail.splitlines()[-1] if detail else exc}") from exc
        return out.splitlines()[0].strip()

    def branch_with(self, branch: str, base: str, files: Mapping[str, str]) -> str | None:
        """The tip of an existing `branch` if it is exactly `files` committed on `base` (a
        retry after a failed push or pull request reuses it), else None."""
        if not self.branch_exists(branch):
            return None
        tip = self.rev(branch)
        try:
            parent = self._git("rev-parse", f"{tip}^")
        except SourceError:
            return None
        if parent != self.rev(base):
            return None
        changed = set(filter(None, self._git("diff", "--name-only", base, tip).splitlines()))
        if changed != set(files):
            return None
        for path, text in files.items():
            if self._git("show", f"{tip}:{path}", strip_newline_in_stdout=False) != text:
                return None
        return tip

    def commit_on_new_branch(self, branch: str, base: str, files: Mapping[str, str],
                             message: str) -> str:
        """Commit `files` (repo-relative path → text) on a new `branch` from `base`."""
        if self.branch_exists(branch):
            raise ConfigError(f"branch '{branch}' already exists: delete it or pass --branch")
        commit = self._commit(base, files, message)
        self._git("branch", branch, commit)
        return commit

    def _commit(self, base: str, files: Mapping[str, str], message: str) -> str:
        """A commit of `files` on `base`, built on a private index: the work tree, index
        and current branch are never touched."""
        with tempfile.TemporaryDirectory(prefix="mlflow-gitops-index-") as tmp:
            env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self._git("read-tree", base, env=env)
            for path, text in sorted(files.items()):
                blob = self._git("hash-object", "-w", "--stdin", "--path", path,
                                 istream=_stdin(tmp, text))
                self._git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}",
                          env=env)
            tree = self._git("write-tree", env=env)
        return self._git("commit-tree", tree, "-p", base, "-m", message)

    def branch_tip(self, branch: str) -> str | None:
        """The commit a local branch points at, or None when there is no such branch."""
        try:
            return self._git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}")
        except SourceError:
            return None

    def file_at(self, rev: str, path: str) -> str | None:
        """The text of `path` at `rev`, None where it does not exist."""
        try:
            return self._git("show", f"{rev}:{path}", strip_newline_in_stdout=False)
        except SourceError:
            return None

    def commit_on_branch(self, branch: str, base: str, files: Mapping[str, str],
                         message: str) -> str:
        """Commit `files` on `base` and point `branch` at it, creating or moving it (a
        proposal branch is replaced when a newer candidate appears)."""
        commit = self._commit(base, files, message)
        self._git("branch", "--force", branch, commit)
        return commit

    def force_push(self, remote: str, branch: str) -> None:
        """Push `branch`, replacing the remote one (a proposal branch only ever holds one
        commit on its base, made by this tool)."""
        self._remote_git("push", "--quiet", "--force", remote,
                         f"refs/heads/{branch}:refs/heads/{branch}")

    def remote_branch_tip(self, remote: str, branch: str) -> str | None:
        """Fetch `branch` from where `remote` pushes to (into refs/remotes/) and return its
        commit, or None when there is no such branch there."""
        try:
            where = self._git("remote", "get-url", "--push", remote)
        except SourceError:
            raise ConfigError(f"no git remote named '{remote}': pass --remote") from None
        listed = self._remote_git("ls-remote", "--heads", where, f"refs/heads/{branch}")
        if not listed.strip():
            return None
        self._remote_git("fetch", "--quiet", where,
                         f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}")
        return listed.split()[0]

    def push(self, remote: str, branch: str) -> None:
        self._git("push", "--quiet", "--set-upstream", remote, f"{branch}:{branch}")

    def remote_url(self, remote: str) -> str:
        try:
            return self._git("remote", "get-url", remote)
        except SourceError:
            raise ConfigError(f"no git remote named '{remote}': pass --remote") from None


def _stdin(folder: str, text: str) -> Any:
    path = Path(folder) / "blob"
    path.write_text(text)
    return open(path, "rb")  # noqa: SIM115 - GitPython reads and closes the stream


def git_version(repo: Any) -> tuple[int, ...]:
    """The installed git's version, e.g. (2, 43, 0)."""
    return tuple(int(part) for part in repo.git.version_info)
