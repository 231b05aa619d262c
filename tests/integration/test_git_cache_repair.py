"""The git cache repairs itself against real repositories: leftovers of a killed git, a full
disk (a real tmpfs when the tests may mount one) and a corrupt cache never fail fetches
forever, and a folder of someone else's files is never wiped."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow_gitops.adapters.git.cache import STALE_LOCK_SECONDS
from mlflow_gitops.adapters.git.source import GitSource
from mlflow_gitops.core.errors import SourceError

from tests.support.gitrepos import bare_remote, commit_all, git, write_files

PROD = "environments/production.yaml"
FILES = {PROD: "models: {churn: {version: 1}}\n"}
LOCKS = ("refs/remotes/origin/main.lock", "packed-refs.lock", "shallow.lock", "index.lock",
         "config.lock")


def _source(cache: Path, bare: Path) -> GitSource:
    return GitSource(bare.as_uri(), "main", "environments", cache, timeout=20)


def _push(work: Path, files: dict[str, str], message: str) -> str:
    write_files(work, files)
    sha = commit_all(work, message)
    git(work, "push", "-q", "origin", "HEAD:main")
    return sha


def _leave_locks(cache: Path, age: float = 0.0) -> None:
    for rel in LOCKS:
        path = cache / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
        if age:
            os.utime(path, (time.time() - age, time.time() - age))


def test_locks_left_by_a_killed_git_are_removed_before_fetch(tmp_path: Path) -> None:
    """A ref, packed-refs, shallow, index or config lock left by a killed git does not fail
    the next fetch: the controller owns its cache, so no running git can hold them."""
    bare, work = bare_remote(tmp_path, FILES)
    cache = tmp_path / "cache"
    _source(cache, bare).fetch()
    _leave_locks(cache)
    sha = _push(work, {PROD: "models: {churn: {version: 2}}\n"}, "second")
    restarted = _source(cache, bare)  # a new process: the old owner is gone
    assert restarted.fetch() == sha
    assert restarted.read_environment_files(sha)[PROD].endswith("version: 2}}\n")
    assert not [rel for rel in LOCKS if (cache / rel).exists()]


def test_a_cache_in_use_by_another_process_loses_only_old_locks(tmp_path: Path) -> None:
    """While another process owns the cache, a fresh lock may be its git at work and is left
    alone; a lock older than the safe age is removed all the same."""
    bare, work = bare_remote(tmp_path, FILES)
    cache = tmp_path / "cache"
    owner = _source(cache, bare)
    owner.fetch()  # takes the cache's owner lock and keeps it
    second = _source(cache, bare)
    _leave_locks(cache)
    _push(work, {PROD: "models: {churn: {version: 2}}\n"}, "second")
    with pytest.raises(SourceError, match="lock"):
        second.fetch()
    assert (cache / "refs/remotes/origin/main.lock").exists()
    _leave_locks(cache, age=STALE_LOCK_SECONDS + 60)
    sha = _push(work, {PROD: "models: {churn: {version: 3}}\n"}, "third")
    assert second.fetch() == sha
    owner.close()


def test_temporary_objects_are_removed(tmp_path: Path) -> None:
    """Half-written objects and packs of a killed fetch are deleted before the next one."""
    bare, work = bare_remote(tmp_path, FILES)
    cache = tmp_path / "cache"
    _source(cache, bare).fetch()
    junk = [cache / "objects/pack/tmp_pack_a1b2c3", cache / "objects/pack/tmp_idx_a1b2c3",
            cache / "objects/ab/tmp_obj_x1y2z3", cache / "objects/pack/pack-1.tmp"]
    for path in junk:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * 4096)
    _source(cache, bare).fetch()
    assert not [p for p in junk if p.exists()]


def _loose_object(cache: Path, sha: str) -> Path:
    return cache / "objects" / sha[:2] / sha[2:]


def test_a_corrupt_object_is_healed_by_a_fresh_clone(tmp_path: Path) -> None:
    """An environment file whose object is corrupt in the cache (disk damage) fails one read;
    the next fetch replaces the cache with a fresh clone and the file reads again."""
    bare, work = bare_remote(tmp_path, FILES)
    cache = tmp_path / "cache"
    source = _source(cache, bare)
    marker = f"models: {{churn: {{version: 7}}}}  # {uuid.uuid4()}\n"
    sha = _push(work, {PROD: marker}, "loose objects")
    assert source.fetch() == sha
    blob = git(work, "rev-parse", f"{sha}:{PROD}")
    loose = _loose_object(cache, blob)
    if not loose.exists():  # fetched as a pack: unpack it so one object can be damaged
        packs = list((cache / "objects/pack").glob("*.pack"))
        for pack in packs:
            moved = tmp_path / pack.name
            pack.rename(moved)
            pack.with_suffix(".idx").unlink()
            subprocess.run(["git", "unpack-objects", "-q"], cwd=cache, stdin=moved.open("rb"),
                           check=True)
    loose.chmod(0o644)
    loose.write_bytes(b"this is not a zlib stream")
    source.close()
    source = _source(cache, bare)
    source.fetch()
    with pytest.raises(SourceError, match="fresh clone"):
        source.read_environment_files(sha)
    assert source.fetch() == sha
    assert source.read_environment_files(sha)[PROD] == marker


def test_a_broken_cache_is_recloned(tmp_path: Path) -> None:
    """A cache whose config and HEAD were lost still serves the branch: it is re-cloned."""
    bare, work = bare_remote(tmp_path, FILES)
    cache = tmp_path / "cache"
    _source(cache, bare).fetch()
    (cache / "HEAD").unlink()
    (cache / "config").write_text("[core\n garbage")
    sha = _push(work, {PROD: "models: {churn: {version: 4}}\n"}, "fourth")
    source = _source(cache, bare)
    assert source.fetch() == sha
    assert (cache / "HEAD").exists()
    assert not list(tmp_path.glob("cache.fresh-*")) and not list(tmp_path.glob("cache.old-*"))


def test_a_foreign_folder_is_never_wiped_even_when_it_looks_broken(tmp_path: Path) -> None:
    """Repair replaces only a cache this source made; a folder of files is reported as is."""
    bare, _ = bare_remote(tmp_path, FILES)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "notes.txt").write_text("keep me")
    for _ in range(2):
        with pytest.raises(SourceError, match="not a git repository"):
            _source(cache, bare).fetch()
    assert (cache / "notes.txt").read_text() == "keep me"


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs, when this test may mount one (root on Linux)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_frees_itself_once_the_big_commit_is_gone(
        tmp_path: Path, small_disk: Path) -> None:
    """A commit too big for the cache's disk fails the fetch with a clear reason and leaves
    no temporary objects behind; after it is force-pushed away the next fetch works."""
    bare, work = bare_remote(tmp_path, FILES)
    good = git(work, "rev-parse", "HEAD")
    cache = small_disk / "repo"
    source = _source(cache, bare)
    assert source.fetch() == good
    write_files(work, {"blob.bin": ""})
    (work / "blob.bin").write_bytes(os.urandom(5 * 1024 * 1024))
    commit_all(work, "a huge file")
    git(work, "push", "-q", "origin", "HEAD:main")
    with pytest.raises(SourceError, match="full|space"):
        source.fetch()
    leftovers = [p for p in (cache / "objects").rglob("*") if p.name.startswith("tmp_")]
    assert leftovers == []
    git(work, "reset", "-q", "--hard", good)
    write_files(work, {PROD: "models: {churn: {version: 5}}\n"})
    after = commit_all(work, "small again")
    git(work, "push", "-q", "--force", "origin", "HEAD:main")
    assert source.fetch() == after
    assert source.read_environment_files(after)[PROD].endswith("version: 5}}\n")


def test_a_reader_sharing_the_cache_follows_the_fresh_clone(tmp_path: Path) -> None:
    """The web page reads history through a second GitSource on the same cache; after the
    controller's source replaced a broken cache, that reader opens the new one."""
    bare, work = bare_remote(tmp_path, FILES)
    cache = tmp_path / "cache"
    source, reader = _source(cache, bare), _source(cache, bare)
    sha = source.fetch()
    assert reader.file_history(PROD)[0].sha == sha
    (cache / "config").write_text("[core\n garbage")
    newer = _push(work, {PROD: "models: {churn: {version: 6}}\n"}, "sixth")
    assert source.fetch() == newer
    assert reader.file_history(PROD)[0].sha == newer
