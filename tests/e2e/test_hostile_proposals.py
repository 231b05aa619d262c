"""Proposals against hostile names and a slow forge, with the controller as a process
(`run --propose`), a real MLflow server, a git remote over HTTP and the stand-in GitHub of
tests/support/fake_forge.py: every name gets its own valid branch, one model's failure
stops no other, a closed proposal stays closed, and a slow forge never delays a heal."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.controller_proc import ControllerProcess, wait_until
from tests.support.fake_forge import TOKEN, FakeForge
from tests.support.git_http import serve_git_http
from tests.support.gitrepos import bare_remote, git
from tests.support.registry_helpers import make_model

pytestmark = pytest.mark.slow

STAGING = """\
apiVersion: mlflow-gitops/v1
kind: Environment
target: {{stage: Staging}}
propose:
  when:
    tags: {{validation_status: passed}}
models:
{models}"""
PRODUCTION = """\
apiVersion: mlflow-gitops/v1
kind: Environment
target: {{alias: champion}}
models:
  "{model}": 1
"""
REJECT_ONE = """#!/bin/sh
# refuses pushes to one branch, as a protected-branch rule would
while read old new ref; do
  if [ "$ref" = "refs/heads/{branch}" ]; then echo "protected: $ref" >&2; exit 1; fi
done
"""


def _valid_ref(branch: str) -> bool:
    return subprocess.run(["git", "check-ref-format", "--branch", branch],
                          capture_output=True).returncode == 0


def test_hostile_names_get_distinct_branches_and_a_slow_forge_delays_no_heal(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        forge: FakeForge) -> None:
    """`a..b`, `fraud-detector`, `fraud_detector`, `模型` and `my model` each get their own
    branch that git accepts and their own pull request, while a push refused for
    `fraud_detector` fails only that one; a proposal closed unmerged for `my model` is not
    opened again; and with every forge call then taking 25 s, a hand-moved alias is still
    healed within a few 1 s intervals (not after the round)."""
    from mlflow_gitops.app.propose import branch_name

    names = [f"a..b-{unique}", f"fraud-detector-{unique}", f"fraud_detector-{unique}",
             f"模型-{unique}", f"my model-{unique}"]
    for name in names:
        make_model(mlflow_client, name, 2, stages={1: "Staging"})
        mlflow_client.set_model_version_tag(name, "2", "validation_status", "passed")
    champion = names[1]
    mlflow_client.set_registered_model_alias(champion, "champion", "1")
    branches = {name: branch_name("staging", name) for name in names}
    assert len(set(branches.values())) == len(names)
    assert all(_valid_ref(b) for b in branches.values()), branches

    bare, _ = bare_remote(tmp_path, {
        "environments/staging.yaml": STAGING.format(
            models="".join(f'  "{n}": 1\n' for n in names)),
        "environments/production.yaml": PRODUCTION.format(model=champion)})
    refused = branches[names[2]]
    hook = bare / "hooks" / "pre-receive"
    hook.write_text(REJECT_ONE.format(branch=refused))
    hook.chmod(0o755)
    served = tmp_path / "http" / "acme"
    served.mkdir(parents=True)
    shutil.move(str(bare), served / "ml-envs.git")
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    with serve_git_http(served.parent, TOKEN) as (root, _handler):
        proc = ControllerProcess(
            tmp_path, f"{root}/acme/ml-envs.git", mlflow_server.uri, "--propose",
            "--git-token-file", str(token), "--forge-api-url", f"{forge.url}/api/v3")
        try:
            proc.start()
            opened = [n for n in names if n != names[2]]
            wait_until(lambda: all(forge.open_pulls(branches[n]) for n in opened),
                       timeout=90, message="a pull request for every other name")
            wait_until(lambda: f"staging/{names[2]}: proposal failed" in proc.logs(),
                       message="the refused push reported for its model alone")
            assert forge.open_pulls(refused) == []
            heads = git(served / "ml-envs.git", "for-each-ref", "--format=%(refname)",
                        "refs/heads/propose/")
            assert sorted(heads.split()) == sorted(f"refs/heads/{branches[n]}" for n in opened)

            (spaced,) = forge.open_pulls(branches[names[4]])
            forge.close(spaced["number"])
            count = len(forge.pulls)
            wait_until(lambda: f"staging/{names[4]}: nothing to propose" in proc.logs()
                       or f"staging/{names[4]}: not proposed again" in proc.logs(),
                       timeout=60, message="a round that sees the close")
            passes = proc.passes()
            wait_until(lambda: proc.passes() >= passes + 3, message="three more passes")
            assert len(forge.pulls) == count and forge.open_pulls(branches[names[4]]) == []
            assert not [p for p in forge.pulls if p["head"] == refused]

            forge.delay = 25.0  # every forge call from now on takes 25 s (the timeout is 30)
            passes = proc.passes()
            wait_until(lambda: proc.passes() >= passes + 2, message="a round under way")
            mlflow_client.set_registered_model_alias(champion, "champion", "2")
            moved = time.monotonic()
            wait_until(lambda: mlflow_client.get_registered_model(champion).aliases
                       == {"champion": "1"}, timeout=20, every=0.1,
                       message="the hand-moved alias healed despite the slow forge")
            # A round now takes over 2 minutes (5 models × 25 s); passes go on meanwhile.
            assert time.monotonic() - moved < 12
        finally:
            forge.delay = 0.0
            proc.kill()
    assert TOKEN not in proc.logs()
