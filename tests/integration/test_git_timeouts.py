"""A git remote that accepts connections and never answers (a hung push or fetch): the
proposals' git calls are killed at their timeout instead of holding the round forever."""

from __future__ import annotations

import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow_gitops.adapters.git.worktree import WorkTree
from mlflow_gitops.core.errors import SourceError

from tests.support.gitrepos import git


class _Silent(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.recv(65536)
        self.server.done.wait(60)  # type: ignore[attr-defined]


@pytest.fixture()
def silent_remote() -> Iterator[str]:
    """An HTTP "git server" that reads the request and never answers."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Silent)
    server.daemon_threads = True
    server.done = threading.Event()  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/acme/ml-envs.git"
    server.done.set()  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


def test_a_remote_that_never_answers_fails_the_call_at_its_timeout(
        tmp_path: Path, silent_remote: str) -> None:
    """ls-remote/fetch (what a proposal does before pushing) and push against a remote
    that hangs each end in a one-line SourceError at the timeout, not never."""
    work = tmp_path / "clone"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "f.txt").write_text("x\n")
    git(work, "add", "f.txt")
    git(work, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "x")
    git(work, "remote", "add", "origin", silent_remote)
    tree = WorkTree(work, remote_timeout=2.0)
    for call in (lambda: tree.remote_branch_tip("origin", "propose/staging/m"),
                 lambda: tree.force_push("origin", "main")):
        started = time.monotonic()
        with pytest.raises(SourceError) as caught:
            call()
        assert time.monotonic() - started < 8
        assert "\n" not in str(caught.value)
