"""The trigger endpoints over real sockets: MLflow webhook signatures exactly as
MLflow computes them, the `sync` bearer token, and a standby that forwards a verified
trigger to the leader instead of dropping it."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
import requests
from mlflow.webhooks.delivery import _generate_hmac_signature
from mlflow_gitops.adapters.http import HttpServer
from mlflow_gitops.adapters.inbound import Inbound
from mlflow_gitops.adapters.metrics import Metrics
from mlflow_gitops.cli import main

SECRET = "mlflow-hook-secret"
TOKEN = "sync-token-123"


def _mlflow_delivery(secret: str = SECRET, age: float = 0.0) -> tuple[bytes, dict[str, str]]:
    """A delivery built as mlflow/webhooks/delivery.py builds one, signed by MLflow's own
    helper (the oracle), not by the code under test."""
    payload = json.dumps({"entity": "model_version_alias", "action": "created",
                          "timestamp": "2026-01-01T00:00:00+00:00",
                          "data": {"name": "m", "alias": "champion", "version": "2"}})
    delivery, stamp = str(uuid.uuid4()), str(int(time.time() - age))
    return payload.encode(), {
        "Content-Type": "application/json", "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": _generate_hmac_signature(secret, delivery, stamp, payload)}


class Replica:
    def __init__(self, leader_url: str | None = None) -> None:
        self.triggers: list[str] = []
        self.leader = leader_url
        inbound = Inbound(self.triggers.append, mlflow_secret=SECRET.encode(),
                          sync_token=TOKEN.encode(), leader_url=lambda: self.leader)
        self.server = HttpServer("127.0.0.1:0", ready=lambda: (True, "ok"),
                                 metrics=Metrics().render, status=lambda _query: {},
                                 on_webhook=lambda: None, inbound=inbound)
        self.server.start()

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> requests.Response:
        return requests.post(self.server.url + path, data=body, headers=headers, timeout=10)


@pytest.fixture()
def replicas() -> Iterator[list[Replica]]:
    made: list[Replica] = []
    yield made
    for replica in made:
        replica.server.stop()


def test_a_real_mlflow_signature_triggers_and_a_forged_or_stale_one_does_not(
        replicas: list[Replica]) -> None:
    """MLflow's own signature is accepted (202, one trigger); a wrong secret, a tampered
    body and a delivery six minutes old are 401 and trigger nothing."""
    replica = Replica()
    replicas.append(replica)
    body, headers = _mlflow_delivery()
    assert replica.post("/webhook/mlflow", body, headers).status_code == 202
    assert replica.triggers == ["/webhook/mlflow"]
    wrong_body, wrong = _mlflow_delivery(secret="not-the-secret")
    stale_body, stale = _mlflow_delivery(age=360)
    for data, head in ((wrong_body, wrong), (body + b" ", headers), (stale_body, stale)):
        answer = replica.post("/webhook/mlflow", data, head)
        assert answer.status_code == 401
        assert SECRET not in answer.text
    assert "stale" in replica.post("/webhook/mlflow", stale_body, stale).text
    assert replica.triggers == ["/webhook/mlflow"]


def test_sync_needs_the_bearer_token(replicas: list[Replica]) -> None:
    """POST /sync with the right bearer token triggers; without it or with another, 401."""
    replica = Replica()
    replicas.append(replica)
    assert replica.post("/sync", b"{}", {}).status_code == 401
    assert replica.post("/sync", b"{}", {"Authorization": "Bearer nope"}).status_code == 401
    assert replica.post("/sync", b"{}", {"Authorization": f"Bearer {TOKEN}"}).status_code == 202
    assert replica.triggers == ["/sync"]


def test_a_standby_forwards_verified_triggers_to_the_leader(replicas: list[Replica]) -> None:
    """A standby passes an MLflow webhook and a sync to the leader, which triggers; a
    standby that does not know the leader answers 503 so the sender retries."""
    leader = Replica()
    standby = Replica(leader_url=leader.server.url)
    replicas.extend([leader, standby])
    body, headers = _mlflow_delivery()
    assert standby.post("/webhook/mlflow", body, headers).status_code == 202
    assert standby.post("/sync", b"{}", {"Authorization": f"Bearer {TOKEN}"}).status_code == 202
    assert (leader.triggers, standby.triggers) == (["/webhook/mlflow", "/sync"], [])
    bad_body, bad = _mlflow_delivery(secret="forged")
    assert standby.post("/webhook/mlflow", bad_body, bad).status_code == 401
    assert leader.triggers == ["/webhook/mlflow", "/sync"]
    standby.leader = ""
    assert standby.post("/sync", b"{}", {"Authorization": f"Bearer {TOKEN}"}).status_code == 503


def test_sync_command_requests_a_pass(replicas: list[Replica], tmp_path: object,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`mlflow-gitops sync --controller URL --token-file F` triggers a pass and exits 0; a
    wrong token exits 1 with one line naming the token file flag."""
    from pathlib import Path

    replica = Replica()
    replicas.append(replica)
    good, bad = Path(str(tmp_path)) / "token", Path(str(tmp_path)) / "bad"
    good.write_text(TOKEN + "\n")
    bad.write_text("not-the-token-0042\n")
    assert main(["sync", "--controller", replica.server.url, "--token-file", str(good)]) == 0
    assert replica.triggers == ["/sync"]
    assert main(["sync", "--controller", replica.server.url, "--token-file", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--sync-token-file" in err[0] and "not-the-token-0042" not in err[0]
