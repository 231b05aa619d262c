"""Attacks on the surface around the reconcile loop, with the controller as a process,
a real MLflow server and real HTTP clients: a replayed MLflow delivery, a notification
receiver that hangs, Slack control sequences in names and hold reasons."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run_cli
from tests.support.controller_proc import ControllerProcess, wait_until
from tests.support.envfiles import HEADER
from tests.support.fake_forge import FakeForge
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


class _Hang(socketserver.BaseRequestHandler):
    """Reads the request and never answers, until the test ends."""

    def handle(self) -> None:
        self.request.recv(65536)
        self.server.done.wait(60)  # type: ignore[attr-defined]


@pytest.fixture()
def hanging_receiver() -> Iterator[str]:
    """A notification receiver that accepts connections and never answers."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Hang)
    server.daemon_threads = True
    server.done = threading.Event()  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.done.set()  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


SLACK_PATH = "/services/T0001/B0001/HostileSlack"
HOSTILE = "<!channel> see <http://evil.example|click> & more"


def test_a_hanging_receiver_delays_no_other_and_slack_text_is_escaped(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        forge: FakeForge, hanging_receiver: str) -> None:
    """With a receiver that never answers listed first, Slack still gets every event of the
    first pass within seconds (not 10 s per event), and model names and a hold reason
    carrying `<!channel>` and `<http://…|click>` arrive escaped, pinging and linking nobody."""
    models = [f"n{i}-<!channel>-{unique}" for i in range(6)]
    for model in models:
        make_model(mlflow_client, model, 1)
    listed = "".join(f'  "{m}": 1\n' for m in models)
    bare, work = bare_remote(tmp_path, {"environments/production.yaml": HEADER
                                        + f"target:\n  alias: champion\nmodels:\n{listed}"})
    held = run_cli("hold", models[0], str(work / "environments"), "--env", "production",
                   "--reason", HOSTILE, "--by", "oncall",
                   env={"MLFLOW_TRACKING_URI": mlflow_server.uri})
    assert held.code == 0, held.err
    (tmp_path / "slack-url").write_text(forge.url + SLACK_PATH + "\n")
    config = tmp_path / "controller.yaml"
    config.write_text(
        "notifications:\n"
        f"  - url: {hanging_receiver}\n    format: json\n    events: [applied, held]\n"
        f"  - url_file: {tmp_path / 'slack-url'}\n    format: slack\n"
        "    events: [applied, held]\n")
    proc = ControllerProcess(tmp_path, f"file://{bare}", mlflow_server.uri,
                             "--config", str(config), interval=300)
    try:
        proc.start()
        wait_until(lambda: proc.passes() >= 1, timeout=60, message="the first pass")
        passed = time.monotonic()

        def slack() -> list[str]:
            return [r["body"]["text"] for r in forge.received if r["path"] == SLACK_PATH]

        wait_until(lambda: len(slack()) >= len(models), timeout=8, every=0.05,
                   message="five applied and one held message on Slack")
        assert time.monotonic() - passed < 8
    finally:
        proc.kill()
    texts = slack()
    assert not [t for t in texts if "<!" in t or "<http" in t]
    (hold,) = [t for t in texts if "*held*" in t]
    assert f"n0-&lt;!channel&gt;-{unique}" in hold
    assert "&lt;!channel&gt; see &lt;http://evil.example|click&gt; &amp; more" in hold
    assert len([t for t in texts if "*applied*" in t and "&lt;!channel&gt;" in t]) == 5


def _slow_clients(port: int, count: int, stop: threading.Event) -> threading.Thread:
    """`count` slowloris clients: each sends a byte of its headers every second and
    reconnects whenever it is cut off, until `stop`."""
    def run() -> None:
        socks: list[socket.socket | None] = [None] * count
        while not stop.is_set():
            for i in range(count):
                try:
                    if socks[i] is None:
                        socks[i] = socket.create_connection(("127.0.0.1", port), timeout=1)
                        socks[i].sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: ")  # type: ignore[union-attr]
                    else:
                        socks[i].sendall(b"a")  # type: ignore[union-attr]
                except OSError:
                    if socks[i] is not None:
                        socks[i].close()  # type: ignore[union-attr]
                    socks[i] = None
            stop.wait(1.0)
        for sock in socks:
            if sock is not None:
                sock.close()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_probes_and_webhooks_answer_under_a_flood_of_slow_clients(
        controller: ControllerProcess) -> None:
    """70 slow clients (the cap is 64) that reconnect when cut off: over 12 s every
    /healthz and /readyz probe is answered 200 and an MLflow delivery is accepted, so a
    liveness probe never restarts a healthy controller."""
    stop = threading.Event()
    flood = _slow_clients(controller.port, 70, stop)
    try:
        time.sleep(2)  # every slot taken
        answers = []
        until = time.monotonic() + 12
        while time.monotonic() < until:
            for path in ("/healthz", "/readyz"):
                answers.append(controller.get(path)[0])
            time.sleep(0.5)
        body, headers = _captured_delivery()
        delivered = _post(controller.url + "/webhook/mlflow", body, headers)
    finally:
        stop.set()
        flood.join(5)
    assert len(answers) >= 20 and set(answers) == {200}, answers
    assert delivered == 202
