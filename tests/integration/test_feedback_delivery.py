"""Commit statuses and notifications reach the stand-in GitHub, GitLab, Slack and JSON
receivers (tests/support/fake_forge.py) in the documented shapes, once, and are retried in the
background when a receiver fails."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from mlflow_gitops.adapters.feedback import FeedbackSender
from mlflow_gitops.adapters.forge import RemoteRepo, StatusTarget
from mlflow_gitops.adapters.notify import Receiver
from mlflow_gitops.core.feedback import CommitStatus, Notification

from tests.support.controller_proc import wait_until
from tests.support.fake_forge import TOKEN, FakeForge

SHA = "0123456789abcdef0123456789abcdef01234567"


def _github(forge: FakeForge, target_url: str | None = None) -> StatusTarget:
    return StatusTarget(RemoteRepo("github", "ghe.example.com", "acme", "models"),
                        f"{forge.url}/api/v3", TOKEN, target_url)


def test_github_status_per_environment_with_link_and_short_description(
        forge: FakeForge) -> None:
    """Two environments on one commit give two contexts; the description is cut to 140."""
    sender = FeedbackSender(_github(forge, "https://ctl.example.com/?env={environment}"), [])
    sender.commit_status(CommitStatus(SHA, "production", "success", "Synced", "applied: x"))
    sender.commit_status(CommitStatus(SHA, "staging", "failure", "Refused", "r" * 300))
    wait_until(lambda: len(forge.statuses) == 2, timeout=10, message="two statuses")
    sender.stop()
    by_context = {s["context"]: s for s in forge.statuses}
    assert by_context["mlflow-gitops/production"] == {
        "forge": "github", "sha": SHA, "repo": "acme/models",
        "context": "mlflow-gitops/production", "state": "success",
        "description": "applied: x", "target_url": "https://ctl.example.com/?env=production"}
    assert len(by_context["mlflow-gitops/staging"]["description"]) == 140
    assert by_context["mlflow-gitops/staging"]["state"] == "failure"


def test_gitlab_status_uses_gitlab_state_names(forge: FakeForge) -> None:
    """GitLab gets `failed` (its word for failure) under `name`, at /projects/:id/statuses."""
    target = StatusTarget(RemoteRepo("gitlab", "gitlab.example.com", "ml/team", "models"),
                          f"{forge.url}/api/v4", TOKEN)
    sender = FeedbackSender(target, [])
    sender.commit_status(CommitStatus(SHA, "production", "failure", "Error", "boom"))
    wait_until(lambda: forge.statuses, timeout=10, message="a status")
    sender.stop()
    assert forge.statuses == [{"forge": "gitlab", "sha": SHA, "repo": "ml%2Fteam%2Fmodels",
                               "state": "failed", "description": "boom",
                               "name": "mlflow-gitops/production",
                               "context": "mlflow-gitops/production"}]


def test_a_failing_forge_is_retried_without_blocking_and_a_newer_state_wins(
        forge: FakeForge) -> None:
    """Two 500s, then success: queuing returns at once, the status arrives after retries,
    and a pending that a success superseded while it waited is never sent after it."""
    path = f"/api/v3/repos/acme/models/statuses/{SHA}"
    forge.fail[path] = 2
    sender = FeedbackSender(_github(forge), [], retry_base=0.2)
    started = time.monotonic()
    sender.commit_status(CommitStatus(SHA, "production", "pending", "Applying", "applying"))
    assert time.monotonic() - started < 0.05
    time.sleep(0.05)
    sender.commit_status(CommitStatus(SHA, "production", "success", "Synced", "applied"))
    wait_until(lambda: forge.statuses, timeout=15, message="the status after retries")
    sender.stop()
    assert [s["state"] for s in forge.statuses] == ["success"]
    assert len([r for r in forge.requests if r["path"] == path]) == 3


def test_slack_and_signed_json_notifications(forge: FakeForge) -> None:
    """Slack gets `{"text": ...}`; the JSON receiver gets the event signed with HMAC-SHA256;
    a receiver only gets the events it asked for."""
    secret = b"hook-secret"
    slack = Receiver(f"{forge.url}/services/T000/B000/XXXXSECRET", "slack",
                     frozenset({"applied"}))
    plain = Receiver(f"{forge.url}/hooks/json", "json", frozenset({"applied", "waiting"}),
                     secret)
    sender = FeedbackSender(None, [slack, plain])
    sender.notify(Notification("applied", SHA, "production", "churn", "Synced",
                               "production/churn: applied commit 0123456789ab",
                               changes=("churn v2: Staging → Production",)))
    sender.notify(Notification("waiting", SHA, "production", "fraud", "Waiting",
                               "soak 1h < 24h", until=2e9))
    wait_until(lambda: len(forge.received) == 3, timeout=10, message="three deliveries")
    sender.stop()
    slack_in = [r for r in forge.received if r["path"].startswith("/services/")]
    assert [r["body"] for r in slack_in] == [{"text": (
        ":white_check_mark: *applied* production/churn at `0123456789ab`\n"
        "production/churn: applied commit 0123456789ab\n• churn v2: Staging → Production")}]
    json_in = [r for r in forge.received if r["path"] == "/hooks/json"]
    assert [r["body"] for r in json_in] == [
        {"event": "applied", "commit": SHA, "environment": "production", "model": "churn",
         "state": "Synced", "message": "production/churn: applied commit 0123456789ab",
         "until": None, "changes": ["churn v2: Staging → Production"]},
        {"event": "waiting", "commit": SHA, "environment": "production", "model": "fraud",
         "state": "Waiting", "message": "soak 1h < 24h", "until": "2033-05-18T03:33:20+00:00",
         "changes": []}]
    for record in json_in:
        expected = "sha256=" + hmac.new(secret, record["raw"], hashlib.sha256).hexdigest()
        assert record["headers"]["X-Mlflow-Gitops-Signature"] == expected
        assert record["headers"]["X-Mlflow-Gitops-Event"] == json.loads(record["raw"])["event"]
    assert "XXXXSECRET" not in repr(slack)
