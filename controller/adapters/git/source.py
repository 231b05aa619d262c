"""The git source of `mlflow-gitops run` (SPEC §6 "Git source"): GitPython behind four calls.

A bare repository in the cache folder is created once and then fetched on every trigger;
only the watched branch is fetched, into `refs/remotes/origin/<branch>`, so a pushed but
unmerged branch is never seen. Environment files are read straight from the tip commit's
tree: there is no work tree to get out of step with the commit.

Credentials come from files (Kubernetes Secrets) and never reach a URL, `.git/config`, an
argv (`ps`), a log line or an exception message. An HTTPS token is handed to git by a
GIT_ASKPASS script in a private temporary folder that `cat`s the token file, so a rotated
Secret is picked up on the next fetch; an SSH key is copied into that folder with mode
0600 (ssh refuses the group-readable files Secrets are mounted as) and used through
GIT_SSH_COMMAND. Every git failure becomes a SourceError whose message is scrubbed of
anything that looks like a credential.

Not thread-safe: one GitSource belongs to the reconcile loop."""

from __future__ import annotations

import os
import re
import shlex
import stat
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from git import Commit, Repo
from git.exc import GitCommandError, GitError, InvalidGitRepositoryError, UnsafeProtocolError
from gitdb.exc import BadName, BadObject
from mlflow_gitops.core.errors import ConfigError, SourceError
from mlflow_gitops.desired.history import Revision
from mlflow_gitops.desired.loader import is_environment_file

REMOTE = "origin"
ALLOWED_PROTOCOLS = "file:git:http:https:ssh"  # never ext:: or fd::
_BRANCH_RE = re.compile(r"^(?!-)(?!.*\.\.)[^\s:~^?*\[\\]+(?<![./])$")
_HTTP_USERINFO = re.compile(r"(?i)\b(https?://)[^/\s@]+@")
_ANY_PASSWORD = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@:]*:[^/\s@]*@")
_REGULAR_FILE = 0o100000


def scrub(text: str, secrets: Sequence[str] = ()) -> str:
    """`text` without URL credentials (any `user:pass@`, any userinfo of an http(s) URL) and
    without the given secret values."""
    text = _ANY_PASSWORD.sub(r"\1", _HTTP_USERINFO.sub(r"\1", text))
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class GitSource:
    """One branch of one remote, cached in `cache_dir`; see the module docstring."""

    def __init__(self, url: str, branch: str, path: str, cache_dir: str | Path,
                 token_file: str | Path | None = None, ssh_key_file: str | Path | None = None,
                 known_hosts_file: str | Path | None = None, timeout: float = 60.0,
                 token_username: str = "x-access-token") -> None:
        parts = urlsplit(url)
        if parts.password is not None or (parts.scheme in ("http", "https") and parts.username):
            raise ConfigError(f"the repository URL {scrub(url)} carries credentials: remove "
                              "them and put the token in --git-token-file")
        if not _BRANCH_RE.match(branch):
            raise ConfigError(f"--branch {branch!r} is not a valid branch name")
        if token_file is not None and ssh_key_file is not None:
            raise ConfigError("give either --git-token-file (HTTPS) or --git-ssh-key-file (SSH)")
        self.url = url
        self.display_url = scrub(url)
        self.branch = branch
        cleaned = PurePosixPath(path.strip().strip("/"))
        if ".." in cleaned.parts:
            raise ConfigError(f"--path {path!r} must stay inside the repository")
        self.path = "" if cleaned.as_posix() == "." else cleaned.as_posix()
        self.cache_dir = Path(cache_dir)
        self.token_file = Path(token_file) if token_file is not None else None
        self.ssh_key_file = Path(ssh_key_file) if ssh_key_file is not None else None
        self.known_hosts_file = Path(known_hosts_file) if known_hosts_file is not None else None
        self.timeout = timeout
        self.token_username = token_username
        self.ref = f"refs/remotes/{REMOTE}/{branch}"
        self.last_sha: str | None = None
        self._repo: Repo | None = None

    def __repr__(self) -> str:  # never shows credentials
        return f"GitSource(url={self.display_url!r}, branch={self.branch!r}, path={self.path!r})"

    # -- the four calls -------------------------------------------------------------------

    def fetch(self) -> str:
        """Bring the branch tip into the cache (creating it the first time); its sha."""
        repo = self._open()
        refspec = f"+refs/heads/{self.branch}:{self.ref}"
        with self._auth() as (env, options):
            try:
                repo.git.execute(["git", *options, "fetch", "--no-tags", "--quiet", REMOTE,
                                  refspec], env=env, kill_after_timeout=self.timeout)
            except GitCommandError as exc:
                raise self._fetch_error(exc) from exc
            except GitError as exc:  # e.g. no git executable
                raise SourceError(f"git could not run: {scrub(str(exc))}") from None
        repo.git.clear_cache()  # fresh cat-file processes: they see the new pack for sure
        self.last_sha = repo.commit(self.ref).hexsha
        return self.last_sha

    def read_environment_files(self, sha: str) -> dict[str, str]:
        """Every `*.yaml`/`*.yml` directly under `path` in commit `sha`: {repo path: text}.

        Bytes that are not UTF-8 become U+FFFD rather than an error: a commit always reads
        the same way, so validation (not a retry loop) decides what to make of it."""
        commit = self._commit(sha)
        tree = commit.tree
        if self.path:
            try:
                tree = tree / self.path
            except KeyError:
                raise SourceError(f"path {self.path!r} not found in commit {sha[:12]} of "
                                  f"branch {self.branch!r} of {self.display_url}") from None
            if tree.type != "tree":
                raise SourceError(f"path {self.path!r} in commit {sha[:12]} of branch "
                                  f"{self.branch!r} is a file, not a folder") from None
        files: dict[str, str] = {}
        for blob in tree.blobs:
            if blob.mode & 0o170000 == _REGULAR_FILE and is_environment_file(blob.name):
                key = f"{self.path}/{blob.name}" if self.path else blob.name
                files[key] = blob.data_stream.read().decode("utf-8", "replace")
        return dict(sorted(files.items()))

    def commit_time(self, sha: str) -> datetime:
        """When commit `sha` was committed (for a merge: when it was merged), in UTC."""
        return self._commit(sha).committed_datetime.astimezone(timezone.utc)

    def file_history(self, relpath: str, max_count: int = 50, rev: str | None = None,
                     first_parent: bool = False) -> list[Revision]:
        """The last `max_count` commits of `rev` (the fetched tip) that touched `relpath`.

        With `first_parent`, only the branch's own line is walked, so a merged pull request
        appears as its merge commit, dated when it was merged, not when its branch commit
        claims to have been written."""
        repo = self._open()
        revisions: list[Revision] = []
        options = {"first_parent": True} if first_parent else {}
        try:
            for commit in repo.iter_commits(rev or self.ref, paths=relpath, max_count=max_count,
                                            **options):
                try:
                    text: str | None = (commit.tree / relpath).data_stream.read().decode(
                        "utf-8", "replace")
                except KeyError:
                    text = None
                revisions.append(Revision(
                    commit.hexsha, f"{commit.author.name} <{commit.author.email}>",
                    commit.committed_datetime.astimezone(timezone.utc),
                    commit.summary if isinstance(commit.summary, str) else "", text))
        except GitCommandError as exc:
            raise SourceError(f"cannot read the history of {relpath!r} on {rev or self.ref}: "
                              f"{self._detail(exc)}") from exc
        return revisions

    def secrets(self) -> list[str]:
        """Secret values this source reads (the token), for the log Redactor."""
        token = self._token()
        return [token] if token else []

    def close(self) -> None:
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    # -- the cache ------------------------------------------------------------------------

    def _open(self) -> Repo:
        if self._repo is not None:
            return self._repo
        cache = self.cache_dir
        try:
            if cache.exists() and any(cache.iterdir()):
                repo = Repo(cache)
            else:
                repo = Repo.init(cache, mkdir=True, bare=True)
        except InvalidGitRepositoryError:
            raise SourceError(f"the cache folder {cache} is not empty and not a git repository:"
                              " empty it or choose another cache folder") from None
        except (OSError, GitError) as exc:
            raise SourceError(f"cannot create the git cache in {cache}: {exc}") from exc
        try:
            if REMOTE not in [r.name for r in repo.remotes]:
                remote = repo.create_remote(REMOTE, self.url)
                with remote.config_writer as config:  # a manual `git fetch` stays narrow too
                    config.set("fetch", f"+refs/heads/{self.branch}:{self.ref}")
            elif repo.remote(REMOTE).url != self.url:
                repo.remote(REMOTE).set_url(self.url)
        except UnsafeProtocolError:
            raise ConfigError(f"the repository URL {self.display_url} uses a protocol that is "
                              f"not allowed; use one of {ALLOWED_PROTOCOLS}") from None
        self._repo = repo
        return repo

    def _commit(self, sha: str) -> Commit:
        try:
            commit = self._open().commit(sha)
            commit.tree  # noqa: B018 (a full sha resolves lazily: load it now, inside the try)
            return commit
        except (BadName, BadObject, ValueError):
            raise SourceError(f"commit {sha!r} is not in the cache of {self.display_url}; "
                              "fetch first") from None

    # -- credentials ----------------------------------------------------------------------

    @contextmanager
    def _auth(self) -> Iterator[tuple[dict[str, str], list[str]]]:
        """The environment and `-c` options for one git call, with a private temp folder
        holding the askpass script or the key copy, removed afterwards."""
        env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": "",
               "GIT_ALLOW_PROTOCOL": ALLOWED_PROTOCOLS}
        options: list[str] = []
        with tempfile.TemporaryDirectory(prefix="mlflow-gitops-") as tmp:  # mode 0700
            if self.token_file is not None:
                if not os.access(self.token_file, os.R_OK):
                    raise SourceError(f"cannot read the git token file {self.token_file}")
                env["GIT_ASKPASS"] = str(self._askpass_script(Path(tmp)))
                options += ["-c", "credential.helper="]  # no helper may store the token
            if self.ssh_key_file is not None or self.known_hosts_file is not None:
                env["GIT_SSH_COMMAND"] = self._ssh_command(Path(tmp))
            yield env, options

    def _askpass_script(self, folder: Path) -> Path:
        script = folder / "askpass"
        script.write_text(
            "#!/bin/sh\n"
            'case "$1" in\n'
            f"  Username*) echo {shlex.quote(self.token_username)} ;;\n"
            f"  *) exec cat {shlex.quote(str(self.token_file))} ;;\n"
            "esac\n")
        script.chmod(stat.S_IRWXU)
        return script

    def _ssh_command(self, folder: Path) -> str:
        parts = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(self.timeout)}"]
        if self.ssh_key_file is not None:
            try:
                key_bytes = self.ssh_key_file.read_bytes()
            except OSError as exc:
                raise SourceError(f"cannot read the SSH key file {self.ssh_key_file}: "
                                  f"{exc.strerror}") from None
            key = folder / "id"
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(key_bytes)
            parts += ["-i", str(key), "-o", "IdentitiesOnly=yes"]
        if self.known_hosts_file is not None:
            parts += ["-o", f"UserKnownHostsFile={self.known_hosts_file}",
                      "-o", "StrictHostKeyChecking=yes"]
        else:  # trust on first use, remembered next to the cache
            parts += ["-o", f"UserKnownHostsFile={self.cache_dir / 'known_hosts'}",
                      "-o", "StrictHostKeyChecking=accept-new"]
        return " ".join(shlex.quote(p) for p in parts)

    def _token(self) -> str | None:
        if self.token_file is None:
            return None
        try:
            return self.token_file.read_text().strip() or None
        except OSError:
            return None

    # -- errors ---------------------------------------------------------------------------

    def _detail(self, exc: GitCommandError) -> str:
        """git's own words (stderr's last lines), scrubbed; the exception is scrubbed too."""
        secrets = self.secrets()
        exc.stderr = scrub(str(exc.stderr or ""), secrets)
        exc.stdout = scrub(str(exc.stdout or ""), secrets)
        raw = str(exc.stderr).removeprefix("\n  stderr: '").removesuffix("'")
        lines = [ln.strip() for ln in raw.splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith(("fatal:", "error:", "ssh:", "Timeout:"))]
        return "; ".join(errors[:3] or lines[-2:]) or f"git exited with {exc.status}"

    def _fetch_error(self, exc: GitCommandError) -> SourceError:
        detail = self._detail(exc)
        where = f"branch {self.branch!r} of {self.display_url}"
        if "did not complete in" in detail:
            lock = self.cache_dir / f"{self.ref}.lock"  # a killed fetch may leave it behind
            lock.unlink(missing_ok=True)
            return SourceError(f"git fetch of {where} timed out after {self.timeout:g}s")
        if "couldn't find remote ref" in detail:
            return SourceError(f"{where} not found: the remote has no branch {self.branch!r}")
        return SourceError(f"git fetch of {where} failed: {detail}")
