"""The controller's HTTP server over real sockets: probes, metrics, status, webhooks."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests
from mlflow_gitops.adapters.http import MAX_BODY, HttpServer, parse_listen
from mlflow_gitops.adapters.metrics import Metrics
from mlflow_gitops.core.errors import ConfigError
from mlflow_gitops.loop.webhook import github_signature
from prometheus_client.parser import text_string_to_metric_families

SECRET = b"hook-secret-42"
BODY = b'{"ref": "refs/heads/main", "after": "abc"}'


@dataclass
class App:
    """What the runner would hand the server: readiness, status, a trigger to count."""

    is_ready: bool = False
    reason: str = "waiting for the first sync"
    webhooks: int = 0
    metrics: Metrics = field(default_factory=Metrics)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ready(self) -> tuple[bool, str]:
        return self.is_ready, self.reason

    def status(self, query: object = None) -> dict[str, object]:
        return {"last_seen": "abc", "environments": {"production": {"synced": True}}}

    def on_webhook(self) -> None:
        with self.lock:
            self.webhooks += 1


def _serve(app: App, secret: bytes | None) -> HttpServer:
    server = HttpServer("127.0.0.1:0", ready=app.ready, metrics=app.metrics.render,
                        status=app.status, on_webhook=app.on_webhook, webhook_secret=secret)
    server.start()
    return server


@pytest.fixture()
def app() -> App:
    return App()


@pytest.fixture()
def server(app: App) -> Iterator[HttpServer]:
    server = _serve(app, SECRET)
    yield server
    server.stop()


def test_port_zero_binds_a_free_port(server: HttpServer) -> None:
    """Asked for port 0, the server reports the port it really bound."""
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"


def test_healthz_is_ok(server: HttpServer) -> None:
    """/healthz answers 200 while the process runs."""
    response = requests.get(server.url + "/healthz", timeout=5)
    assert (response.status_code, response.text.strip()) == (200, "ok")


def test_readyz_follows_the_ready_callable(server: HttpServer, app: App) -> None:
    """/readyz is 503 with the reason until ready() says yes, then 200."""
    response = requests.get(server.url + "/readyz", timeout=5)
    assert response.status_code == 503
    assert "waiting for the first sync" in response.text
    app.is_ready, app.reason = True, "synced abc"
    response = requests.get(server.url + "/readyz", timeout=5)
    assert (response.status_code, response.text.strip()) == (200, "synced abc")


def test_metrics_parse_as_prometheus_text(server: HttpServer, app: App) -> None:
    """/metrics serves the Metrics object's exposition, which Prometheus' parser reads."""
    app.metrics.reconciled("success", 0.3)
    response = requests.get(server.url + "/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    values = {(s.name, tuple(s.labels.items())): s.value
              for family in text_string_to_metric_families(response.text)
              for s in family.samples}
    assert values[("mlflow_gitops_reconcile_total", (("result", "success"),))] == 1


def test_status_is_json(server: HttpServer) -> None:
    """/status returns the status() mapping as JSON."""
    response = requests.get(server.url + "/status", timeout=5)
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["environments"]["production"]["synced"] is True


def test_unknown_paths_are_404(server: HttpServer) -> None:
    """Anything else is 404, for GET and POST."""
    assert requests.get(server.url + "/nope", timeout=5).status_code == 404
    assert requests.post(server.url + "/nope", data=b"x", timeout=5).status_code == 404


def test_good_github_signature_triggers(server: HttpServer, app: App) -> None:
    """A correctly signed GitHub push is accepted with 202 and requests a reconcile."""
    response = requests.post(server.url + "/webhook", data=BODY, timeout=5, headers={
        "X-Hub-Signature-256": github_signature(BODY, SECRET), "X-GitHub-Event": "push"})
    assert response.status_code == 202
    assert app.webhooks == 1


def test_good_gitlab_token_triggers(server: HttpServer, app: App) -> None:
    """A GitLab push with the right X-Gitlab-Token is accepted with 202 and triggers."""
    response = requests.post(server.url + "/webhook", data=BODY, timeout=5,
                             headers={"X-Gitlab-Token": SECRET.decode()})
    assert response.status_code == 202
    assert app.webhooks == 1


def test_bad_signatures_get_401_and_trigger_nothing(server: HttpServer, app: App) -> None:
    """Wrong GitHub signature, wrong GitLab token or none at all: 401 and no reconcile."""
    for headers in ({"X-Hub-Signature-256": github_signature(BODY, b"wrong")},
                    {"X-Hub-Signature-256": github_signature(b"other body", SECRET)},
                    {"X-Gitlab-Token": "wrong"},
                    {}):
        response = requests.post(server.url + "/webhook", data=BODY, headers=headers, timeout=5)
        assert response.status_code == 401, headers
    assert app.webhooks == 0


def test_github_ping_is_answered_without_a_reconcile(server: HttpServer, app: App) -> None:
    """GitHub's signed ping on hook creation gets 200 and does not trigger."""
    response = requests.post(server.url + "/webhook", data=BODY, timeout=5, headers={
        "X-Hub-Signature-256": github_signature(BODY, SECRET), "X-GitHub-Event": "ping"})
    assert response.status_code == 200
    assert app.webhooks == 0


def test_oversized_body_is_refused_unread(server: HttpServer, app: App) -> None:
    """A body over 1 MiB is refused with 413 before it is read or verified."""
    big = b"x" * (MAX_BODY + 1)
    response = requests.post(server.url + "/webhook", data=big, timeout=10, headers={
        "X-Hub-Signature-256": github_signature(big, SECRET)})
    assert response.status_code == 413
    assert app.webhooks == 0


def test_without_a_secret_webhooks_are_rejected(app: App,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """With no --webhook-secret-file every webhook is 401 and the log says what to set."""
    server = _serve(app, None)
    try:
        with caplog.at_level(logging.WARNING, logger="mlflow_gitops.adapters.http"):
            response = requests.post(server.url + "/webhook", data=BODY, timeout=5,
                                     headers={"X-Gitlab-Token": ""})
    finally:
        server.stop()
    assert response.status_code == 401
    assert app.webhooks == 0
    assert "--webhook-secret-file" in caplog.text


def test_request_logs_never_carry_headers(server: HttpServer,
                                          caplog: pytest.LogCaptureFixture) -> None:
    """Debug request logs name the path, never the signature or token headers."""
    with caplog.at_level(logging.DEBUG, logger="mlflow_gitops.adapters.http"):
        requests.post(server.url + "/webhook?x=1", data=BODY, timeout=5,
                      headers={"X-Gitlab-Token": SECRET.decode()})
        requests.post(server.url + "/webhook", data=BODY, timeout=5,
                      headers={"X-Gitlab-Token": "not-the-secret-either"})
    assert "POST /webhook 202" in caplog.text
    assert SECRET.decode() not in caplog.text
    assert "not-the-secret-either" not in caplog.text


def test_a_failing_callable_is_a_500_not_a_dead_server(server: HttpServer, app: App) -> None:
    """If status() raises, that request gets 500 and the server keeps serving."""
    def broken() -> dict[str, object]:
        raise RuntimeError("boom")

    server.status = broken
    assert requests.get(server.url + "/status", timeout=5).status_code == 500
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200


def test_parse_listen() -> None:
    """--listen accepts host:port, :port and [v6]:port, and refuses anything else."""
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen(":9000") == ("0.0.0.0", 9000)
    assert parse_listen("[::1]:80") == ("::1", 80)
    for bad in ("8080", "host:", "host:http", "h:70000"):
        with pytest.raises(ConfigError, match="--listen"):
            parse_listen(bad)
