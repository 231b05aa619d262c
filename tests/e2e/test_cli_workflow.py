"""The pull-request workflow as users run it: promote and rollback open branches in a real
git repository, diff shows reviewers the plan with metrics, history reads the git log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run_cli
from tests.support.fake_forge import TOKEN, FakeForge
from tests.support.gitrepos import bare_remote, git

PRODUCTION = """\
# yaml-language-server: $schema=./schema.json
# Production: reviewed by the ML platform leads.
apiVersion: mlflow-gitops/v1
kind: Environment
target:
  stage: Production

models:
  {model}: 1     # the serving version
  'other-model':
    version: 5
"""
STAGING = """\
apiVersion: mlflow-gitops/v1
kind: Environment
target: {{stage: Staging}}
models:
  {model}: 3
"""


def seed(tmp_path: Path, client: Any, model: str, versions: int = 4,
         accuracies: list[float] | None = None) -> tuple[Path, Path]:
    """A registered model with real runs, and a repo (bare remote + clone) that assigns it."""
    client.create_registered_model(model)
    experiment = client.create_experiment(f"exp-{model}")
    for i in range(versions):
        run = client.create_run(experiment)
        if accuracies:
            client.log_metric(run.info.run_id, "accuracy", accuracies[i])
            client.log_metric(run.info.run_id, "latency_ms", 100 - 10 * i)
        client.set_terminated(run.info.run_id)
        client.create_model_version(model, source="s3://bucket/m", run_id=run.info.run_id)
    files = {"environments/production.yaml": PRODUCTION.format(model=model).replace(
                 "'other-model'", f"'{model}-two'"),
             "environments/staging.yaml": STAGING.format(model=model)}
    client.create_registered_model(f"{model}-two")
    for _ in range(5):
        client.create_model_version(f"{model}-two", source="s3://bucket/m")
    return bare_remote(tmp_path, files)


def test_promote_changes_exactly_one_value_on_a_new_branch(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """promote edits one line (comments and layout kept), moves the version out of staging in
    the same commit, commits on a new branch with a clear message, and leaves main alone."""
    model = f"wf-{unique}"
    _, work = seed(tmp_path, mlflow_client, model)
    main_before = git(work, "rev-parse", "main")
    original = (work / "environments/production.yaml").read_text()
    result = run_cli("promote", model, "--version", "3", "--to", "production",
                     cwd=work, env={"MLFLOW_TRACKING_URI": mlflow_server.uri})
    assert result.code == 0, result.err
    branch = f"promote/{model}-v3-to-production"
    assert f"Created branch {branch}" in result.out
    assert git(work, "rev-parse", "main") == main_before
    assert git(work, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert (work / "environments/production.yaml").read_text() == original
    assert git(work, "status", "--porcelain") == ""
    promoted = git(work, "show", f"{branch}:environments/production.yaml") + "\n"
    assert promoted == original.replace(f"  {model}: 1     #", f"  {model}: 3     #")
    staged = git(work, "show", f"{branch}:environments/staging.yaml") + "\n"
    assert staged == STAGING.format(model=model).replace(f"  {model}: 3\n", "")
    assert git(work, "log", "-1", "--format=%s", branch) == (
        f"Promote {model} to v3 in production (v1 → v3)")
    assert git(work, "log", "-1", "--format=%an <%ae>", branch) == "Ada Tester <ada@example.com>"
    assert git(work, "rev-parse", f"{branch}~1") == main_before
    assert f"+ production  {model} v3: None → Production" in result.out


def test_promote_of_a_missing_version_is_one_clear_line(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """A version the registry does not have is refused before any branch is made."""
    model = f"wf-missing-{unique}"
    _, work = seed(tmp_path, mlflow_client, model, versions=2)
    result = run_cli("promote", model, "--version", "9", "--to", "production", cwd=work,
                     env={"MLFLOW_TRACKING_URI": mlflow_server.uri})
    assert result.code == 1
    assert result.err == (f"mlflow-gitops: error: {model} v9 does not exist in registry "
                          "'default' (known versions: v1-v2)\n")
    assert git(work, "branch", "--list", "promote/*") == ""


def merge(work: Path, branch: str) -> None:
    git(work, "merge", "-q", "--no-ff", branch, "-m", f"Merge {branch}")


def test_rollback_after_three_merged_promotions_and_history(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """After v2, v3, v4 are promoted and merged, rollback proposes v3 and history lists the
    assignments newest first."""
    model = f"wf-hist-{unique}"
    _, work = seed(tmp_path, mlflow_client, model, versions=4)
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    for version in (2, 3, 4):
        assert run_cli("promote", model, "--version", str(version), "--to", "production",
                       cwd=work, env=env).code == 0
        merge(work, f"promote/{model}-v{version}-to-production")
    result = run_cli("rollback", model, "--env", "production", cwd=work, env=env)
    assert result.code == 0, result.err
    branch = f"rollback/{model}-v3-in-production"
    assert f"  {model}: 3     #" in git(work, "show", f"{branch}:environments/production.yaml")
    assert git(work, "log", "-1", "--format=%s", branch) == (
        f"Roll back {model} in production: v4 → v3")

    history = run_cli("history", model, "--env", "production", "--output", "json", cwd=work)
    assert history.code == 0, history.err
    entries = json.loads(history.out)
    assert [(e["old"], e["new"]) for e in entries] == [(3, 4), (2, 3), (1, 2), (None, 1)]
    assert all(e["environment"] == "production" and e["author"] == "Ada Tester "
               "<ada@example.com>" for e in entries)
    assert entries[0]["subject"] == f"Promote {model} to v4 in production (v3 → v4)"
    table = run_cli("history", model, cwd=work)
    assert table.code == 0 and "staging" in table.out and "v3 → v4" in table.out


def forge_clone(work: Path, bare: Path) -> None:
    """origin reads as a GitHub repository while pushes go to the local bare remote."""
    git(work, "remote", "set-url", "origin", "https://github.com/acme/ml-envs.git")
    git(work, "remote", "set-url", "--push", "origin", str(bare))


def test_open_pr_posts_the_plan_and_prints_the_url(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        forge: FakeForge) -> None:
    """--open-pr pushes the branch and opens a GitHub pull request whose body is the plan."""
    model = f"wf-pr-{unique}"
    bare, work = seed(tmp_path, mlflow_client, model)
    forge_clone(work, bare)
    result = run_cli("promote", model, "--version", "2", "--to", "production", "--open-pr",
                     "--api-url", f"{forge.url}/api/v3", cwd=work,
                     env={"MLFLOW_TRACKING_URI": mlflow_server.uri, "GITHUB_TOKEN": TOKEN})
    assert result.code == 0, result.err
    assert result.out.rstrip().endswith("Opened https://github.com/acme/ml-envs/pull/1")
    branch = f"promote/{model}-v2-to-production"
    assert git(bare, "rev-parse", branch) == git(work, "rev-parse", branch)
    request = forge.requests[0]
    assert request["path"] == "/api/v3/repos/acme/ml-envs/pulls"
    assert request["body"]["head"] == branch and request["body"]["base"] == "main"
    assert request["body"]["title"] == f"Promote {model} to v2 in production (v1 → v2)"
    assert f"{model} v2: None → Production" in request["body"]["body"]
    assert TOKEN not in result.out + result.err


@pytest.mark.parametrize("status", [401, 422])
def test_forge_refusals_are_one_clear_line(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        forge: FakeForge, status: int) -> None:
    """A 401 (bad token) or 422 (e.g. the PR exists) from GitHub is one line, exit 1."""
    model = f"wf-pr{status}-{unique}"
    bare, work = seed(tmp_path, mlflow_client, model)
    forge_clone(work, bare)
    token = TOKEN if status == 422 else "ghp_wrong-token-000"
    if status == 422:
        forge.forced = (422, {"message": "Validation Failed", "errors": [
            {"resource": "PullRequest", "code": "custom",
             "message": "A pull request already exists for acme:promote."}]})
    result = run_cli("promote", model, "--version", "2", "--to", "production", "--open-pr",
                     "--api-url", f"{forge.url}/api/v3", cwd=work,
                     env={"MLFLOW_TRACKING_URI": mlflow_server.uri, "GITHUB_TOKEN": token})
    assert result.code == 1
    error = result.err.strip()
    assert error.count("\n") == 0 and error.startswith("mlflow-gitops: error: ")
    assert token not in result.err
    assert ("already exists" in error) if status == 422 else ("401" in error or "token" in error)


def test_diff_shows_both_versions_metrics_and_the_delta(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """diff BASE HEAD plans the merge against the live registry; the markdown shows the old
    and new version's run metrics side by side with the delta."""
    model = f"wf-diff-{unique}"
    _, work = seed(tmp_path, mlflow_client, model, versions=3, accuracies=[0.91, 0.95, 0.8])
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    assert run_cli("apply", "environments", cwd=work, env=env).code == 0
    git(work, "checkout", "-q", "-b", "pr")
    text = (work / "environments/production.yaml").read_text()
    (work / "environments/production.yaml").write_text(
        text.replace(f"  {model}: 1     #", f"  {model}: 2     #"))
    git(work, "commit", "-qam", "promote v2")
    git(work, "checkout", "-q", "main")
    result = run_cli("diff", "main", "pr", "--repo", str(work), "--output", "markdown",
                     "--detailed-exitcode", env=env)
    assert result.code == 2, result.err
    assert f"- `production`: **{model}** v1 → v2" in result.out
    assert f"| + | `production` | {model} v2: None → Production | git |" in result.out
    assert "| metric | v1 | v2 | delta |" in result.out
    assert "| accuracy | 0.91 | 0.95 | +0.04 |" in result.out
    assert "| latency_ms | 100 | 90 | -10 |" in result.out
