"""The git source against real repositories: a bare remote on disk, and one served over HTTP
by `git http-backend` behind Basic auth for the token tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import timezone
from pathlib import Path

import pytest
from mlflow_gitops.adapters.git.source import GitSource
from mlflow_gitops.adapters.uris import scrub
from mlflow_gitops.core.errors import ConfigError, SourceError

from tests.support.git_http import GitHttp, processes_showing, serve_git_http
from tests.support.gitrepos import bare_remote, commit_all, git, write_files

PROD = "environments/production.yaml"
FILES = {
    PROD: "models: {churn: {version: 1}}\n",
    "environments/staging.yml": "models: {churn: {version: 2}}\n",
    "environments/schema.json": "{}\n",
    "environments/old/archived.yaml": "nested: ignored\n",
    "README.md": "# environments repo\n",
}
TOKEN = "glpat-Very5ecretTokenValue"


@pytest.fixture()
def remote(tmp_path: Path) -> tuple[Path, Path]:
    return bare_remote(tmp_path, FILES)


def _source(tmp_path: Path, url: str, **kwargs: object) -> GitSource:
    return GitSource(url, kwargs.pop("branch", "main"), kwargs.pop("path", "environments"),  # type: ignore[arg-type]
                     tmp_path / "cache", **kwargs)  # type: ignore[arg-type]


def _push(work: Path, files: dict[str, str], message: str, branch: str = "main") -> str:
    write_files(work, files)
    sha = commit_all(work, message)
    git(work, "push", "-q", "origin", f"HEAD:{branch}")
    return sha


def test_fetch_returns_the_branch_tip(tmp_path: Path, remote: tuple[Path, Path]) -> None:
    """The first fetch creates the cache and returns the remote branch's tip sha."""
    bare, _ = remote
    source = _source(tmp_path, bare.as_uri())
    assert source.fetch() == git(bare, "rev-parse", "main")
    assert source.last_sha == git(bare, "rev-parse", "main")


def test_files_come_from_the_commit_without_a_work_tree(tmp_path: Path,
                                                        remote: tuple[Path, Path]) -> None:
    """Only *.yaml/*.yml directly under the path are read, from the commit, not from disk."""
    bare, _ = remote
    source = _source(tmp_path, bare.as_uri())
    files = source.read_environment_files(source.fetch())
    staging = "environments/staging.yml"
    assert files == {PROD: FILES[PROD], staging: FILES[staging]}
    assert git(tmp_path / "cache", "rev-parse", "--is-bare-repository") == "true"
    assert not list((tmp_path / "cache").rglob("production.yaml"))


def test_new_commit_is_seen_after_fetch(tmp_path: Path, remote: tuple[Path, Path]) -> None:
    """A commit pushed to the branch appears at the next fetch; older commits stay readable."""
    bare, work = remote
    source = _source(tmp_path, bare.as_uri())
    first = source.fetch()
    second = _push(work, {PROD: "models: {churn: {version: 7}}\n"}, "promote churn to 7")
    assert source.fetch() == second
    assert source.read_environment_files(second)[PROD] == "models: {churn: {version: 7}}\n"
    assert source.read_environment_files(first)[PROD] == FILES[PROD]


def test_an_unmerged_branch_is_not_seen(tmp_path: Path, remote: tuple[Path, Path]) -> None:
    """A pushed pull-request branch changes neither the tip nor the files read."""
    bare, work = remote
    source = _source(tmp_path, bare.as_uri())
    tip = source.fetch()
    git(work, "checkout", "-q", "-b", "promote-churn")
    _push(work, {PROD: "models: {churn: {version: 9}}\n"}, "promote churn", "promote-churn")
    assert source.fetch() == tip
    assert source.read_environment_files(tip)[PROD] == FILES[PROD]


def test_force_push_is_followed(tmp_path: Path, remote: tuple[Path, Path]) -> None:
    """A rewritten branch (force push) is fetched like any other move of the tip."""
    bare, work = remote
    source = _source(tmp_path, bare.as_uri())
    source.fetch()
    git(work, "commit", "-q", "--amend", "-m", "rewritten")
    git(work, "push", "-q", "--force", "origin", "HEAD:main")
    assert source.fetch() == git(bare, "rev-parse", "main")


def test_missing_branch_is_a_source_error_naming_it(tmp_path: Path,
                                                    remote: tuple[Path, Path]) -> None:
    """Fetching a branch the remote does not have fails with a SourceError that names it."""
    bare, _ = remote
    with pytest.raises(SourceError, match="'release'"):
        _source(tmp_path, bare.as_uri(), branch="release").fetch()


def test_missing_path_is_a_source_error_naming_it(tmp_path: Path,
                                                  remote: tuple[Path, Path]) -> None:
    """A path that the commit does not have (or that is a file) is named in the SourceError."""
    bare, _ = remote
    source = _source(tmp_path, bare.as_uri(), path="envs")
    sha = source.fetch()
    with pytest.raises(SourceError, match="'envs'"):
        source.read_environment_files(sha)
    as_file = _source(tmp_path, bare.as_uri(), path="README.md")
    with pytest.raises(SourceError, match="not a folder"):
        as_file.read_environment_files(sha)


def test_root_path_reads_top_level_files(tmp_path: Path) -> None:
    """With path '' or '.', the environment files at the repository root are read."""
    bare, _ = bare_remote(tmp_path, {"production.yaml": "a: 1\n", "x.txt": "no"})
    for path in ("", ".", "/"):
        source = _source(tmp_path, bare.as_uri(), path=path)
        assert source.read_environment_files(source.fetch()) == {"production.yaml": "a: 1\n"}


def test_unknown_commit_is_a_source_error(tmp_path: Path, remote: tuple[Path, Path]) -> None:
    """Reading a sha that is not in the cache says so instead of crashing."""
    bare, _ = remote
    source = _source(tmp_path, bare.as_uri())
    source.fetch()
    with pytest.raises(SourceError, match="not in the cache"):
        source.read_environment_files("0" * 40)


def test_commit_time_and_file_history(tmp_path: Path, remote: tuple[Path, Path]) -> None:
    """History lists the commits touching a file, newest first, with author, time and text."""
    bare, work = remote
    source = _source(tmp_path, bare.as_uri())
    first = source.fetch()
    second = _push(work, {PROD: "v: 2\n"}, "second")
    _push(work, {"environments/staging.yml": "other\n"}, "staging only")
    git(work, "rm", "-q", PROD)
    deleted = commit_all(work, "remove production")
    git(work, "push", "-q", "origin", "HEAD:main")
    source.fetch()
    history = source.file_history(PROD, max_count=10)
    assert [r.sha for r in history] == [deleted, second, first]
    assert [r.text for r in history] == [None, "v: 2\n", FILES[PROD]]
    assert history[0].author == "Ada Tester <ada@example.com>"
    assert history[0].when.tzinfo == timezone.utc
    assert source.file_history(PROD, max_count=1)[0].sha == deleted
    assert source.commit_time(second).tzinfo == timezone.utc


def test_cache_is_reused_across_instances(tmp_path: Path, remote: tuple[Path, Path]) -> None:
    """A restarted controller fetches into the existing cache instead of cloning again."""
    bare, work = remote
    _source(tmp_path, bare.as_uri()).fetch()
    sha = _push(work, {PROD: "v: 3\n"}, "third")
    again = _source(tmp_path, bare.as_uri())
    assert again.fetch() == sha
    assert again.read_environment_files(sha)[PROD] == "v: 3\n"


def test_foreign_cache_folder_is_refused(tmp_path: Path, remote: tuple[Path, Path]) -> None:
    """A non-empty cache folder that is not a git repository is reported, never wiped."""
    bare, _ = remote
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "precious.txt").write_text("keep me")
    with pytest.raises(SourceError, match="not a git repository"):
        _source(tmp_path, bare.as_uri()).fetch()
    assert (tmp_path / "cache" / "precious.txt").read_text() == "keep me"


def test_unreachable_remote_fails_then_recovers(tmp_path: Path,
                                                remote: tuple[Path, Path]) -> None:
    """A remote moved away is a SourceError (transient); once restored, fetch works again."""
    bare, work = remote
    source = _source(tmp_path, bare.as_uri())
    source.fetch()
    sha = _push(work, {PROD: "v: 4\n"}, "fourth")
    moved = bare.with_name("moved.git")
    bare.rename(moved)
    with pytest.raises(SourceError, match="does not appear to be a git repository") as info:
        source.fetch()
    assert info.value.transient
    moved.rename(bare)
    assert source.fetch() == sha


def test_hung_remote_times_out(tmp_path: Path) -> None:
    """A remote that accepts the connection and never answers is cut off after the timeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/repo.git"
        source = _source(tmp_path, url, timeout=1.5)
        with pytest.raises(SourceError, match="timed out after 1.5s"):
            source.fetch()


def test_first_parent_history_dates_a_pull_request_by_its_merge(
        tmp_path: Path, remote: tuple[Path, Path]) -> None:
    """With first_parent, a merged branch appears as its merge commit, not its branch commit
    (whose date its author controls)."""
    bare, work = remote
    source = _source(tmp_path, bare.as_uri())
    git(work, "checkout", "-q", "-b", "pr")
    write_files(work, {PROD: "v: 3\n"})
    branch_commit = commit_all(work, "old-dated branch commit")
    git(work, "checkout", "-q", "main")
    git(work, "merge", "-q", "--no-ff", "pr", "-m", "Merge pr")
    merge = git(work, "rev-parse", "HEAD")
    git(work, "push", "-q", "origin", "main")
    source.fetch()
    assert source.file_history(PROD, max_count=1)[0].sha == branch_commit
    assert source.file_history(PROD, max_count=1, first_parent=True)[0].sha == merge


def test_url_with_a_token_as_user_is_refused(tmp_path: Path) -> None:
    """https://<token>@host is refused too: the token would sit in argv and .git/config."""
    with pytest.raises(ConfigError) as info:
        _source(tmp_path, f"https://{TOKEN}@git.example.com/envs.git")
    assert TOKEN not in str(info.value)


def test_url_with_password_is_refused_without_echoing_it(tmp_path: Path) -> None:
    """A URL carrying user:password is a ConfigError whose message does not contain it."""
    with pytest.raises(ConfigError) as info:
        _source(tmp_path, f"https://bot:{TOKEN}@git.example.com/envs.git")
    assert TOKEN not in str(info.value)
    assert "--git-token-file" in str(info.value)


def test_scrub_removes_url_credentials_and_secrets() -> None:
    """scrub masks the password of any URL, the userinfo of http(s) URLs and known secrets."""
    text = (f"https://bot:{TOKEN}@h/x.git https://{TOKEN}@h/y.git ssh://git@h/z.git "
            f"ftp://a:b@h/ raw {TOKEN}")
    assert scrub(text, [TOKEN]) == ("https://***@h/x.git https://***@h/y.git ssh://git@h/z.git "
                                    "ftp://a:***@h/ raw ***")


def test_bad_branch_names_are_refused(tmp_path: Path) -> None:
    """Branch names that could smuggle options or refspecs are refused up front."""
    for branch in ("-upload-pack=evil", "main:refs/heads/x", "a..b", "has space", "end/"):
        with pytest.raises(ConfigError, match="--branch"):
            _source(tmp_path, "file:///nowhere", branch=branch)


def test_ssh_failure_is_a_clean_source_error(tmp_path: Path) -> None:
    """With an SSH key, git runs ssh with our options; a refused connection is a SourceError
    that carries neither the key nor its path's contents."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the with block ends
    key = tmp_path / "id_ed25519"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key-AAAA\n")
    key.chmod(0o644)  # as Kubernetes mounts Secrets by default
    known = tmp_path / "known_hosts"
    known.write_text("")
    source = _source(tmp_path, f"ssh://git@127.0.0.1:{port}/envs.git", ssh_key_file=key,
                     known_hosts_file=known, timeout=20)
    with pytest.raises(SourceError, match="Connection refused") as info:
        source.fetch()
    assert "not-a-real-key" not in str(info.value)


# -- HTTPS with a token: git http-backend behind Basic auth -----------------------------------

def test_the_process_scan_would_see_a_leak() -> None:
    """The argv/environment scan used below does find a token where one is exposed."""
    child = subprocess.Popen(["sh", "-c", "sleep 30; true", "sh", TOKEN],
                             env={**os.environ, "T": TOKEN}, start_new_session=True)
    wanted = {f"{child.pid}/cmdline", f"{child.pid}/environ"}
    deadline = time.monotonic() + 10
    try:
        while not wanted <= set(found := processes_showing(TOKEN)) \
                and time.monotonic() < deadline:
            time.sleep(0.05)  # the shell may still be starting on a loaded machine
    finally:
        os.killpg(child.pid, signal.SIGKILL)  # sh and its sleep
        child.wait()
    assert wanted <= set(found)


@pytest.fixture()
def https_remote(tmp_path: Path, remote: tuple[Path, Path]) -> Iterator[tuple[str, type[GitHttp]]]:
    bare, _ = remote
    with serve_git_http(bare.parent, TOKEN) as (root, handler):
        yield f"{root}/{bare.name}", handler


def _token_file(tmp_path: Path, value: str) -> Path:
    path = tmp_path / "secrets" / "token"
    path.parent.mkdir(exist_ok=True)
    path.write_text(value + "\n")
    return path


def test_token_authenticates_over_http(tmp_path: Path, remote: tuple[Path, Path],
                                       https_remote: tuple[str, type[GitHttp]]) -> None:
    """With --git-token-file, git authenticates through the askpass helper and fetches."""
    bare, _ = remote
    url, handler = https_remote
    source = _source(tmp_path, url, token_file=_token_file(tmp_path, TOKEN))
    sha = source.fetch()
    assert sha == git(bare, "rev-parse", "main")
    assert source.read_environment_files(sha)[PROD] == FILES[PROD]
    assert "x-access-token" in handler.usernames


def test_token_never_leaks(tmp_path: Path, remote: tuple[Path, Path],
                           https_remote: tuple[str, type[GitHttp]],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The token is in no process argv or environment, no cache file, no temp helper left."""
    url, handler = https_remote
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    source = _source(tmp_path, url, token_file=_token_file(tmp_path, TOKEN))
    source.fetch()
    source.fetch()
    assert handler.usernames, "the authenticated request (and the scan) happened"
    assert handler.leaks == []
    assert list(temp.iterdir()) == []  # the askpass folder is removed after each call
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    config = (tmp_path / "cache" / "config").read_text()
    assert url in config and "@" not in config
    assert source.secrets() == [TOKEN]


def test_wrong_token_is_a_scrubbed_source_error(tmp_path: Path, remote: tuple[Path, Path],
                                                https_remote: tuple[str, type[GitHttp]]) -> None:
    """A rejected token fails the fetch; neither message nor cause chain contains it."""
    url, _ = https_remote
    wrong = "glpat-WrongButStillSecret"
    source = _source(tmp_path, url, token_file=_token_file(tmp_path, wrong))
    with pytest.raises(SourceError, match=r"Authentication failed for 'http://[^']+'") as info:
        source.fetch()
    chain = f"{info.value} {info.value.__cause__!s} {info.value.__cause__!r}"
    assert wrong not in chain


def test_missing_token_file_is_reported(tmp_path: Path,
                                        https_remote: tuple[str, type[GitHttp]]) -> None:
    """A token file that cannot be read is named in the error, before git runs."""
    url, _ = https_remote
    source = _source(tmp_path, url, token_file=tmp_path / "absent")
    with pytest.raises(SourceError, match="token file"):
        source.fetch()


def test_no_token_fails_fast_instead_of_prompting(tmp_path: Path,
                                                  https_remote: tuple[str, type[GitHttp]]) -> None:
    """Without credentials git does not hang on a terminal prompt: it fails at once."""
    url, _ = https_remote
    with pytest.raises(SourceError):
        _source(tmp_path, url, timeout=30).fetch()
