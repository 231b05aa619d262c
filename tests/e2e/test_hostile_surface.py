"""Attacks on the surface around the reconcile loop, with the controller as a process and
real HTTP clients: a replayed MLflow delivery and a flood of slow connections."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.controller_proc import ControllerProcess, wait_until
from tests.support.envfiles import HEADER
from tests.support.gitrepos import bare_remote
from tests.support.registry_helpers import make_model

pytestmark = pytest.mark.slow

HOOK_SECRET = "mlflow-webhook-secret-replay"


@pytest.fixture()
def controller(tmp_path: Path, mlflow_server: Any, mlflow_client: Any,
               unique: str) -> Iterator[ControllerProcess]:
    """One controller polling every 300 s, so only a trigger explains a pass."""
    model = f"surface-{unique}"
    make_model(mlflow_client, model, 1)
    bare, _ = bare_remote(tmp_path, {"environments/production.yaml": HEADER
                                     + f"target:\n  alias: champion\nmodels:\n  {model}: 1\n"})
    (tmp_path / "hook-secret").write_text(HOOK_SECRET + "\n")
    proc = ControllerProcess(tmp_path, f"file://{bare}", mlflow_server.uri,
                             "--mlflow-webhook-secret-file", str(tmp_path / "hook-secret"),
                             interval=300)
    proc.start()
    wait_until(lambda: proc.passes() >= 1, timeout=60, message="the startup pass")
    yield proc
    proc.kill()


def _captured_delivery() -> tuple[bytes, dict[str, str]]:
    """A delivery signed by MLflow's own helper, as an attacker would capture it."""
    from mlflow.webhooks.delivery import _generate_hmac_signature

    payload = json.dumps({"entity": "model_version_alias", "action": "created",
                          "data": {"name": "m", "alias": "champion", "version": "1"}})
    delivery, stamp = str(uuid.uuid4()), str(int(time.time()))
    return payload.encode(), {
        "Content-Type": "application/json", "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": _generate_hmac_signature(HOOK_SECRET, delivery, stamp, payload)}


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_replayed_mlflow_delivery_triggers_one_pass(controller: ControllerProcess) -> None:
    """The same signed delivery sent three times within its five minutes is accepted once
    (202, one pass); the replays are 200 and trigger nothing."""
    passes = controller.passes()
    body, headers = _captured_delivery()
    codes = [_post(controller.url + "/webhook/mlflow", body, headers) for _ in range(3)]
    assert codes == [202, 200, 200]
    wait_until(lambda: controller.passes() == passes + 1, message="the one triggered pass")
    time.sleep(1.5)
    assert controller.passes() == passes + 1
    fresh_body, fresh = _captured_delivery()
    assert _post(controller.url + "/webhook/mlflow", fresh_body, fresh) == 202
