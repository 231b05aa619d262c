"""The controller as a process when its git cache or remote fails:
leftovers of a killed git never stop it, and /readyz says when git cannot be read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.controller_proc import ControllerProcess, start, synced_at, wait_until
from tests.support.envfiles import env_files
from tests.support.gitrepos import bare_remote, commit_all, git, write_files
from tests.support.registry_helpers import make_model, stages_of


def test_locks_left_by_a_killed_controller_do_not_stop_the_next_one(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        controllers: list[ControllerProcess]) -> None:
    """A controller killed in the middle of a fetch leaves `main.lock`, `packed-refs.lock`
    and half-written objects in its cache; the restarted controller removes them and applies
    the commit pushed meanwhile."""
    model = f"lock-{unique}"
    make_model(mlflow_client, model, 3)
    bare, work = bare_remote(tmp_path, env_files(model, production=1, staging=2))
    cache = tmp_path / "kept-cache"
    first = start(controllers, tmp_path, bare.as_uri(), mlflow_server.uri,
                  "--cache-dir", str(cache), interval=0.5)
    wait_until(lambda: synced_at(first, git(work, "rev-parse", "HEAD")), message="first sync")
    first.kill()  # kill -9: nothing is cleaned up
    repo = cache / "repo"
    for rel in ("refs/remotes/origin/main.lock", "packed-refs.lock", "shallow.lock"):
        (repo / rel).write_text("")
    (repo / "objects/pack/tmp_pack_dead01").write_bytes(b"\0" * 1024)

    write_files(work, env_files(model, 2, 3))
    sha = commit_all(work, "promote v2 while the controller was down")
    git(work, "push", "-q", "origin", "HEAD:main")
    second = start(controllers, tmp_path, bare.as_uri(), mlflow_server.uri,
                   "--cache-dir", str(cache), interval=0.5)
    wait_until(lambda: synced_at(second, sha), message="the restarted controller applied it")
    assert stages_of(mlflow_client, model) == {1: "Archived", 2: "Production", 3: "Staging"}
    assert not (repo / "refs/remotes/origin/main.lock").exists()
    assert not (repo / "objects/pack/tmp_pack_dead01").exists()
    assert any("stale git lock" in r.get("message", "") for r in second.log_records())
    assert second.terminate() == 0


def test_readyz_is_503_with_the_reason_while_git_cannot_be_read(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        controllers: list[ControllerProcess]) -> None:
    """While the remote cannot be fetched, /readyz answers 503 naming the git source; once it
    is back, 200 again and the pending commit is applied."""
    model = f"gitready-{unique}"
    make_model(mlflow_client, model, 3)
    bare, work = bare_remote(tmp_path, env_files(model, production=1, staging=2))
    proc = start(controllers, tmp_path, bare.as_uri(), mlflow_server.uri, interval=0.5)
    wait_until(lambda: proc.get("/readyz")[0] == 200, message="ready")

    moved = tmp_path / "moved.git"
    shutil.move(str(bare), str(moved))
    code, body = wait_until(lambda: (r := proc.get("/readyz"))[0] == 503 and r,
                            message="readyz 503 while git is gone")
    assert "git source unreadable" in body.decode()
    assert proc.proc is not None and proc.proc.poll() is None

    shutil.move(str(moved), str(bare))
    write_files(work, env_files(model, 2, 3))
    sha = commit_all(work, "promote after the remote came back")
    git(work, "push", "-q", "origin", "HEAD:main")
    wait_until(lambda: synced_at(proc, sha), timeout=30, message="applied after the outage")
    assert proc.get("/readyz")[0] == 200
    assert json.loads(proc.get("/status")[1])["last_error"] is None
    assert proc.terminate() == 0


def test_a_full_disk_is_reported_and_frees_itself(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        controllers: list[ControllerProcess]) -> None:
    """With the git cache on a 3 MB tmpfs, a commit too big for it turns /readyz 503 naming
    the full disk; once the big commit is force-pushed away the cache has room again, /readyz
    is 200 and the next commit is applied."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        model = f"disk-{unique}"
        make_model(mlflow_client, model, 3)
        bare, work = bare_remote(tmp_path, env_files(model, production=1, staging=2))
        good = git(work, "rev-parse", "HEAD")
        proc = start(controllers, tmp_path, bare.as_uri(), mlflow_server.uri,
                     "--cache-dir", str(disk), interval=0.5)
        wait_until(lambda: proc.get("/readyz")[0] == 200, message="ready")

        (work / "big.bin").write_bytes(os.urandom(5 * 1024 * 1024))
        commit_all(work, "a file too big for the cache")
        git(work, "push", "-q", "origin", "HEAD:main")
        code, body = wait_until(lambda: (r := proc.get("/readyz"))[0] == 503 and r,
                                message="readyz 503 while the disk is full")
        assert "full" in body.decode()
        assert not [p for p in (disk / "repo" / "objects").rglob("tmp_*")]

        git(work, "reset", "-q", "--hard", good)
        write_files(work, env_files(model, 2, 3))
        sha = commit_all(work, "the big file is gone; promote v2")
        git(work, "push", "-q", "--force", "origin", "HEAD:main")
        wait_until(lambda: synced_at(proc, sha), timeout=30, message="applied after the purge")
        assert proc.get("/readyz")[0] == 200
        assert proc.terminate() == 0
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
