"""The git source of `mlflow-gitops run`: GitPython behind four calls.

A bare repository in the cache folder is created once and then fetched on every trigger;
only the watched branch is fetched, into `refs/remotes/origin/<branch>`, so a pushed but
unmerged branch is never seen. Environment files are read straight from the tip commit's
tree: there is no work tree to get out of step with the commit.

Credentials come from files (Kubernetes Secrets, mlflow_gitops.adapters.git.auth) and
never reach a URL, `.git/config`, an argv (`ps`), a log line or an exception message; every
git failure becomes a SourceError whose message is scrubbed of anything that looks like a
credential. The cache repairs itself (mlflow_gitops.adapters.git.cache).

Not thread-safe: one GitSource belongs to the reconcile loop."""

from __future__ import annotations

import logging
import re
import zlib
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from git import Commit, Repo
from git.exc import GitCommandError, GitError, InvalidGitRepositoryError, UnsafeProtocolError
from gitdb.exc import BadName, BadObject
from mlflow_gitops.adapters.git import cache
from mlflow_gitops.adapters.git.auth import ALLOWED_PROTOCOLS, Auth, GitAuth
from mlflow_gitops.adapters.uris import scrub, secret_query_keys, without_credentials
from mlflow_gitops.core.errors import ConfigError, SourceError
from mlflow_gitops.desired.history import Revision
from mlflow_gitops.desired.loader import is_environment_file
from mlflow_gitops.desired.yamlsource import MAX_BYTES

REMOTE = "origin"
_BRANCH_RE = re.compile(r"^(?!-)(?!.*\.\.)[^\s:~^?*\[\\]+(?<![./])$")
_REGULAR_FILE = 0o100000
_DISK_FULL = ("No space left on device", "Disk quota exceeded")

log = logging.getLogger("mlflow_gitops.git")


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
        if keys := secret_query_keys(url):
            raise ConfigError(f"the repository URL {scrub(url)} carries a credential in its "
                              f"query ({keys[0]}=): remove it and put the token in "
                              "--git-token-file")
        if not _BRANCH_RE.match(branch):
            raise ConfigError(f"--branch {branch!r} is not a valid branch name")
        if token_file is not None and ssh_key_file is not None:
            raise ConfigError("give either --git-token-file (HTTPS) or --git-ssh-key-file (SSH)")
        self.url = url
        self.display_url = without_credentials(url)
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
        self._credentials = GitAuth(self.token_file, self.ssh_key_file, self.known_hosts_file,
                                    timeout, token_username, self.cache_dir.with_name(
                                        self.cache_dir.name + ".known_hosts"))
        self._auth = self._credentials.session
        self.ref = f"refs/remotes/{REMOTE}/{branch}"
        self.last_sha: str | None = None
        self._repo: Repo | None = None
        self._owner = cache.Owner(self.cache_dir)
        self._damaged: str | None = None  # why the next fetch must replace the cache
        self._opened: tuple[int, int] | None = None  # the cache folder the repo was opened in

    @property
    def auth(self) -> Auth:
        """Credentials for one git call against this remote (the proposals' clone uses them)."""
        return self._credentials.session

    def __repr__(self) -> str:  # never shows credentials
        return f"GitSource(url={self.display_url!r}, branch={self.branch!r}, path={self.path!r})"

    # -- the four calls -------------------------------------------------------------------

    def fetch(self) -> str:
        """Bring the branch tip into the cache (creating it the first time); its sha.

        The cache repairs itself (mlflow_gitops.adapters.git.cache): leftovers of a killed git
        are removed first; after a failed fetch its temporary objects are removed, and when
        the remote still answers the cache is the problem, so a fresh clone replaces it."""
        self._tidy()
        repo = None
        if self._damaged is None:
            try:
                repo = self._open()
            except SourceError:
                if self._damaged is None:
                    raise  # e.g. a folder of someone else's files: never replaced
        if repo is None or self._damaged is not None:
            reason = self._damaged or "it cannot be opened"
            if not self._owner.held():
                raise SourceError(f"the git cache in {self.cache_dir} is unusable ({reason}) "
                                  "and another process is using it")
            return self._replace(reason)
        try:
            return self._fetch(repo)
        except SourceError as failure:
            return self._recover(failure)

    def _fetch(self, repo: Repo) -> str:
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
        try:
            self.last_sha = repo.commit(self.ref).hexsha
        except (BadName, BadObject, ValueError) as exc:
            raise SourceError(f"the fetched tip of branch {self.branch!r} cannot be read from "
                              f"the cache: {exc}") from None
        return self.last_sha

    def read_environment_files(self, sha: str) -> dict[str, str]:
        """Every `*.yaml`/`*.yml` directly under `path` in commit `sha`: {repo path: text}.

        Bytes that are not UTF-8 become U+FFFD rather than an error: a commit always reads
        the same way, so validation (not a retry loop) decides what to make of it."""
        try:
            return self._read_files(sha)
        except SourceError:
            raise
        except (GitError, ValueError, OSError, zlib.error) as exc:  # a corrupt object
            raise self.unreadable(sha, exc) from None

    def _read_files(self, sha: str) -> dict[str, str]:
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
                # One byte past the loader's limit is enough for it to say "too large";
                # a hostile multi-gigabyte blob is never read whole.
                files[key] = blob.data_stream.read(MAX_BYTES + 1).decode("utf-8", "replace")
        return dict(sorted(files.items()))

    def commit_time(self, sha: str) -> datetime:
        """When commit `sha` was committed (for a merge: when it was merged), in UTC."""
        return self._commit(sha).committed_datetime.astimezone(timezone.utc)

    def commit_author(self, sha: str) -> str:
        """'Name <email>' of commit `sha` (for a merge made by a forge: who merged it)."""
        author = self._commit(sha).author
        return f"{author.name} <{author.email}>"

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
                    text: str | None = (commit.tree / relpath).data_stream.read(
                        MAX_BYTES + 1).decode("utf-8", "replace")
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
        token = self._credentials.token()
        return [token] if token else []

    def close(self) -> None:
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    def unreadable(self, sha: str, exc: Exception) -> SourceError:
        """A read of the fetched tip failed on the cache's objects: the next fetch replaces
        the cache (a corrupt object never heals by fetching again)."""
        if sha == self.last_sha:
            self._damaged = f"commit {sha[:12]} cannot be read ({type(exc).__name__})"
        return SourceError(f"the git cache cannot read commit {sha[:12]} ({exc}); the cache "
                           "is replaced by a fresh clone on the next fetch")

    # -- the cache ------------------------------------------------------------------------

    def _open(self) -> Repo:
        if self._repo is not None and self._identity() != self._opened:
            self.close()  # another GitSource on this cache replaced it with a fresh clone
        if self._repo is None:
            self._repo = self._open_at(self.cache_dir)
            self._opened = self._identity()
        return self._repo

    def _identity(self) -> tuple[int, int] | None:
        try:
            found = self.cache_dir.stat()
        except OSError:
            return None
        return found.st_dev, found.st_ino

    def _open_at(self, folder: Path) -> Repo:
        try:
            if folder.exists() and any(folder.iterdir()):
                repo = Repo(folder)
            else:
                repo = Repo.init(folder, mkdir=True, bare=True)
        except InvalidGitRepositoryError:
            if cache.looks_like_cache(folder):
                self._damaged = "the cache is not a readable git repository any more"
                raise SourceError(f"the git cache in {folder} is broken: replacing it with a "
                                  "fresh clone") from None
            raise SourceError(f"the cache folder {folder} is not empty and not a git "
                              "repository: empty it or choose another cache folder") from None
        except (OSError, GitError) as exc:
            raise SourceError(f"cannot create the git cache in {folder}: {exc}") from exc
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
        except (OSError, GitError, ValueError) as exc:  # e.g. a config git cannot parse
            repo.close()
            self._damaged = f"its configuration cannot be read ({type(exc).__name__})"
            raise SourceError(f"the git cache in {folder} is broken: replacing it with a "
                              "fresh clone") from None
        return repo

    # -- repair (mlflow_gitops.adapters.git.cache) ---------------------------------------------

    def _tidy(self) -> None:
        """Before a fetch: what a killed git left behind (locks, temporary objects, a
        half-made replacement) goes, so it cannot fail this fetch."""
        owned = self._owner.held()
        if owned:
            for path in cache.leftovers(self.cache_dir):
                cache.discard(path)
        for lock in cache.remove_stale_locks(self.cache_dir, owned):
            log.warning("removed a stale git lock file from the cache: %s", lock,
                        extra={"fields": {"lock": lock}})
        if owned:
            cache.remove_temporary_objects(self.cache_dir)

    def _recover(self, failure: SourceError) -> str:
        """After a failed fetch: clean up; if the remote answers, the cache is at fault."""
        removed = cache.remove_temporary_objects(self.cache_dir)
        message = str(failure)
        if removed or any(word in message for word in _DISK_FULL):
            self._prune()
        if any(word in message for word in _DISK_FULL):
            raise SourceError(f"{message} (the disk of the git cache {self.cache_dir} is full;"
                              " the half-fetched objects were removed)") from failure
        if "timed out" in message or "not found: the remote has no branch" in message:
            raise failure
        if not self._owner.held():
            raise failure  # another process works in this cache: not ours to replace
        if self._damaged is None and not self._remote_answers():
            raise failure  # the network or the remote: nothing to repair here
        return self._replace(self._damaged or message)

    def _replace(self, reason: str) -> str:
        """Clone afresh next to the cache, swap it in, and fetch the tip from there."""
        log.warning("the git cache is unusable (%s): replacing it with a fresh clone", reason,
                    extra={"fields": {"cache": str(self.cache_dir)}})
        self.close()
        if self.cache_dir.exists() and not cache.looks_like_cache(self.cache_dir):
            raise SourceError(f"the cache folder {self.cache_dir} is not a git repository: "
                              "empty it or choose another cache folder")
        fresh = cache.fresh_path(self.cache_dir)
        try:
            sha = self._fetch(self._open_at(fresh))
        except SourceError as exc:
            cache.discard(fresh)
            raise SourceError(f"the git cache is unusable ({reason}) and a fresh clone failed "
                              f"too: {exc}") from None
        finally:
            self.close()
        cache.swap(self.cache_dir, fresh)
        self._damaged = None
        self._repo = None
        log.info("the git cache was replaced by a fresh clone", extra={"fields": {
            "cache": str(self.cache_dir), "commit": sha}})
        return sha

    def _remote_answers(self) -> bool:
        """Does the remote list the branch (`git ls-remote`), i.e. is the network fine?"""
        from git.cmd import Git

        with self._auth() as (env, options):
            try:
                out = Git().execute(["git", *options, "ls-remote", "--heads", self.url,
                                     f"refs/heads/{self.branch}"], env=env,
                                    kill_after_timeout=self.timeout)
            except (GitCommandError, GitError):
                return False
        return bool(str(out).strip())

    def _prune(self) -> None:
        """Delete objects no ref reaches (what a fetch that died half-way wrote)."""
        try:
            self._open().git.prune("--expire=now")
        except (GitError, SourceError, OSError):
            return  # best effort: the next fetch tries again

    def _commit(self, sha: str) -> Commit:
        try:
            commit = self._open().commit(sha)
            commit.tree  # noqa: B018 (a full sha resolves lazily: load it now, inside the try)
            return commit
        except (BadName, BadObject, ValueError) as exc:
            if sha == self.last_sha:  # we fetched it: the cache lost or damaged it
                raise self.unreadable(sha, exc) from None
            raise SourceError(f"commit {sha!r} is not in the cache of {self.display_url}; "
                              "fetch first") from None

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
        if "did not complete in" in detail:  # the next fetch removes what the killed one left
            return SourceError(f"git fetch of {where} timed out after {self.timeout:g}s")
        if "couldn't find remote ref" in detail:
            return SourceError(f"{where} not found: the remote has no branch {self.branch!r}")
        return SourceError(f"git fetch of {where} failed: {detail}")
