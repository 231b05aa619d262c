"""`propose` as users (and their pipelines) run it: a new qualifying version becomes one
branch and one pull request, a newer one updates both in place, and nothing else moves."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

from tests.support.cli import run_cli
from tests.support.controller_proc import ControllerProcess, wait_until
from tests.support.fake_forge import TOKEN, FakeForge
from tests.support.git_http import serve_git_http
from tests.support.gitrepos import bare_remote, git

STAGING = """\
apiVersion: mlflow-gitops/v1
kind: Environment
target: {{stage: Staging}}
propose:
  when:
    tags: {{validation_status: passed}}
promotion:
  gates:
    - metric: accuracy
      min: 0.9
models:
  {model}: 1   # proposals edit this line
"""
PRODUCTION = """\
apiVersion: mlflow-gitops/v1
kind: Environment
target: {stage: Production}
models: {}
"""


def _seed(tmp_path: Path, client: Any, model: str) -> tuple[Path, Path]:
    client.create_registered_model(model)
    return bare_remote(tmp_path, {
        "environments/staging.yaml": STAGING.format(model=model),
        "environments/production.yaml": PRODUCTION})


def _version(client: Any, model: str, accuracy: float, passed: bool) -> int:
    """What a training pipeline does: log a run, register it, tag it when validated."""
    experiment = client.get_experiment_by_name(f"exp-{model}") or None
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(
        f"exp-{model}")
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "accuracy", accuracy)
    client.set_terminated(run.info.run_id)
    mv = client.create_model_version(model, source="s3://bucket/m", run_id=run.info.run_id)
    if passed:
        client.set_model_version_tag(model, mv.version, "validation_status", "passed")
    return int(mv.version)


def _clone_as_github(work: Path, bare: Path) -> None:
    """origin reads as a GitHub repository while pushes go to the local bare remote."""
    git(work, "remote", "set-url", "origin", "https://github.com/acme/ml-envs.git")
    git(work, "remote", "set-url", "--push", "origin", str(bare))


def _propose(work: Path, server: Any, forge: FakeForge, *extra: str) -> Any:
    return run_cli("propose", "--open-pr", "--api-url", f"{forge.url}/api/v3", *extra,
                   cwd=work, env={"MLFLOW_TRACKING_URI": server.uri, "GITHUB_TOKEN": TOKEN})


def test_a_qualifying_version_becomes_one_branch_and_one_pull_request(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        forge: FakeForge) -> None:
    """A new tagged version that passes the gates gives one branch with the one-line edit and
    one PR; a newer one updates both in place; a second run changes nothing."""
    model = f"prop-{unique}"
    bare, work = _seed(tmp_path, mlflow_client, model)
    _clone_as_github(work, bare)
    _version(mlflow_client, model, 0.95, passed=True)  # v1, assigned already
    _version(mlflow_client, model, 0.96, passed=True)  # v2
    main_before = git(work, "rev-parse", "main")
    first = _propose(work, mlflow_server, forge)
    assert first.code == 0, first.err
    branch = f"propose/staging/{model}"
    assert f"staging/{model}: proposed v2 (v1 → v2) on branch {branch}" in first.out
    assert git(work, "rev-parse", "main") == main_before
    edited = git(bare, "show", f"{branch}:environments/staging.yaml") + "\n"
    assert edited == STAGING.format(model=model).replace(f"  {model}: 1   #", f"  {model}: 2   #")
    assert git(bare, "log", "-1", "--format=%s", branch) == \
        f"Promote {model} to v2 in staging (v1 → v2)"
    assert git(bare, "rev-parse", f"{branch}~1") == main_before
    assert [(p["number"], p["title"]) for p in forge.open_pulls(branch)] == [
        (1, f"Promote {model} to v2 in staging (v1 → v2)")]
    assert "| accuracy |" in forge.open_pulls(branch)[0]["body"]

    again = _propose(work, mlflow_server, forge)
    assert again.code == 0, again.err
    assert "already proposed: v2" in again.out
    assert len(forge.pulls) == 1 and git(bare, "rev-parse", branch) == git(
        work, "rev-parse", branch)
    writes = [r for r in forge.requests if r["method"] in ("POST", "PATCH")]
    assert len(writes) == 1

    _version(mlflow_client, model, 0.97, passed=True)  # v3
    newer = _propose(work, mlflow_server, forge)
    assert newer.code == 0, newer.err
    assert "proposal updated to v3 (v1 → v3)" in newer.out
    assert len(forge.pulls) == 1
    assert forge.open_pulls(branch)[0]["title"] == f"Promote {model} to v3 in staging (v1 → v3)"
    assert f"  {model}: 3   #" in git(bare, "show", f"{branch}:environments/staging.yaml")
    assert git(bare, "rev-list", "--count", f"main..{branch}") == "1"


def test_non_qualifying_versions_give_no_proposal_and_say_why(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        forge: FakeForge) -> None:
    """An untagged version, one failing a gate and one rejected are skipped with reasons."""
    model = f"prop-no-{unique}"
    bare, work = _seed(tmp_path, mlflow_client, model)
    _clone_as_github(work, bare)
    _version(mlflow_client, model, 0.95, passed=True)  # v1, assigned
    _version(mlflow_client, model, 0.99, passed=False)  # v2: not validated
    _version(mlflow_client, model, 0.50, passed=True)  # v3: fails accuracy >= 0.9
    result = _propose(work, mlflow_server, forge, "-o", "json")
    assert result.code == 0, result.err
    (proposal,) = json.loads(result.out)["proposals"]
    assert proposal["candidate"] is None and proposal["action"] == "none"
    reasons = {s["version"]: s["reason"] for s in proposal["skipped"]}
    assert "validation_status is missing" in reasons[2]
    assert "accuracy 0.5 < min 0.9" in reasons[3]
    assert forge.pulls == []
    assert git(bare, "branch", "--list", "propose/*") == ""


def test_a_pull_request_closed_unmerged_is_not_proposed_again(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        forge: FakeForge) -> None:
    """Once a person closes a proposal without merging, its version is skipped for good."""
    model = f"prop-closed-{unique}"
    bare, work = _seed(tmp_path, mlflow_client, model)
    _clone_as_github(work, bare)
    _version(mlflow_client, model, 0.95, passed=True)
    _version(mlflow_client, model, 0.96, passed=True)  # v2
    assert _propose(work, mlflow_server, forge).code == 0
    forge.close(1)
    again = _propose(work, mlflow_server, forge)
    assert again.code == 0, again.err
    assert "skipped v2: its proposal was closed without merging" in again.out
    assert len(forge.pulls) == 1 and forge.open_pulls(f"propose/staging/{model}") == []


def test_the_controller_proposes_a_registered_and_tagged_version_by_itself(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        forge: FakeForge) -> None:
    """With --propose, a pipeline registering and tagging a version is all it takes: the
    controller pushes the proposal branch (with the git token) and opens the PR."""
    model = f"prop-ctl-{unique}"
    bare, _ = _seed(tmp_path, mlflow_client, model)
    _version(mlflow_client, model, 0.95, passed=True)  # v1, assigned
    served = tmp_path / "http" / "acme"
    served.mkdir(parents=True)
    shutil.move(str(bare), served / "ml-envs.git")
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    with serve_git_http(served.parent, TOKEN) as (root, _handler):
        controller = ControllerProcess(
            tmp_path, f"{root}/acme/ml-envs.git", mlflow_server.uri, "--propose",
            "--git-token-file", str(token), "--forge-api-url", f"{forge.url}/api/v3").start()
        try:
            wait_until(lambda: controller.passes() >= 2, timeout=60, message="two passes")
            assert forge.pulls == []
            _version(mlflow_client, model, 0.97, passed=True)  # v2: the pipeline's two lines
            branch = f"propose/staging/{model}"
            wait_until(lambda: forge.open_pulls(branch), timeout=60, message="the proposal PR")
            assert forge.open_pulls(branch)[0]["title"] == \
                f"Promote {model} to v2 in staging (v1 → v2)"
            edited = git(served / "ml-envs.git", "show", f"{branch}:environments/staging.yaml")
            assert f"  {model}: 2   #" in edited
            wait_until(lambda: f"staging/{model}: already proposed: v2" in controller.logs()
                       or controller.passes() >= 8, timeout=60, message="a quiet round")
            assert len(forge.pulls) == 1
            assert TOKEN not in controller.logs()
        finally:
            controller.terminate()


def test_a_version_not_soaked_yet_is_not_proposed_downstream(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """Production (from staging, min_soak 1h) skips a version applied to staging just now,
    saying how long it has soaked; staging, already at the newest, proposes nothing."""
    model = f"prop-soak-{unique}"
    mlflow_client.create_registered_model(model)
    _version(mlflow_client, model, 0.95, passed=True)  # v1
    _version(mlflow_client, model, 0.96, passed=True)  # v2
    staging = STAGING.format(model=model).replace(f"  {model}: 1   #", f"  {model}: 2   #")
    production = (
        "apiVersion: mlflow-gitops/v1\nkind: Environment\ntarget: {stage: Production}\n"
        "promotion: {from: staging, min_soak: 1h}\n"
        "propose: {when: {tags: {validation_status: passed}}}\n"
        f"models:\n  {model}: 1\n")
    _, work = bare_remote(tmp_path, {"environments/staging.yaml": staging,
                                     "environments/production.yaml": production})
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    with warnings.catch_warnings():  # production serves v1 already (stages are deprecated)
        warnings.simplefilter("ignore")
        mlflow_client.transition_model_version_stage(model, "1", "Production")
    applied = run_cli("apply", cwd=work, env=env)
    assert applied.code == 0, applied.out + applied.err
    result = run_cli("propose", "-o", "json", cwd=work, env=env)
    assert result.code == 0, result.err
    by_env = {p["environment"]: p for p in json.loads(result.out)["proposals"]}
    assert by_env["staging"]["candidate"] is None and by_env["staging"]["skipped"] == []
    assert by_env["production"]["candidate"] is None
    (skipped,) = by_env["production"]["skipped"]
    assert skipped["version"] == 2 and "min_soak 1h" in skipped["reason"]
    assert git(work, "branch", "--list", "propose/*") == ""


def test_rejected_and_held_versions_give_no_proposal_and_say_why(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """A rejected version is skipped with the rejection's reason; while the model is held in
    the environment, nothing is proposed there and propose says it is held."""
    model = f"prop-rej-{unique}"
    _, work = _seed(tmp_path, mlflow_client, model)
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    _version(mlflow_client, model, 0.95, passed=True)  # v1, assigned
    _version(mlflow_client, model, 0.96, passed=True)  # v2
    rejected = run_cli("reject", model, "--version", "2", "--reason", "leaks PII", env=env)
    assert rejected.code == 0, rejected.err
    result = run_cli("propose", "-o", "json", cwd=work, env=env)
    assert result.code == 0, result.err
    (proposal,) = json.loads(result.out)["proposals"]
    assert proposal["candidate"] is None
    assert "leaks PII" in proposal["skipped"][0]["reason"]

    _version(mlflow_client, model, 0.97, passed=True)  # v3 would qualify, but:
    held = run_cli("hold", model, "--env", "staging", "--reason", "incident 42",
                   cwd=work, env=env)
    assert held.code == 0, held.err
    result = run_cli("propose", "-o", "json", cwd=work, env=env)
    (proposal,) = json.loads(result.out)["proposals"]
    assert proposal["candidate"] is None
    assert "incident 42" in proposal["skipped"][0]["reason"]
    released = run_cli("release", model, "--env", "staging", cwd=work, env=env)
    assert released.code == 0, released.err
    result = run_cli("propose", cwd=work, env=env)
    assert f"staging/{model}: proposed v3 (v1 → v3)" in result.out
