"""The controller as a process against a real MLflow server and a bare git remote: a merged
pull request promotes, a revert rolls back, and failures never crash it."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.support.controller_proc import ControllerProcess, start, synced_at, wait_until
from tests.support.envfiles import HEADER, env_files
from tests.support.gitrepos import bare_remote, commit_all, git, merge_branch, write_files
from tests.support.registry_helpers import make_model, stages_of
from tests.support.servers import MlflowServer


def test_merge_promotes_and_revert_rolls_back(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        controllers: list[ControllerProcess]) -> None:
    """An unmerged branch changes nothing; a merge is applied within two intervals; reverting
    it restores the previous Production version and archives the rolled-back one."""
    model = f"ctl-{unique}"
    make_model(mlflow_client, model, 3)
    bare, work = bare_remote(tmp_path, env_files(model, production=1, staging=2))
    proc = start(controllers, tmp_path, f"file://{bare}", mlflow_server.uri, interval=1)
    wait_until(lambda: stages_of(mlflow_client, model) == {1: "Production", 2: "Staging",
                                                            3: "None"}, message="first sync")

    git(work, "checkout", "-q", "-b", "promote-unmerged")
    (work / "environments/production.yaml").write_text(env_files(model, 2, 3)[
        "environments/production.yaml"])
    commit_all(work, "promote v2 (not merged)")
    git(work, "push", "-q", "origin", "promote-unmerged")
    passes = proc.passes()
    wait_until(lambda: proc.passes() >= passes + 2, message="two more passes")
    assert stages_of(mlflow_client, model)[1] == "Production"

    merged_at = time.monotonic()
    sha = merge_branch(work, "promote-v2", env_files(model, 2, 3), f"Promote {model} v2")
    wait_until(lambda: stages_of(mlflow_client, model) == {1: "Archived", 2: "Production",
                                                            3: "Staging"},
               timeout=2 * 1 * 1.1 + 3, message="merge applied within two intervals")
    assert time.monotonic() - merged_at < 2 * 1.1 + 3
    wait_until(lambda: synced_at(proc, sha), message="status synced at the merge commit")
    assert mlflow_client.get_model_version(model, "2").tags["gitops.env.production"] == sha

    git(work, "revert", "--no-edit", "-m", "1", "HEAD")
    git(work, "push", "-q", "origin", "main")
    wait_until(lambda: stages_of(mlflow_client, model) == {1: "Production", 2: "Staging",
                                                            3: "Archived"},
               message="revert rolled back")

    # A production-only promotion, reverted: the rolled-back version is archived.
    sha = merge_branch(work, "promote-v3", env_files(model, 3, 2), f"Promote {model} v3")
    wait_until(lambda: synced_at(proc, sha), message="v3 promoted")
    assert stages_of(mlflow_client, model) == {1: "Archived", 2: "Staging", 3: "Production"}
    git(work, "revert", "--no-edit", "-m", "1", "HEAD")
    git(work, "push", "-q", "origin", "main")
    wait_until(lambda: stages_of(mlflow_client, model) == {1: "Production", 2: "Staging",
                                                            3: "Archived"},
               message="revert restored v1 and archived v3")
    log_lines = [r for r in proc.log_records() if r.get("message", "").startswith("applied")]
    assert {"environment", "model", "from", "to", "commit", "duration_seconds"} <= set(
        log_lines[-1])
    assert proc.terminate() == 0


def test_signed_webhook_applies_at_once_and_bad_signature_is_refused(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        controllers: list[ControllerProcess]) -> None:
    """With --interval 300 a signed webhook gets a merge applied within 2 seconds; a bad
    signature gets 401 and triggers no pass; neither secret nor git token reaches the log."""
    model = f"hook-{unique}"
    make_model(mlflow_client, model, 2)
    bare, work = bare_remote(tmp_path, env_files(model, production=1, staging=2))
    secret = b"webhook-secret-7f3a9c"
    token = "ghp_supersecrettoken0123456789"
    (tmp_path / "hook").write_bytes(secret + b"\n")
    (tmp_path / "token").write_text(token + "\n")
    proc = start(controllers, tmp_path, f"file://{bare}", mlflow_server.uri,
                 "--webhook-secret-file", str(tmp_path / "hook"),
                 "--git-token-file", str(tmp_path / "token"), interval=300)
    wait_until(lambda: proc.passes() >= 1 and proc.status()["last_applied_commit"],
               message="first pass")
    body = b'{"ref": "refs/heads/main"}'

    before = proc.passes()
    assert proc.post_webhook(body, proc.github_signature(body, b"wrong")) == 401
    assert proc.post_webhook(body, {"X-Gitlab-Token": "wrong"}) == 401
    assert proc.post_webhook(body, {}) == 401
    time.sleep(1.0)
    assert proc.passes() == before

    git(work, "checkout", "-q", "main")
    write_files(work, env_files(model, 2, 1))
    commit_all(work, "swap")
    git(work, "push", "-q", "origin", "main")
    sent = time.monotonic()
    assert proc.post_webhook(body, proc.github_signature(body, secret)) == 202
    wait_until(lambda: stages_of(mlflow_client, model) == {1: "Staging", 2: "Production"},
               timeout=2, every=0.05, message="webhook applied within 2 s")
    assert time.monotonic() - sent < 2
    assert proc.post_webhook(body, {"X-Gitlab-Token": secret.decode()}) == 202
    assert proc.terminate() == 0
    logs = proc.logs()
    assert secret.decode() not in logs and token not in logs
    assert "webhook accepted" in logs


def test_invalid_commit_keeps_the_last_good_state_and_is_reported(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        controllers: list[ControllerProcess]) -> None:
    """A commit with an invalid file changes nothing and /status names file and line; the
    next good commit is applied."""
    model = f"bad-{unique}"
    make_model(mlflow_client, model, 3)
    bare, work = bare_remote(tmp_path, env_files(model, production=1, staging=2))
    proc = start(controllers, tmp_path, f"file://{bare}", mlflow_server.uri, interval=0.5)
    wait_until(lambda: stages_of(mlflow_client, model)[1] == "Production", message="sync")

    git(work, "checkout", "-q", "main")
    (work / "environments/production.yaml").write_text(
        HEADER + f"target:\n  stage: Production\nmodels:\n  {model}: 3\n  other: 0\n")
    bad = commit_all(work, "bad commit: version 0 and a v3 promotion")
    git(work, "push", "-q", "origin", "main")
    status = wait_until(lambda: (s := proc.status())["invalid_commit"] and s, message="invalid")
    assert status["invalid_commit"]["commit"] == bad
    assert status["last_error"].startswith("environments/production.yaml:7: other: version must")
    assert status["invalid_commit"]["diagnostics"][0]["line"] == 7
    assert stages_of(mlflow_client, model) == {1: "Production", 2: "Staging", 3: "None"}
    assert 'mlflow_gitops_invalid_commit 1.0' in proc.metrics()

    (work / "environments/production.yaml").write_text(
        env_files(model, 3, 2)["environments/production.yaml"])
    good = commit_all(work, "fix")
    git(work, "push", "-q", "origin", "main")
    wait_until(lambda: synced_at(proc, good), message="good commit applied")
    assert stages_of(mlflow_client, model) == {1: "Archived", 2: "Staging", 3: "Production"}
    assert proc.status()["invalid_commit"] is None
    assert proc.terminate() == 0


def _samples(proc: ControllerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(proc.metrics()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_metrics_follow_what_happened(tmp_path: Path, mlflow_server: Any, mlflow_client: Any,
                                      unique: str, controllers: list[ControllerProcess]) -> None:
    """Every metric is exposed, and transitions are counted per environment and action as
    applied, including a new commit's changes that the commit-first pass applies (the full
    pass after it then applies nothing)."""
    model = f"metrics-{unique}"
    make_model(mlflow_client, model, 3, {3: "Production"})
    bare, work = bare_remote(tmp_path, env_files(model, production=1, staging=2))
    proc = start(controllers, tmp_path, f"file://{bare}", mlflow_server.uri, interval=0.5)
    sha = git(work, "rev-parse", "HEAD")
    wait_until(lambda: synced_at(proc, sha), message="synced")
    samples = _samples(proc)
    promote_prod = ("mlflow_gitops_transitions_total",
                    (("action", "promote"), ("environment", "production")))
    archive_prod = ("mlflow_gitops_transitions_total",
                    (("action", "archive"), ("environment", "production")))
    promote_staging = ("mlflow_gitops_transitions_total",
                       (("action", "promote"), ("environment", "staging")))
    last_applied = ("mlflow_gitops_last_applied_timestamp_seconds", ())
    assert samples[promote_prod] == 1 and samples[archive_prod] == 1
    assert samples[promote_staging] == 1
    assert samples[("mlflow_gitops_reconcile_total", (("result", "success"),))] >= 1
    assert samples[("mlflow_gitops_reconcile_duration_seconds_count", ())] >= 1
    assert samples[("mlflow_gitops_out_of_sync", (("environment", "production"),))] == 0
    assert samples[("mlflow_gitops_git_commit_info", (("sha", sha),))] == 1
    assert samples[last_applied] > time.time() - 120
    assert samples[("mlflow_gitops_leader", ())] == 1

    first_applied = samples[last_applied]
    sha = merge_branch(work, "promote-v2", env_files(model, production=2, staging=3),
                       f"Promote {model} v2")
    wait_until(lambda: synced_at(proc, sha), message="the new commit applied")
    samples = _samples(proc)
    assert samples[promote_prod] == 2 and samples[archive_prod] == 2
    assert samples[promote_staging] == 2
    assert samples[last_applied] > first_applied
    assert proc.terminate() == 0


def test_registry_and_remote_outages_do_not_crash_it(
        tmp_path: Path, mlflow_client: Any, unique: str,
        controllers: list[ControllerProcess]) -> None:
    """The MLflow server stopped and restarted, and the remote moved away and back: the
    controller stays up, /readyz turns 503 while the registry is down, and it converges."""
    from mlflow import MlflowClient

    server = MlflowServer(tmp_path / "mlflow-own").start()
    try:
        client = MlflowClient(server.uri, server.uri)
        model = f"outage-{unique}"
        make_model(client, model, 3)
        bare, work = bare_remote(tmp_path, env_files(model, production=1, staging=2))
        proc = start(controllers, tmp_path, f"file://{bare}", server.uri, interval=0.5,
                     env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
                          "MLFLOW_HTTP_REQUEST_TIMEOUT": "3"})
        wait_until(lambda: proc.get("/readyz")[0] == 200, message="ready")

        server.stop()
        wait_until(lambda: proc.get("/readyz")[0] == 503, message="readyz 503 while down")
        write_files(work, env_files(model, 2, 3))
        sha = commit_all(work, "promote while the registry is down")
        git(work, "push", "-q", "origin", "HEAD:main")
        time.sleep(2)
        assert proc.proc is not None and proc.proc.poll() is None
        server.start()
        wait_until(lambda: synced_at(proc, sha), timeout=60, message="converged after restart")
        assert stages_of(client, model) == {1: "Archived", 2: "Production", 3: "Staging"}

        moved = tmp_path / "remote-moved.git"
        shutil.move(str(bare), str(moved))
        wait_until(lambda: "not found" in (proc.status()["last_error"] or "").lower()
                   or "does not appear" in (proc.status()["last_error"] or "")
                   or "fetch" in (proc.status()["last_error"] or "").lower(),
                   message="fetch error reported")
        assert proc.proc.poll() is None
        shutil.move(str(moved), str(bare))
        write_files(work, env_files(model, 3, 2))
        sha2 = commit_all(work, "promote v3 after the remote came back")
        git(work, "push", "-q", "origin", "HEAD:main")
        wait_until(lambda: synced_at(proc, sha2), timeout=60, message="converged after remote")
        assert proc.terminate() == 0
    finally:
        server.stop()


def test_self_heal_off_survives_a_restart(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        controllers: list[ControllerProcess]) -> None:
    """With self_heal: false, a manual change made while the controller was down is reported
    after the restart, not reverted: what was fully applied is recorded in the registry."""
    import warnings

    model = f"resume-{unique}"
    make_model(mlflow_client, model, 2)
    files = env_files(model, production=1, staging=2)
    files["environments/production.yaml"] = files["environments/production.yaml"].replace(
        "target:", "sync:\n  self_heal: false\ntarget:")
    bare, work = bare_remote(tmp_path, files)
    sha = git(work, "rev-parse", "HEAD")
    first = start(controllers, tmp_path, f"file://{bare}", mlflow_server.uri, interval=0.5)
    wait_until(lambda: synced_at(first, sha), message="first controller synced")
    assert first.terminate() == 0

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow_client.transition_model_version_stage(model, "2", "Production",
                                                     archive_existing_versions=True)
    second = start(controllers, tmp_path, f"file://{bare}", mlflow_server.uri, interval=0.5)
    wait_until(lambda: second.passes() >= 3, message="three passes after the restart")
    assert stages_of(mlflow_client, model) == {1: "Archived", 2: "Production"}
    rows = {r["environment"]: r for r in second.status()["environments"]}
    assert rows["production"]["sync"] == "OutOfSync"
    # Staging (self_heal on) wants v2 back, but taking it would leave Production empty.
    assert rows["staging"]["sync"] == "Error"
    assert "serves in production, which is not converging" in rows["staging"]["message"]
    record = json.loads(mlflow_client.get_registered_model(model).tags[
        "gitops.converged.production"])
    assert record == {"version": 1, "target": "stage:Production", "commit": sha}
    assert second.terminate() == 0
