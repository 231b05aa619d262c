"""What a new user meets in the first hour, command by command: each test runs the
exact command and pins its exit code and message."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.cli import run_cli
from tests.support.gitrepos import bare_remote, commit_all, git, write_files
from tests.support.servers import free_port

HEADER = "apiVersion: mlflow-gitops/v1\nkind: Environment\n"


def _repo(tmp_path: Path, client: Any, model: str, production: str, staging: str,
          accuracies: tuple[float, ...] = (0.95, 0.5, 0.96)) -> Path:
    """A registered model whose versions come from runs with these accuracies, and a clone
    whose environments assign it."""
    client.create_registered_model(model)
    experiment = client.create_experiment(f"exp-{model}")
    for accuracy in accuracies:
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "accuracy", accuracy)
        client.set_terminated(run.info.run_id)
        client.create_model_version(model, source="s3://bucket/m", run_id=run.info.run_id)
    _, work = bare_remote(tmp_path, {
        "environments/production.yaml": HEADER + "target: {stage: Production}\n" + production,
        "environments/staging.yaml": HEADER + "target: {stage: Staging}\n" + staging})
    return work


def _branches(work: Path) -> str:
    return git(work, "branch", "--list", "promote/*", "rollback/*")


# --- 2: apply with uncommitted edits ------------------------------------------------------


def test_apply_refuses_uncommitted_edits_unless_allowed(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """`apply` on a folder with uncommitted edits exits 1 and changes nothing; with
    --allow-dirty it applies, warns, and `status --model` shows the -dirty marker."""
    model = f"fh-dirty-{unique}"
    work = _repo(tmp_path, mlflow_client, model, f"models:\n  {model}: 1\n",
                 f"models:\n  {model}: 2\n")
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    text = (work / "environments/staging.yaml").read_text()
    (work / "environments/staging.yaml").write_text(text.replace(f"{model}: 2", f"{model}: 3"))
    refused = run_cli("apply", cwd=work, env=env)
    assert refused.code == 1
    assert refused.err.startswith("mlflow-gitops: error: environments has uncommitted changes: "
                                  "commit them first")
    assert "--allow-dirty" in refused.err and refused.err.count("\n") == 1
    assert mlflow_client.get_model_version(model, "3").current_stage == "None"

    applied = run_cli("apply", "--allow-dirty", cwd=work, env=env)
    assert applied.code == 0, applied.err
    assert "warning: applying uncommitted changes" in applied.err
    head = git(work, "rev-parse", "HEAD")
    status = run_cli("status", "--model", model, cwd=work, env=env)
    assert f"staging@{head[:12]}-dirty" in status.out, status.out


# --- 3: rollback must not quietly empty production -----------------------------------------


def test_rollback_in_staging_refuses_to_empty_production(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """`rollback MODEL --env staging --to-version N` where N serves in production exits 1,
    says production would be left without MODEL and how to do it deliberately; no branch."""
    model = f"fh-empty-{unique}"
    work = _repo(tmp_path, mlflow_client, model, f"models:\n  {model}: 1\n",
                 f"models:\n  {model}: 3\n")
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    result = run_cli("rollback", model, "--env", "staging", "--to-version", "1", cwd=work,
                     env=env)
    assert result.code == 1
    assert result.err == (
        f"mlflow-gitops: error: rolling back {model} in staging to v1 would also remove v1 from "
        f"production (a version holds one stage), leaving production without {model}; to do "
        "that deliberately pass --allow-emptying, or first change production: mlflow-gitops "
        f"rollback {model} --env production\n")
    assert _branches(work) == ""
    deliberate = run_cli("rollback", model, "--env", "staging", "--to-version", "1",
                         "--allow-emptying", cwd=work, env=env)
    assert deliberate.code == 0, deliberate.err
    assert "removed (it leaves production" in deliberate.out


# --- 4: no branch for a refused change; forge checked before pushing; retry reuses ---------


def test_promote_refused_by_the_plan_makes_no_branch_unless_forced(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """A promotion the gates refuse exits 1 with the reason and creates no branch; --force
    creates it anyway."""
    model = f"fh-refused-{unique}"
    policy = "promotion:\n  gates:\n    - metric: accuracy\n      min: 0.9\n"
    work = _repo(tmp_path, mlflow_client, model, policy + f"models:\n  {model}: 1\n",
                 "models: {}\n")
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    result = run_cli("promote", model, "2", "--env", "production", cwd=work, env=env)
    assert result.code == 1
    assert result.err.startswith("mlflow-gitops: error: the plan refuses it: "
                                 "environments/production.yaml:")
    assert "accuracy 0.5 < min 0.9" in result.err
    assert result.err.rstrip().endswith("no branch created (fix that, or pass --force to "
                                        "create the branch anyway)")
    assert _branches(work) == ""
    forced = run_cli("promote", model, "2", "--env", "production", "--force", cwd=work, env=env)
    assert forced.code == 0, forced.err
    assert _branches(work).strip() == f"promote/{model}-v2-to-production"


def test_open_pr_on_a_non_forge_remote_fails_before_pushing(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """`--open-pr` with a plain file remote exits 1 naming the remote, and pushes nothing."""
    model = f"fh-noforge-{unique}"
    work = _repo(tmp_path, mlflow_client, model, f"models:\n  {model}: 1\n", "models: {}\n")
    result = run_cli("promote", model, "3", "--env", "production", "--open-pr", cwd=work,
                     env={"MLFLOW_TRACKING_URI": mlflow_server.uri})
    assert result.code == 1
    assert "is not a GitHub or GitLab URL" in result.err and result.err.count("\n") == 1
    assert git(work, "ls-remote", "--heads", "origin", "promote/*") == ""


def test_a_retry_reuses_the_branch_it_made(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """Running the same promote again (e.g. after the pull request failed to open) reuses the
    identical branch instead of failing with "branch exists"; a different change still fails."""
    model = f"fh-retry-{unique}"
    work = _repo(tmp_path, mlflow_client, model, f"models:\n  {model}: 1\n", "models: {}\n")
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    first = run_cli("promote", model, "3", "--env", "production", "--push", cwd=work, env=env)
    assert first.code == 0, first.err
    again = run_cli("promote", model, "3", "--env", "production", "--push", "-o", "json",
                    cwd=work, env=env)
    assert again.code == 0, again.err
    import json

    data = json.loads(again.out)
    assert data["reused"] is True and data["pushed"] is True
    assert data["branch"] == f"promote/{model}-v3-to-production"
    assert data["commit"] == git(work, "rev-parse", data["branch"])
    other = run_cli("promote", model, "2", "--env", "production", "--force", "--branch",
                    data["branch"], cwd=work, env=env)
    assert other.code == 1 and "already exists" in other.err


# --- 5: errors before the summary, on stderr; diff answers for its own changes ------------


def test_plan_prints_model_errors_on_stderr_and_counts_them_in_the_summary(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """`plan` with a missing version: the error (file:line) on stderr, the summary on stdout
    counts the model not changed, never "No changes. (errors below)"."""
    model = f"fh-errs-{unique}"
    work = _repo(tmp_path, mlflow_client, model, f"models:\n  {model}: 9\n", "models: {}\n")
    result = run_cli("plan", cwd=work, env={"MLFLOW_TRACKING_URI": mlflow_server.uri})
    assert result.code == 1
    assert result.err.startswith("  error environments/production.yaml:5: ")
    assert "v9" in result.err
    assert result.out == "No changes to apply. 1 model not changed: see the errors.\n"


def test_diff_of_identical_refs_is_clean_even_when_base_has_a_problem(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """`diff main main` exits 0 and does not show the base's existing error; a pull request
    that adds a new problem gets only that one, exit 1."""
    model = f"fh-diff-{unique}"
    work = _repo(tmp_path, mlflow_client, model, f"models:\n  {model}: 9\n",
                 f"models:\n  {model}: 2\n")
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    same = run_cli("diff", "main", "main", cwd=work, env=env)
    assert same.code == 0, same.err
    assert "v9" not in same.out + same.err.split("note:")[0]
    assert "1 problem(s) that main already has are not shown" in same.err
    git(work, "checkout", "-q", "-b", "pr")
    write_files(work, {"environments/staging.yaml":
                       HEADER + f"target: {{stage: Staging}}\nmodels:\n  {model}: 8\n"})
    commit_all(work, "stage v8")
    git(work, "checkout", "-q", "main")
    pr = run_cli("diff", "main", "pr", cwd=work, env=env)
    assert pr.code == 1
    errors = [line for line in pr.err.splitlines() if line.startswith("  error ")]
    assert len(errors) == 1 and "v8" in errors[0] and "staging.yaml" in errors[0]


# --- 6: registry down ---------------------------------------------------------------------


def _cli_as_user(*args: str, cwd: Path, uri: str) -> subprocess.CompletedProcess[str]:
    """The CLI with the user's environment: no test-session retry settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_HTTP_REQUEST")}
    env["MLFLOW_TRACKING_URI"] = uri
    return subprocess.run([sys.executable, "-m", "mlflow_gitops.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_registry_down_is_one_short_line_naming_the_uri_without_credentials(
        tmp_path: Path, mlflow_client: Any, mlflow_server: Any, unique: str) -> None:
    """`plan` against a closed port: exit 1, one line that names the URI (password
    scrubbed) and points at MLFLOW_TRACKING_URI, with no retries for a one-shot command."""
    model = f"fh-down-{unique}"
    work = _repo(tmp_path, mlflow_client, model, f"models:\n  {model}: 1\n", "models: {}\n")
    port = free_port()
    started = time.monotonic()
    result = _cli_as_user("plan", cwd=work, uri=f"http://alice:s3cret@127.0.0.1:{port}")
    retried_for = time.monotonic() - started
    assert result.returncode == 1
    assert result.stderr == (f"mlflow-gitops: error: cannot reach registry 'default' at "
                             f"http://127.0.0.1:{port} (connection refused); is it running? "
                             "Check MLFLOW_TRACKING_URI\n")
    assert result.stdout == ""
    assert retried_for < 60  # the import of MLflow dominates; no 5 s of backoff sleeps


def test_every_command_names_an_unreachable_registry_the_same_way(
        tmp_path: Path, mlflow_client: Any, unique: str) -> None:
    """status --model, promote, reject, hold and release against a closed port say what plan
    says: `cannot reach registry 'default' at <URI without password> (connection refused)`."""
    model = f"fh-down-all-{unique}"
    work = _repo(tmp_path, mlflow_client, model, f"models:\n  {model}: 1\n", "models: {}\n",
                 accuracies=(0.95,))
    port = free_port()
    expected = (f"mlflow-gitops: error: cannot reach registry 'default' at "
                f"http://127.0.0.1:{port} (connection refused); is it running? "
                "Check MLFLOW_TRACKING_URI\n")
    for argv in (["status", "--model", model], ["promote", model, "1", "--env", "staging"],
                 ["reject", model, "1", "--reason", "bad"],
                 ["hold", model, "--env", "production", "--reason", "INC-1"],
                 ["release", model, "--env", "production"]):
        result = _cli_as_user(*argv, cwd=work, uri=f"http://bob:pw@127.0.0.1:{port}")
        assert (result.returncode, result.stderr) == (1, expected), argv


def test_a_tracking_uri_without_scheme_is_a_clear_error(tmp_path: Path, unique: str,
                                                        mlflow_client: Any) -> None:
    """MLFLOW_TRACKING_URI=localhost:5000 says it has no scheme and how to write it."""
    model = f"fh-scheme-{unique}"
    work = _repo(tmp_path, mlflow_client, model, f"models:\n  {model}: 1\n", "models: {}\n")
    result = _cli_as_user("plan", cwd=work, uri="localhost:5000")
    assert result.returncode == 1
    assert result.stderr == ("mlflow-gitops: error: registry 'default': tracking URI "
                             "'localhost:5000' has no scheme; write http://localhost:5000 for "
                             "a tracking server, or sqlite:///path/mlflow.db or "
                             "file:///path/mlruns for a local registry\n")


# --- 7: status keeps an environment that lists no models --------------------------------


def test_status_shows_a_live_version_of_an_environment_that_lists_no_models(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """An empty production file with v1 still live in Production: status shows the row as
    OutOfSync with why, instead of dropping production."""
    model = f"fh-emptyenv-{unique}"
    work = _repo(tmp_path, mlflow_client, model, "models: {}\n", f"models:\n  {model}: 2\n")
    mlflow_client.transition_model_version_stage(model, "1", "Production")
    result = run_cli("status", cwd=work, env={"MLFLOW_TRACKING_URI": mlflow_server.uri})
    rows = [line.split() for line in result.out.splitlines()]
    assert ["production", "stage", "Production", model, "-", "v1", "OutOfSync"] in rows
    assert "live but not listed in environments/production.yaml" in result.out


# --- 8: usage errors ----------------------------------------------------------------------


def test_a_mistyped_flag_exits_1_not_2(envs_dir: Path) -> None:
    """`plan --detailed-exitcode --outptu json` is a usage error: exit 1 (2 means changes
    pending), one line pointing to `mlflow-gitops plan --help`."""
    result = run_cli("plan", "--detailed-exitcode", "--outptu", "json")
    assert result.code == 1
    assert result.err == ("mlflow-gitops plan: error: unrecognized arguments: --outptu "
                          "(see 'mlflow-gitops plan --help')\n")


# --- 9: diff on an old git; failures that are not conflicts ------------------------------


def test_diff_on_git_older_than_2_38_says_so(tmp_path: Path) -> None:
    """With git 2.34 (Ubuntu 22.04) `diff` exits 1 saying it needs git 2.38, not "does not
    merge cleanly". The old git is a wrapper that reports 2.34.1 and runs the real git."""
    _, work = bare_remote(tmp_path, {"environments/staging.yaml":
                                     HEADER + "target: {stage: Staging}\nmodels: {}\n"})
    real = shutil.which("git")
    assert real is not None
    old_git = tmp_path / "old-git"
    old_git.write_text('#!/bin/sh\nif [ "$1" = version ]; then echo "git version 2.34.1"; '
                       f'else exec {real} "$@"; fi\n')
    old_git.chmod(0o755)
    result = run_cli("diff", "main", "main", cwd=work,
                     env={"GIT_PYTHON_GIT_EXECUTABLE": str(old_git),
                          "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"})
    assert result.code == 1
    assert result.err == ("mlflow-gitops: error: diff needs git 2.38 or newer (merge-tree "
                          "--write-tree); this is git 2.34.1: upgrade git\n")


def test_diff_tells_a_conflict_from_a_bad_revision(tmp_path: Path) -> None:
    """Conflicting branches are "does not merge cleanly"; an unknown revision says so."""
    _, work = bare_remote(tmp_path, {"environments/staging.yaml":
                                     HEADER + "target: {stage: Staging}\nmodels: {m: 1}\n"})
    for branch, version in (("a", 2), ("b", 3)):
        git(work, "checkout", "-q", "-b", branch, "main")
        write_files(work, {"environments/staging.yaml":
                           HEADER + f"target: {{stage: Staging}}\nmodels: {{m: {version}}}\n"})
        commit_all(work, f"v{version}")
    env = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
    conflict = run_cli("diff", "a", "b", cwd=work, env=env)
    assert conflict.code == 1
    assert conflict.err == ("mlflow-gitops: error: b does not merge cleanly into a: resolve "
                            "the conflicts first\n")
    unknown = run_cli("diff", "main", "no-such-branch", cwd=work, env=env)
    assert unknown.code == 1
    assert unknown.err == ("mlflow-gitops: error: unknown revision 'no-such-branch': give a "
                           "branch, tag or commit\n")


def test_run_with_the_default_cache_dir_leaves_no_clone_behind(tmp_path: Path) -> None:
    """`run` without --cache-dir clones into a private temp folder and removes it when the
    process ends, even when it stops on a startup error."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["TMPDIR"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-m", "mlflow_gitops.cli", "run", "--repo-url",
                           "file:///nowhere", "--webhook-secret-file", str(tmp_path / "none")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "none" in done.stderr
    assert not list(tmp_path.glob("mlflow-gitops-*"))
