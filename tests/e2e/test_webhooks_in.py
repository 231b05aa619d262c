"""Triggers that arrive from outside, with the controller as a process and `--interval 300`
so that only the trigger can explain a quick reaction: a real MLflow 3.x server
delivering a real, signed registry webhook; and a webhook that reaches the standby of two
replicas with leader election."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.controller_proc import ControllerProcess, wait_until
from tests.support.envfiles import HEADER, env_files
from tests.support.gitrepos import bare_remote, commit_all, git
from tests.support.lease_store import LeaseStoreServer
from tests.support.registry_helpers import make_model, stages_of
from tests.support.servers import MlflowServer

HOOK_SECRET = "mlflow-webhook-secret-7"
BOUND = 15.0  # seconds: a trigger, not the 300 s poll, must explain the reaction


@pytest.fixture()
def hooked_mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowServer]:
    """A real MLflow server that may deliver webhooks to http:// on loopback: MLflow refuses
    private addresses and anything but https unless told otherwise
    (MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS, MLFLOW_WEBHOOK_ALLOWED_SCHEMES), and caches each event's
    webhook list for MLFLOW_WEBHOOK_CACHE_TTL seconds (60 by default)."""
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true")
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http,https")
    monkeypatch.setenv("MLFLOW_WEBHOOK_CACHE_TTL", "1")
    with MlflowServer(tmp_path / "mlflow-hooks") as server:
        yield server


def test_a_manual_alias_change_is_healed_through_a_real_mlflow_webhook(
        tmp_path: Path, hooked_mlflow: MlflowServer, unique: str,
        controllers: list[ControllerProcess]) -> None:
    """MLflow delivers `model_version_alias.created` to POST /webhook/mlflow with its own
    signature; the controller (polling every 300 s) reverts the hand-made alias in seconds."""
    from mlflow import MlflowClient

    client = MlflowClient(hooked_mlflow.uri)
    model = f"hook-{unique}"
    make_model(client, model, 2)
    bare, _ = bare_remote(tmp_path, {"environments/production.yaml": HEADER
                                     + f"target:\n  alias: champion\nmodels:\n  {model}: 1\n"})
    (tmp_path / "hook-secret").write_text(HOOK_SECRET + "\n")
    proc = ControllerProcess(tmp_path, f"file://{bare}", hooked_mlflow.uri,
                             "--mlflow-webhook-secret-file", str(tmp_path / "hook-secret"),
                             interval=300)
    controllers.append(proc)
    proc.start()
    wait_until(lambda: client.get_registered_model(model).aliases == {"champion": "1"},
               timeout=60, message="the startup pass sets the alias")
    client.create_webhook(name=f"gitops-{unique}", url=f"{proc.url}/webhook/mlflow",
                          events=["model_version_alias.created"], secret=HOOK_SECRET)
    time.sleep(1.5)  # MLflow's webhook cache (MLFLOW_WEBHOOK_CACHE_TTL=1) sees it
    passes = proc.passes()

    changed_at = time.monotonic()
    client.set_registered_model_alias(model, "champion", "2")
    wait_until(lambda: proc.passes() > passes and client.get_registered_model(model).aliases
               == {"champion": "1"}, timeout=BOUND, message="the webhook-triggered heal")
    assert time.monotonic() - changed_at < BOUND
    reasons = [r.get("reason") for r in proc.log_records()
               if r.get("message", "").startswith("applied") or r.get("reason")]
    assert "mlflow webhook" in reasons
    assert HOOK_SECRET not in proc.logs()


NAMESPACE, LEASE = "mlops", "mlflow-gitops"


def _push(work: Path, files: dict[str, str], message: str) -> str:
    for rel, text in files.items():
        (work / rel).write_text(text)
    sha = commit_all(work, message)
    git(work, "push", "-q", "origin", "HEAD:main")
    return sha


def test_a_webhook_sent_to_the_standby_is_applied_as_fast_as_one_sent_to_the_leader(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        controllers: list[ControllerProcess]) -> None:
    """Two replicas, one Lease, polling every 300 s: a GitHub webhook posted to the leader and
    one posted to the standby (which forwards it to the leader's URL on the Lease) each get
    their commit applied within the same few seconds."""
    model = f"fwd-{unique}"
    make_model(mlflow_client, model, 3)
    bare, work = bare_remote(tmp_path, env_files(model, production=1, staging=2))
    secret = b"gh-hook-secret"
    (tmp_path / "gh-secret").write_bytes(secret)
    with LeaseStoreServer() as api:
        def replica(identity: str) -> ControllerProcess:
            proc = ControllerProcess(
                tmp_path, f"file://{bare}", mlflow_server.uri, "--leader-elect",
                "--lease-name", LEASE, "--lease-namespace", NAMESPACE, "--lease-duration", "3",
                "--renew-deadline", "2", "--retry-period", "0.5", "--identity", identity,
                "--kube-api-server", api.url, "--webhook-secret-file",
                str(tmp_path / "gh-secret"), interval=300)
            proc.args += ["--advertise-url", proc.url]
            controllers.append(proc)
            return proc

        a, b = replica("replica-a"), replica("replica-b")
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(ControllerProcess.start, (a, b)))
        wait_until(lambda: stages_of(mlflow_client, model) == {
            1: "Production", 2: "Staging", 3: "None"}, timeout=60, message="first sync")
        wait_until(lambda: {a.status()["leader"], b.status()["leader"]} == {True, False},
                   message="one leader, one standby")
        leader, standby = (a, b) if a.status()["leader"] else (b, a)
        lease = api.store.leases[(NAMESPACE, LEASE)]
        assert lease["metadata"]["annotations"] == {"mlflow-gitops.io/leader-url": leader.url}

        took = {}
        for target, (production, staging) in ((leader, (2, 3)), (standby, (3, 1))):
            sha = _push(work, env_files(model, production, staging), f"promote v{production}")
            body = b'{"ref": "refs/heads/main", "after": "' + sha.encode() + b'"}'
            sent = time.monotonic()
            assert target.post_webhook(body, target.github_signature(body, secret)) == 202
            wait_until(lambda s=sha: leader.status()["last_applied_commit"] == s,
                       timeout=BOUND, every=0.05, message=f"commit via {target.url}")
            took[target is standby] = time.monotonic() - sent
            assert stages_of(mlflow_client, model)[production] == "Production"
        assert took[True] < BOUND and took[False] < BOUND
        assert standby.status()["last_pass"]["passes"] == 0  # the standby wrote nothing
        assert any("forwarded POST /webhook" in r.get("message", "")
                   for r in standby.log_records())
