"""The HTTP server against hostile clients over real sockets: odd Content-Length values,
HEAD, slowloris and more connections than it serves at once."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow_gitops.adapters.http import HttpServer
from mlflow_gitops.adapters.logs import configure
from mlflow_gitops.adapters.metrics import Metrics

SECRET = b"hook-secret-42"


def _status(query: object) -> dict[str, object]:
    raise RuntimeError("status exploded with http://alice:S3cretPW@registry:5000/api")


@pytest.fixture()
def server() -> Iterator[HttpServer]:
    srv = HttpServer("127.0.0.1:0", ready=lambda: (True, "ok"), metrics=Metrics().render,
                     status=_status, on_webhook=lambda: None, webhook_secret=SECRET,
                     max_connections=4, deadline=1.5)
    srv.start()
    yield srv
    srv.stop()


def _raw(srv: HttpServer, request: bytes, timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", srv.port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("length", ["9" * 5000, "²", "-1", "1e3", " ", "0x10", "１２"])
def test_a_bad_content_length_is_400_without_a_traceback(
        server: HttpServer, length: str, capfd: pytest.CaptureFixture[str]) -> None:
    """Any Content-Length that is not plain ASCII digits is a 400, and nothing is printed."""
    answer = _raw(server, b"POST /webhook HTTP/1.0\r\nContent-Length: "
                  + length.encode("utf-8") + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 400"), answer[:80]
    assert "Traceback" not in capfd.readouterr().err


def test_head_answers_like_get_without_a_body(server: HttpServer) -> None:
    """HEAD /healthz and HEAD /metrics are 200 with headers only."""
    for path in (b"/healthz", b"/metrics"):
        answer = _raw(server, b"HEAD " + path + b" HTTP/1.0\r\n\r\n")
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 200") and body == b""


def test_a_failing_handler_is_logged_redacted_not_printed(
        server: HttpServer, capfd: pytest.CaptureFixture[str]) -> None:
    """An exception in a handler is a 500 and one JSON log line with the URI password
    masked; nothing reaches stderr raw."""
    out = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure("json", "INFO", stream=out)
    try:
        answer = _raw(server, b"GET /status HTTP/1.0\r\n\r\n")
    finally:
        for handler in root.handlers[:]:
            if handler not in saved[0]:
                root.removeHandler(handler)
        root.setLevel(saved[1])
    assert answer.startswith(b"HTTP/1.0 500") and b"S3cretPW" not in answer
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["message"] for r in records] == ["GET /status failed"]
    assert "RuntimeError" in records[0]["exception"] and "S3cretPW" not in out.getvalue()
    assert "http://***@registry:5000" in records[0]["exception"]
    assert "Traceback" not in capfd.readouterr().err


def test_slowloris_is_cut_off_at_the_deadline(server: HttpServer) -> None:
    """A client trickling a byte every 0.3 s is disconnected at the overall deadline."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        closed = False
        for byte in b"GET /healthz HTTP/1.0\r\nX-Slow: " + b"a" * 40:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.3)
            sock.settimeout(0.01)
            try:
                if sock.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
            except OSError:
                closed = True
                break
            sock.settimeout(5)
    assert closed and time.monotonic() - started < 1.5 + 1.5


def test_a_new_client_takes_the_slot_of_the_oldest_idle_one(server: HttpServer) -> None:
    """With every slot held by an idle client (no request sent), /healthz is still answered
    200 at once: the oldest idle connection is cut off to make room."""
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(4)]
    try:
        time.sleep(0.2)
        started = time.monotonic()
        answer = _raw(server, b"GET /healthz HTTP/1.0\r\n\r\n")
        assert answer.startswith(b"HTTP/1.0 200") and time.monotonic() - started < 1
        idle[0].settimeout(2)
        assert idle[0].recv(1) == b""  # the oldest was the one cut off
    finally:
        for sock in idle:
            sock.close()


def test_when_every_slot_is_answering_a_newcomer_gets_503(server: HttpServer) -> None:
    """Only connections that have not sent their request are evicted: with every slot busy
    answering (a /status that blocks), the next client is told 503 at once."""
    release = threading.Event()
    server.status = lambda _query: release.wait(5) and {}  # type: ignore[assignment,misc]
    busy = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(4)]
    try:
        for sock in busy:
            sock.sendall(b"GET /status HTTP/1.0\r\n\r\n")
        time.sleep(0.3)
        answer = _raw(server, b"GET /healthz HTTP/1.0\r\n\r\n")
        assert answer.startswith(b"HTTP/1.0 503")
    finally:
        release.set()
        for sock in busy:
            sock.close()


_METHODS = st.sampled_from([b"GET", b"HEAD", b"POST", b"PUT", b"OPTIONS", b"BREW", b""])
_PATHS = st.sampled_from([b"/healthz", b"/readyz", b"/metrics", b"/status", b"/webhook",
                          b"/webhook/mlflow", b"/sync", b"/", b"/models/x", b"/%ff%00",
                          b"/status?limit=\xff", b"//..//", b"*"])
_HEADER = st.tuples(st.sampled_from([b"Content-Length", b"Host", b"X-Hub-Signature-256",
                                     b"X-Gitlab-Token", b"Transfer-Encoding", b"Expect",
                                     b"X-Mlflow-Signature", b"\xff\xfe"]),
                    st.binary(max_size=30).filter(lambda v: b"\r" not in v and b"\n" not in v))


@settings(max_examples=60, deadline=None)
@given(_METHODS, _PATHS, st.lists(_HEADER, max_size=4), st.binary(max_size=64))
def test_any_request_gets_an_answer_or_a_close_never_a_printed_traceback(
        method: bytes, path: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    """Arbitrary methods, paths, header values and bodies: the server answers (or closes)
    and keeps serving; nothing is printed raw to stderr."""
    srv = HttpServer("127.0.0.1:0", ready=lambda: (True, "ok"), metrics=Metrics().render,
                     status=lambda _query: {"ok": True}, on_webhook=lambda: None,
                     webhook_secret=SECRET, deadline=2)
    srv.start()
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            request = method + b" " + path + b" HTTP/1.0\r\n" + b"".join(
                name + b": " + value + b"\r\n" for name, value in headers) + b"\r\n" + body
            with contextlib.suppress(OSError):  # it may close on a request it cannot parse
                _raw(srv, request, timeout=5)
            assert _raw(srv, b"GET /healthz HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 200")
    finally:
        srv.stop()
    assert "Traceback" not in err.getvalue()
