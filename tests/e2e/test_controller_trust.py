"""Trust at apply with the controller as a process: a real MLflow server, a bare git remote
with commits signed by git with keys from ssh-keygen, and a GitHub stand-in answering pull
requests and reviews. One controller walks through every attack and fault in turn (each a
step with its own assertions), so the whole story costs one process start."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.controller_proc import ControllerProcess, start, wait_until
from tests.support.envfiles import HEADER
from tests.support.fake_forge import TOKEN, FakeForge
from tests.support.gitrepos import git, init_repo, write_files
from tests.support.registry_helpers import make_model
from tests.support.signing import (
    SshKey,
    allowed_signers,
    commit_signed,
    merge_signed,
    ssh_key,
    tamper_tree,
)

pytestmark = pytest.mark.slow


def _files(fraud: int, staging: int = 1) -> dict[str, str]:
    return {"environments/production.yaml": HEADER + "target:\n  alias: champion\n"
            f"models:\n  fraud: {fraud}\n  churn: 1\n",
            "environments/staging.yaml": HEADER + "target:\n  alias: challenger\n"
            f"models:\n  fraud: {staging}\n"}


class Repo:
    """The environments repository: a work clone that signs, pushes and merges."""

    def __init__(self, tmp_path: Path, forge: FakeForge, models: tuple[str, str]) -> None:
        self.forge = forge
        self.models = models
        self.work = init_repo(tmp_path / "work")
        self.bare = tmp_path / "remote.git"
        self.pulls = 0

    def files(self, fraud: int, staging: int = 1) -> dict[str, str]:
        text = _files(fraud, staging)
        return {k: v.replace("fraud:", f"{self.models[0]}:").replace("churn:",
                f"{self.models[1]}:") for k, v in text.items()}

    def push(self, fraud: int, key: SshKey | None, staging: int = 1, force: bool = False
             ) -> str:
        """A direct push to main, signed with `key`."""
        write_files(self.work, self.files(fraud, staging))
        git(self.work, "add", "-A")
        sha = commit_signed(self.work, f"{self.models[0]} v{fraud}", key)
        git(self.work, "push", "-q", *(["-f"] if force else []), "origin", "HEAD:main")
        return sha

    def merge(self, fraud: int, key: SshKey, reviews: list[tuple[str, str]]) -> str:
        """A pull request by ada, reviewed, merged with a signed merge commit."""
        self.pulls += 1
        branch = f"pr-{self.pulls}"
        git(self.work, "checkout", "-q", "-b", branch)
        write_files(self.work, self.files(fraud))
        git(self.work, "add", "-A")
        change = commit_signed(self.work, f"{self.models[0]} v{fraud}", key)
        git(self.work, "checkout", "-q", "main")
        merge = merge_signed(self.work, branch, f"Merge pull request #{self.pulls}", key)
        self.forge.merged_pull(self.pulls, [change], "ada", merge)
        for who, state in reviews:
            self.forge.review(self.pulls, who, state)
        git(self.work, "push", "-q", "origin", "HEAD:main")
        return merge


def _row(proc: ControllerProcess, model: str) -> dict[str, Any]:
    return next(r for r in proc.status()["environments"]
                if r["environment"] == "production" and r["model"] == model)


def _until(proc: ControllerProcess, model: str, sha: str, state: str, text: str = "",
           timeout: float = 45) -> dict[str, Any]:
    """Wait until the controller, at commit `sha`, shows `state` with `text` for `model`."""
    def reached() -> dict[str, Any] | None:
        if proc.status()["last_seen_commit"] != sha:
            return None
        row = _row(proc, model)
        return row if row["sync"] == state and text in (row.get("message") or "") else None

    try:
        return wait_until(reached, timeout=timeout, message=f"{state} {text!r} at {sha[:7]}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; now: {_row(proc, model)}") from None


@pytest.fixture()
def decoy() -> Iterator[FakeForge]:
    """A second forge: nothing, and never the token, may reach it."""
    server = FakeForge()
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _config(tmp_path: Path, forge: FakeForge, signers: Path) -> Path:
    (tmp_path / "forge-token").write_text(TOKEN + "\n")
    config = tmp_path / "controller.yaml"
    config.write_text(
        f"forge:\n  provider: github\n  api_url: {forge.url}/api/v3\n"
        f"  repository: acme/envs\n  token_file: {tmp_path / 'forge-token'}\n"
        f"notifications:\n  - url: {forge.url}/hooks/json\n    events: [refused]\n"
        "trust:\n  environments: [production]\n"
        f"  signed_commits:\n    allowed_signers_file: {signers}\n"
        "  approvals:\n    reviews: 2\n    recheck_seconds: 5\n")
    return config


def test_signed_and_approved_changes_apply_every_attack_is_refused(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        forge: FakeForge, decoy: FakeForge, controllers: list[ControllerProcess],  # noqa: F811
) -> None:
    """Through one controller: a signed, approved merge applies; unsigned, another key, a
    direct push, too few approvals (the author's own not counted), a redirect to another
    host, a forge that is down (Waiting, then the dismissed review is seen), a tampered
    tree and a force-push are refused with their reason in /status, the page, the commit
    status and a notification, while the unguarded entries keep converging; a signed
    rollback needs no approvals; an allowed-signers file that disappears refuses."""
    fraud, churn = f"fraud-{unique}", f"churn-{unique}"
    make_model(mlflow_client, fraud, 5)
    make_model(mlflow_client, churn, 1)
    keys = {"alice": ssh_key(tmp_path / "keys", "alice"),
            "mallory": ssh_key(tmp_path / "keys", "mallory")}
    signers = allowed_signers(tmp_path / "allowed_signers", ("alice@example.com", keys["alice"]))
    repo = Repo(tmp_path, forge, (fraud, churn))
    write_files(repo.work, repo.files(1))
    git(repo.work, "add", "-A")
    seed = commit_signed(repo.work, "environments", keys["alice"])
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.work), str(repo.bare)], check=True)
    git(repo.work, "remote", "add", "origin", str(repo.bare))
    forge.merged_pull(100, [seed], "ada", seed)  # the seed came through a reviewed PR
    forge.review(100, "bob", "APPROVED")
    forge.review(100, "cyd", "APPROVED")
    proc = start(controllers, tmp_path, f"file://{repo.bare}", mlflow_server.uri,
                 "--config", str(_config(tmp_path, forge, signers)), interval=0.5)
    _until(proc, fraud, seed, "Synced", timeout=60)

    def champion() -> str:
        return str(mlflow_client.get_registered_model(fraud).aliases.get("champion"))

    # 1. Unsigned, straight to main: refused; staging (unguarded) in the same commit applies.
    unsigned = repo.push(2, None, staging=2)
    row = _until(proc, fraud, unsigned, "Refused", f"unsigned commit {unsigned[:7]}")
    assert champion() == "1"
    wait_until(lambda: mlflow_client.get_registered_model(fraud).aliases.get("challenger")
               == "2", message="staging applied")
    wait_until(lambda: forge.statuses_for(unsigned, "mlflow-gitops/production"),
               message="a commit status")
    status = forge.statuses_for(unsigned, "mlflow-gitops/production")[-1]
    assert status["state"] == "failure" and f"unsigned commit {unsigned[:7]}" in \
        status["description"]
    wait_until(lambda: [r for r in forge.received if r["body"]["commit"] == unsigned
                        and r["body"]["event"] == "refused"], message="refused notification")
    assert f"unsigned commit {unsigned[:7]}" in proc.get(f"/?model={fraud}")[1].decode() or \
        f"unsigned commit {unsigned[:7]}" in proc.get("/")[1].decode()
    assert row["message"]

    # 2. Another key (each step changes the entry: the commit judged is the one that did).
    other = repo.push(3, keys["mallory"])
    _until(proc, fraud, other, "Refused", "signed by a key not in allowed_signers")
    # 3. The right key, but no pull request.
    direct = repo.push(4, keys["alice"])
    _until(proc, fraud, direct, "Refused", "pushed without a pull request")
    # 4. A pull request the author approved themself, with one other approval; then a
    #    second reviewer approves and it applies (a refusal is asked again after 5 s).
    merged = repo.merge(2, keys["alice"], [("ada", "APPROVED"), ("bob", "APPROVED")])
    _until(proc, fraud, merged, "Refused",
           "approved by 1 of 2 reviewers (the author's own approval does not count)")
    forge.review(repo.pulls, "cyd", "APPROVED")
    _until(proc, fraud, merged, "Synced")
    assert champion() == "2"

    # 5. A forge that redirects elsewhere: refused, and the other host hears nothing.
    forge.redirect_to = decoy.url
    third = repo.merge(3, keys["alice"], [("bob", "APPROVED"), ("cyd", "APPROVED")])
    _until(proc, fraud, third, "Refused", "answered 302")
    assert decoy.requests == []
    # 6. The forge goes down: the change waits (never applied unverified); meanwhile an
    #    admin dismisses cyd's approval; when the forge is back, the change is refused.
    forge.redirect_to = None
    forge.dropping = True
    _until(proc, fraud, third, "Waiting", "not verified yet: cannot read approvals")
    forge.dismiss(repo.pulls, "cyd")
    forge.dropping = False
    _until(proc, fraud, third, "Refused", "approved by 1 of 2 reviewers", timeout=60)
    assert champion() == "2"
    waits = [line for line in proc.logs().splitlines() if fraud in line
             and "not verified yet" in line and '"ERROR"' in line]
    assert waits == []  # a wait is no error storm

    # 7. A signed commit whose tree was swapped, and a force-push rewriting a signed commit.
    signed = repo.push(4, keys["alice"])
    unsigned_tree = repo.push(5, None)
    forged = tamper_tree(repo.work, signed, unsigned_tree)
    git(repo.work, "push", "-q", "-f", "origin", f"{forged}:refs/heads/main")
    _until(proc, fraud, forged, "Refused", f"bad signature on commit {forged[:7]}")
    git(repo.work, "reset", "-q", "--hard", signed)
    git(repo.work, "-c", "commit.gpgsign=false", "commit", "-q", "--amend", "-m", "rewritten")
    rewritten = git(repo.work, "rev-parse", "HEAD")
    git(repo.work, "push", "-q", "-f", "origin", "HEAD:main")
    _until(proc, fraud, rewritten, "Refused", f"unsigned commit {rewritten[:7]}")
    assert champion() == "2"

    # 8. A signed rollback to v1 (served before) needs no pull request.
    rollback = repo.push(1, keys["alice"])
    _until(proc, fraud, rollback, "Synced")
    assert champion() == "1"
    # 9. The allowed-signers file disappears: every guarded change is refused.
    signers.unlink()
    gone = repo.merge(2, keys["alice"], [("bob", "APPROVED"), ("cyd", "APPROVED")])
    _until(proc, fraud, gone, "Refused", "allowed_signers_file")
    assert champion() == "1"
    assert _row(proc, churn)["sync"] == "Synced"
    assert TOKEN not in proc.logs()
    statuses = json.dumps(forge.statuses)
    assert TOKEN not in statuses


def test_the_controller_will_not_start_without_its_allowed_signers(
        tmp_path: Path, forge: FakeForge) -> None:
    """An allowed-signers file that cannot be read stops the start with one line, exit 1."""
    config = _config(tmp_path, forge, tmp_path / "missing_signers")
    done = subprocess.run(
        [sys.executable, "-m", "mlflow_gitops.cli", "run", "--repo", "file:///nowhere.git",
         "--config", str(config), "--listen", "127.0.0.1:0",
         "--cache-dir", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=60,
        env={"MLFLOW_TRACKING_URI": "sqlite:///" + str(tmp_path / "db.sqlite"),
             "PATH": "/usr/bin:/bin"})
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if " INFO " not in line]
    assert len(errors) == 1 and "allowed_signers_file" in errors[0] and "cannot be read" in \
        errors[0] and "Traceback" not in done.stderr
