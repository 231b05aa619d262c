"""The controller's one small HTTP server.

`GET /healthz` (alive), `GET /readyz` (a `ready()` callable decides), `GET /metrics`,
`GET /status` (JSON from a `status(query)` callable: `?environment=`, `?model=`, `?state=`
filter, `?limit=` (default 500, at most 5000) and `?offset=` page; counts per state come
with every page, so it stays small at 100,000 entries), `POST /webhook`,
`POST /webhook/mlflow` and `POST /sync` (verified and routed by
mlflow_gitops.adapters.inbound), and the read-only web
page (`GET /` and `GET /models/<name>`, mlflow_gitops.adapters.page) when one is given.
Pages are GET/HEAD only: any other method on them is 405. Stdlib only, daemon
threads, and it knows nothing of the loop: it is handed callables, so the runner decides
what "ready" means and what a webhook triggers.

Webhooks are verified with mlflow_gitops.loop.webhook before anything happens: a bad or missing
signature is 401 and triggers nothing. Without a configured secret every webhook is
rejected (401, and a warning saying to set --webhook-secret-file): an unauthenticated
endpoint that starts work on demand is not something to switch on by omission.

Request logging goes to the `logging` module at debug level, with the path only: never
headers (they carry the signature or the GitLab token) and never the query string. Any
exception while serving is logged through `logging` (so the JSON format and the secret
redaction apply), never printed raw to stderr.

Bounded, so that slow or numerous clients cannot exhaust the process: at most
MAX_CONNECTIONS connections are served at once, each socket operation times out after
`_Handler.timeout` seconds, and every connection is cut after REQUEST_DEADLINE seconds in
total, however slowly its client trickles bytes. When every slot is taken, a new connection
takes the slot of the oldest one that has not yet delivered its whole request (a slow
client: a kubelet probe, a Prometheus scrape or a forge webhook sends its request at once),
so a flood of slow clients cannot starve `/healthz`, `/readyz` or the webhooks and get a
healthy pod restarted; only when every slot is busy answering is the newcomer told 503."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from mlflow_gitops.adapters.inbound import ROUTES, Inbound
from mlflow_gitops.core.errors import ConfigError
from mlflow_gitops.loop.views import MAX_LIMIT, StatusQuery

if TYPE_CHECKING:
    from mlflow_gitops.adapters.page import Page

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # 1 MiB: GitHub caps payloads at 25 MB, but a push event is small
MAX_CONNECTIONS = 64  # served at once; probes, scrapes and webhooks need a handful
REQUEST_DEADLINE = 30.0  # seconds a connection may last in total, from accept to close
_STATUS_PARAMS = ("environment", "model", "state", "limit", "offset")
_CONTENT_LENGTH = re.compile(r"[0-9]{1,10}")  # ASCII digits only: not '²', '-1' or 5,000 digits
ReadyFn = Callable[[], "tuple[bool, str]"]


def parse_status_query(text: str) -> StatusQuery | str:
    """`/status`'s query string → a StatusQuery, or the one-line reason it is not one."""
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False,
                          max_num_fields=20)
    except ValueError:
        return "too many query parameters"
    values: dict[str, str] = {}
    for key, value in pairs:
        if key not in _STATUS_PARAMS:
            return f"unknown parameter {key[:40]!r}: use {', '.join(_STATUS_PARAMS)}"
        values[key] = value
    numbers: dict[str, int] = {}
    for key, low, high in (("limit", 1, MAX_LIMIT), ("offset", 0, 10**9)):
        if key in values:
            raw = values.pop(key)
            if not re.fullmatch(r"[0-9]{1,10}", raw) or not low <= int(raw) <= high:
                return f"{key} must be a whole number from {low} to {high}"
            numbers[key] = int(raw)
    return StatusQuery(environment=values.get("environment"), model=values.get("model"),
                       state=values.get("state"), **numbers)


def parse_listen(listen: str) -> tuple[str, int]:
    """`host:port`, `:port` (all interfaces) or `[v6addr]:port` → (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not re.fullmatch(r"[0-9]{1,5}", port) or int(port) > 65535:
        raise ConfigError(f"--listen {listen!r}: expected host:port, e.g. 0.0.0.0:8080")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class HttpServer:
    """Serves the endpoints on `listen` from daemon threads; `start()` then `stop()`."""

    def __init__(self, listen: str, *, ready: ReadyFn,
                 metrics: Callable[[], tuple[bytes, str]],
                 status: Callable[[StatusQuery], Mapping[str, Any]],
                 on_webhook: Callable[[], None],
                 webhook_secret: bytes | None = None, page: Page | None = None,
                 inbound: Inbound | None = None,
                 max_connections: int = MAX_CONNECTIONS,
                 deadline: float = REQUEST_DEADLINE) -> None:
        self.host, self._port = parse_listen(listen)
        self.max_connections = max_connections
        self.deadline = deadline
        self.ready = ready
        self.metrics = metrics
        self.status = status
        self.on_webhook = on_webhook
        self.webhook_secret = webhook_secret
        self.page = page
        # POST /webhook, /webhook/mlflow and /sync (mlflow_gitops.adapters.inbound)
        self.inbound = inbound or Inbound(lambda _route: on_webhook(),
                                          webhook_secret=webhook_secret)
        self._server: _BoundedServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one after `start()`, even when asked for port 0)."""
        return self._server.server_address[1] if self._server else self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        server_class = _V6Server if ":" in self.host else _BoundedServer
        try:
            server = server_class((self.host, self._port), _Handler,
                                  max_connections=self.max_connections, deadline=self.deadline)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {self.host}:{self._port}: {exc.strerror}") \
                from exc
        server.daemon_threads = True
        server.app = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="http-server",
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        log.info("listening on %s", self.url, extra={"fields": {"listen": self.url}})
        if self.inbound.webhook_secret is None:
            log.warning("POST /webhook is disabled: set --webhook-secret-file to enable it")

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.stop_watchdog()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None


class _BoundedServer(ThreadingHTTPServer):
    """A thread per connection, but at most MAX_CONNECTIONS of them, each cut off at its
    deadline by one watchdog thread (a socket timeout alone lets a client that sends one
    byte every few seconds hold a thread forever)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any, *,
                 max_connections: int = MAX_CONNECTIONS,
                 deadline: float = REQUEST_DEADLINE) -> None:
        super().__init__(address, handler)
        self.deadline = deadline
        self._slots = threading.BoundedSemaphore(max_connections)
        self._lock = threading.Lock()
        self._open: dict[socket.socket, float] = {}  # connection → when it must be closed
        #: Connections whose request has not fully arrived yet → when they were accepted.
        self._reading: dict[socket.socket, float] = {}
        self._stopping = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name="http-watchdog",
                                          daemon=True)
        self._watchdog.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False) and not self._evict_slowest():
            _refuse_busy(request)
            self.shutdown_request(request)
            return
        with self._lock:
            now = time.monotonic()
            self._open[request] = now + self.deadline
            self._reading[request] = now
        try:
            super().process_request(request, client_address)
        except Exception:
            self._release(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release(request)

    def _evict_slowest(self) -> bool:
        """All slots are taken: cut off the oldest connection still sending its request and
        take its slot (True), or False when every connection is being answered."""
        with self._lock:
            if not self._reading:
                return False
            slowest = min(self._reading, key=self._reading.__getitem__)
            del self._reading[slowest]
        log.debug("http: all %d slots taken; cut off the slowest client", len(self._open))
        with contextlib.suppress(OSError):  # its handler's read fails and frees the slot
            slowest.shutdown(socket.SHUT_RDWR)
        return self._slots.acquire(timeout=2.0)

    def request_arrived(self, request: Any) -> None:
        """The whole request is in: from now on the connection is never evicted."""
        with self._lock:
            self._reading.pop(request, None)

    def _release(self, request: Any) -> None:
        with self._lock:
            self._reading.pop(request, None)
            if self._open.pop(request, None) is None:
                return
        self._slots.release()

    def _watch(self) -> None:
        while not self._stopping.wait(0.25):
            now = time.monotonic()
            with self._lock:
                late = [conn for conn, until in self._open.items() if until <= now]
            for conn in late:
                with contextlib.suppress(OSError):  # the handler's next read or write fails
                    conn.shutdown(socket.SHUT_RDWR)

    def stop_watchdog(self) -> None:
        self._stopping.set()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """What the stdlib prints to stderr goes through `logging` instead."""
        error = sys.exc_info()[1]
        if isinstance(error, (OSError, TimeoutError)):  # a client went away or was cut off
            log.debug("http connection ended: %s", type(error).__name__)
            return
        log.error("http request failed", exc_info=True)


def _refuse_busy(request: Any) -> None:
    with contextlib.suppress(OSError):
        request.settimeout(1.0)
        request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                        b"Content-Length: 28\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
                        b"too many connections; retry\n")


class _V6Server(_BoundedServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server_version = "mlflow-gitops"
    sys_version = ""
    timeout = 10  # seconds a client may take to send its request (slowloris guard)
    _head_only = False  # a HEAD request: headers as for GET, no body

    @property
    def app(self) -> HttpServer:
        return self.server.app  # type: ignore[attr-defined,no-any-return]

    def _arrived(self) -> None:
        self.server.request_arrived(self.connection)  # type: ignore[attr-defined]

    def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
        self._arrived()
        route = self.path.split("?", 1)[0]
        try:
            if route == "/healthz":
                self._send(200, b"ok\n")
            elif route == "/readyz":
                ok, reason = self.app.ready()
                self._send(200 if ok else 503, (reason or ("ready" if ok else "not ready"))
                           .encode("utf-8") + b"\n")
            elif route == "/metrics":
                body, content_type = self.app.metrics()
                self._send(200, body, content_type)
            elif route == "/status":
                query = parse_status_query(self.path.partition("?")[2])
                if isinstance(query, str):
                    self._send(400, query.encode("utf-8") + b"\n")
                    return
                body = json.dumps(self.app.status(query), default=str, indent=2
                                  ).encode("utf-8")
                self._send(200, body + b"\n", "application/json")
            elif self.app.page is not None and self.app.page.handles(route):
                code, body, content_type = self.app.page.render(route)
                self._send(code, body, content_type, self.app.page.headers)
            else:
                self._send(404, b"not found\n")
        except Exception:
            log.exception("GET %s failed", route)
            self._send(500, b"internal error\n")

    def do_HEAD(self) -> None:  # noqa: N802 (stdlib naming)
        self._head_only = True
        self.do_GET()

    def do_POST(self) -> None:  # noqa: N802 (stdlib naming)
        route = self.path.split("?", 1)[0]
        if self.app.page is not None and self.app.page.handles(route):
            self._read_only()
            return
        if route not in ROUTES:
            self._send(404, b"not found\n")
            return
        length = self.headers.get("Content-Length")
        if length is None:
            self._send(411, b"Content-Length required\n")
            return
        if not _CONTENT_LENGTH.fullmatch(length.strip()):
            self._send(400, b"bad Content-Length: expected a number of bytes\n")
            return
        if int(length) > MAX_BODY:
            self._send(413, f"body larger than {MAX_BODY} bytes\n".encode())
            return
        body = self.rfile.read(int(length))
        self._arrived()
        try:
            code, text = self.app.inbound.handle(route, dict(self.headers.items()), body,
                                                 self.client_address[0])
        except Exception:
            log.exception("POST %s failed", route)
            self._send(500, b"internal error\n")
            return
        self._send(code, text)

    def do_PUT(self) -> None:  # noqa: N802 (stdlib naming)
        self._read_only()

    do_DELETE = do_PATCH = do_OPTIONS = do_PUT  # noqa: N815

    def _read_only(self) -> None:
        self._send(405, b"method not allowed: GET or HEAD\n",
                   headers={"Allow": "GET, HEAD"})

    def _send(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8",
              headers: Mapping[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not self._head_only:
            self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s %s", self.command, self.path.split("?", 1)[0], code)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)
