"""A prompt under the controller as a process, against a real MLflow 3.x server delivering its
own signed webhooks: a merged pull request moves the prompt's alias, a revert moves it back,
and an alias moved by hand is healed at once through MLflow's `prompt_alias.created` event."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.controller_proc import ControllerProcess, wait_until
from tests.support.envfiles import HEADER
from tests.support.gitrepos import bare_remote, commit_all, git
from tests.support.servers import MlflowServer

HOOK_SECRET = "mlflow-prompt-hook-secret"
GITHUB_SECRET = b"github-hook-secret"
BOUND = 15.0  # seconds: with --interval 300 only a trigger explains a reaction this fast


@pytest.fixture()
def hooked_mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowServer]:
    """A real MLflow server allowed to deliver webhooks to http:// on loopback."""
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true")
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http,https")
    monkeypatch.setenv("MLFLOW_WEBHOOK_CACHE_TTL", "1")
    with MlflowServer(tmp_path / "mlflow-prompts") as server:
        yield server


def champion(prompt: str, version: int) -> dict[str, str]:
    return {"environments/champion.yaml": HEADER + "target:\n  alias: champion\n"
            f"prompts:\n  {prompt}: {version}\n"}


@pytest.mark.slow
def test_a_prompt_is_merged_applied_reverted_and_healed_by_the_controller(
        tmp_path: Path, hooked_mlflow: MlflowServer, unique: str) -> None:
    """Merge → the alias moves to v2 (load_prompt sees it); revert → back to v1; a hand-made
    alias move is put back within seconds of MLflow's prompt webhook."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(hooked_mlflow.uri)
    mlflow.set_registry_uri(hooked_mlflow.uri)
    client = MlflowClient(hooked_mlflow.uri, hooked_mlflow.uri)
    prompt = f"triage-{unique}"
    for template in ("Triage: {{ticket}}", "Triage by urgency: {{ticket}}", "Spam? {{ticket}}"):
        mlflow.genai.register_prompt(name=prompt, template=template)

    def live() -> int:
        return int(mlflow.genai.load_prompt(f"prompts:/{prompt}@champion",
                                            cache_ttl_seconds=0).version)

    bare, work = bare_remote(tmp_path, champion(prompt, 1))
    (tmp_path / "hook-secret").write_text(HOOK_SECRET + "\n")
    (tmp_path / "gh-secret").write_bytes(GITHUB_SECRET)
    proc = ControllerProcess(tmp_path, f"file://{bare}", hooked_mlflow.uri,
                             "--mlflow-webhook-secret-file", str(tmp_path / "hook-secret"),
                             "--webhook-secret-file", str(tmp_path / "gh-secret"), interval=300)
    try:
        proc.start()
        wait_until(lambda: _alias(client, prompt) == "1", timeout=60, message="first pass")
        assert live() == 1

        def push_and_notify(message: str) -> None:
            git(work, "push", "-q", "origin", "main")
            body = b'{"ref": "refs/heads/main"}'
            assert proc.post_webhook(body, proc.github_signature(body, GITHUB_SECRET)) == 202

        git(work, "checkout", "-q", "-b", "promote", "origin/main")
        for rel, text in champion(prompt, 2).items():
            (work / rel).write_text(text)
        commit_all(work, f"Promote {prompt} to v2")
        git(work, "checkout", "-q", "main")
        git(work, "merge", "-q", "--no-ff", "promote", "-m", "Merge pull request #1")
        push_and_notify("merge")
        wait_until(lambda: _alias(client, prompt) == "2", timeout=BOUND, message="merge applied")
        assert live() == 2
        def row() -> tuple[str, str, list[int]]:
            [found] = [r for r in proc.status()["environments"] if r["model"] == prompt]
            return found["kind"], found["sync"], found["live"]

        wait_until(lambda: row() == ("prompt", "Synced", [2]), timeout=BOUND,
                   message="/status shows the prompt synced at v2")

        git(work, "revert", "--no-edit", "-m", "1", "HEAD")
        push_and_notify("revert")
        wait_until(lambda: _alias(client, prompt) == "1", timeout=BOUND,
                   message="revert rolled the prompt back")
        assert live() == 1

        client.create_webhook(name=f"prompts-{unique}", url=f"{proc.url}/webhook/mlflow",
                              events=["prompt_alias.created"], secret=HOOK_SECRET)
        time.sleep(1.5)  # MLflow's webhook cache (MLFLOW_WEBHOOK_CACHE_TTL=1) sees it
        passes = proc.passes()
        client.set_prompt_alias(prompt, "champion", 3)  # by hand, outside git
        wait_until(lambda: proc.passes() > passes and _alias(client, prompt) == "1",
                   timeout=BOUND, message="the prompt webhook healed the alias")
        applied = [r for r in proc.log_records()
                   if str(r.get("message", "")).startswith("applied")]
        assert applied and all(prompt in str(r) for r in applied)
        assert proc.terminate() == 0
        assert HOOK_SECRET not in proc.logs()
    finally:
        proc.kill()


def _alias(client: object, prompt: str) -> str | None:
    """Where @champion points, read as MLflow's REST API reports it."""
    import requests

    uri = client._tracking_client.tracking_uri  # type: ignore[attr-defined]
    body = requests.get(f"{uri}/api/2.0/mlflow/registered-models/get",
                        params={"name": prompt}, timeout=10).json()
    aliases = {a["alias"]: a["version"] for a in body["registered_model"].get("aliases", ())}
    return aliases.get("champion")
