"""Feedback where people look, with the controller as a process, a real MLflow
server, a bare git remote and the stand-in GitHub / Slack / JSON receivers of
tests/support/fake_forge.py: commit statuses per environment and notifications, once."""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.support.controller_proc import ControllerProcess, start, wait_until
from tests.support.envfiles import HEADER
from tests.support.fake_forge import TOKEN, FakeForge
from tests.support.gitrepos import bare_remote, merge_branch
from tests.support.runs import logged_version

SLACK_PATH = "/services/T0001/B0001/SeCrEtSlackPath"
HOOK_SECRET = "json-hook-secret"


def _files(model: str, production: int, staging: int) -> dict[str, str]:
    return {
        "environments/production.yaml": HEADER + "target:\n  alias: champion\n"
        "promotion:\n  gates:\n    - metric: accuracy\n      min: 0.9\n"
        f"models:\n  {model}: {production}\n",
        "environments/staging.yaml": HEADER + "target:\n  alias: challenger\n"
        f"models:\n  {model}: {staging}\n",
    }


def _config(tmp_path: Path, forge: FakeForge) -> Path:
    (tmp_path / "forge-token").write_text(TOKEN + "\n")
    (tmp_path / "slack-url").write_text(forge.url + SLACK_PATH + "\n")
    (tmp_path / "hook-secret").write_text(HOOK_SECRET + "\n")
    config = tmp_path / "controller.yaml"
    config.write_text(
        "commit_status:\n  provider: github\n  repository: acme/models\n"
        f"  api_url: {forge.url}/api/v3\n  token_file: {tmp_path / 'forge-token'}\n"
        "  target_url: https://ctl.example.com/?environment={environment}\n"
        "notifications:\n"
        f"  - url_file: {tmp_path / 'slack-url'}\n    format: slack\n    events: [applied]\n"
        f"  - url: {forge.url}/hooks/json\n    format: json\n"
        f"    secret_file: {tmp_path / 'hook-secret'}\n    events: [applied, refused]\n")
    return config


def test_commit_statuses_and_notifications_for_merges(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str, forge: FakeForge,
        controllers: list[ControllerProcess]) -> None:  # noqa: F811
    """A merge that changes two environments gets pending then success on each of
    mlflow-gitops/production and mlflow-gitops/staging; a refused promotion gets failure with
    the reason; each notification arrives once, the JSON ones signed; no secret is logged."""
    model = f"fb-{unique}"
    for accuracy in (0.95, 0.96, 0.5):
        logged_version(mlflow_client, model, {"accuracy": accuracy})
    bare, work = bare_remote(tmp_path, _files(model, 1, 1))
    proc = start(controllers, tmp_path, f"file://{bare}", mlflow_server.uri,
                 "--config", str(_config(tmp_path, forge)), interval=1)
    wait_until(lambda: mlflow_client.get_registered_model(model).aliases
               == {"champion": "1", "challenger": "1"}, timeout=60, message="first sync")

    both = merge_branch(work, "promote-v2", _files(model, 2, 2), "Promote v2 everywhere")
    for env in ("production", "staging"):
        context = f"mlflow-gitops/{env}"
        wait_until(lambda c=context: [s["state"] for s in forge.statuses_for(both, c)]
                   == ["pending", "success"], timeout=90,
                   message=f"{context} statuses (all: {forge.statuses})")
        success = forge.statuses_for(both, context)[1]
        assert success["description"] == \
            f"applied: {model} @{'champion' if env == 'production' else 'challenger'}: " \
            "v1 → v2"
        assert success["target_url"] == f"https://ctl.example.com/?environment={env}"
    assert {s["context"] for s in forge.statuses_for(both)} == {
        "mlflow-gitops/production", "mlflow-gitops/staging"}

    refused = merge_branch(work, "promote-v3", _files(model, 3, 2), "Promote v3 to production")
    wait_until(lambda: forge.statuses_for(refused, "mlflow-gitops/production"), timeout=60,
               message="the refused status")
    passes = proc.passes()
    wait_until(lambda: proc.passes() >= passes + 3, message="three more passes")
    (failure,) = forge.statuses_for(refused)
    assert failure["state"] == "failure"
    assert failure["description"].startswith("Refused: ")
    assert "accuracy" in failure["description"] and "0.5" in failure["description"]
    assert mlflow_client.get_registered_model(model).aliases["champion"] == "2"

    json_in = [r for r in forge.received if r["path"] == "/hooks/json"]
    assert sorted((r["body"]["event"], r["body"]["commit"], r["body"]["environment"])
                  for r in json_in if r["body"]["commit"] in (both, refused)) == [
        ("applied", both, "production"), ("applied", both, "staging"),
        ("refused", refused, "production")]
    for record in json_in:
        digest = hmac.new(HOOK_SECRET.encode(), record["raw"], hashlib.sha256).hexdigest()
        assert record["headers"]["X-Mlflow-Gitops-Signature"] == f"sha256={digest}"
    slack_in = [r["body"]["text"] for r in forge.received if r["path"] == SLACK_PATH]
    assert len([t for t in slack_in if both[:12] in t]) == 2
    assert not [t for t in slack_in if refused[:12] in t]  # slack asked for applied only
    logs = proc.logs()
    for secret in (TOKEN, SLACK_PATH, HOOK_SECRET):
        assert secret not in logs


def test_a_soak_wait_is_waiting_logged_once_and_never_an_error(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str, forge: FakeForge,
        controllers: list[ControllerProcess]) -> None:  # noqa: F811
    """A promotion that only waits on min_soak is `Waiting` with its `until` in /status,
    logged once at INFO over many passes, counted `waiting` and never `error`, and its commit
    status is pending and says what it waits for."""
    model = f"soak-{unique}"
    logged_version(mlflow_client, model, {"accuracy": 0.95})

    def files(production: str) -> dict[str, str]:
        return {"environments/staging.yaml": HEADER + "target:\n  alias: challenger\n"
                f"models:\n  {model}: 1\n",
                "environments/production.yaml": HEADER + "target:\n  alias: champion\n"
                "promotion:\n  from: staging\n  min_soak: 24h\n" + production}

    bare, work = bare_remote(tmp_path, files("models: {}\n"))
    proc = start(controllers, tmp_path, f"file://{bare}", mlflow_server.uri,
                 "--config", str(_config(tmp_path, forge)), interval=0.5)
    wait_until(lambda: mlflow_client.get_registered_model(model).aliases
               == {"challenger": "1"}, timeout=60, message="staging applied")
    sha = merge_branch(work, "promote-prod", files(f"models:\n  {model}: 1\n"),
                       "Promote v1 to production")
    wait_until(lambda: proc.status()["last_seen_commit"] == sha, message="commit seen")
    passes = proc.passes()
    wait_until(lambda: proc.passes() >= passes + 5, message="five passes while waiting")

    (row,) = [r for r in proc.status()["environments"] if r["environment"] == "production"]
    assert row["sync"] == "Waiting" and row["until"] > time.time() + 23 * 3600
    records = proc.log_records()
    waiting = [r for r in records if r.get("state") == "Waiting"]
    assert [(r["level"], r["environment"], r["model"]) for r in waiting] == [
        ("INFO", "production", model)]
    assert not [r for r in records if r["level"] == "ERROR"]
    samples = {(s.name, s.labels.get("result")): s.value
               for f in text_string_to_metric_families(proc.metrics()) for s in f.samples
               if s.name == "mlflow_gitops_reconcile_total"}
    assert samples[("mlflow_gitops_reconcile_total", "waiting")] >= 5
    assert samples[("mlflow_gitops_reconcile_total", "error")] == 0
    (status,) = forge.statuses_for(sha, "mlflow-gitops/production")
    assert status["state"] == "pending"
    assert status["description"].startswith("Waiting until ")
    assert "in staging (entered staging" in status["description"]  # what it waits for
    assert mlflow_client.get_registered_model(model).aliases == {"challenger": "1"}
