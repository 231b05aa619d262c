"""The controller's one small HTTP server (SPEC §6 "HTTP" and "Triggers").

`GET /healthz` (alive), `GET /readyz` (a `ready()` callable decides), `GET /metrics`,
`GET /status` (JSON from a `status()` callable), `POST /webhook`, and the read-only web
page (`GET /` and `GET /models/<name>`, mlflow_gitops.adapters.page) when one is given.
Pages are GET/HEAD only: any other method on them is 405. Stdlib only, daemon
threads, and it knows nothing of the loop: it is handed callables, so the runner decides
what "ready" means and what a webhook triggers.

Webhooks are verified with mlflow_gitops.loop.webhook before anything happens: a bad or missing
signature is 401 and triggers nothing. Without a configured secret every webhook is
rejected (401, and a warning saying to set --webhook-secret-file): an unauthenticated
endpoint that starts work on demand is not something to switch on by omission.

Request logging goes to the `logging` module at debug level, with the path only: never
headers (they carry the signature or the GitLab token) and never the query string."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from mlflow_gitops.adapters.inbound import ROUTES, Inbound
from mlflow_gitops.core.errors import ConfigError

if TYPE_CHECKING:
    from mlflow_gitops.adapters.page import Page

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # 1 MiB: GitHub caps payloads at 25 MB, but a push event is small
ReadyFn = Callable[[], "tuple[bool, str]"]


def parse_listen(listen: str) -> tuple[str, int]:
    """`host:port`, `:port` (all interfaces) or `[v6addr]:port` → (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"--listen {listen!r}: expected host:port, e.g. 0.0.0.0:8080")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class HttpServer:
    """Serves the endpoints on `listen` from daemon threads; `start()` then `stop()`."""

    def __init__(self, listen: str, *, ready: ReadyFn,
                 metrics: Callable[[], tuple[bytes, str]],
                 status: Callable[[], Mapping[str, Any]],
                 on_webhook: Callable[[], None],
                 webhook_secret: bytes | None = None, page: Page | None = None,
                 inbound: Inbound | None = None) -> None:
        self.host, self._port = parse_listen(listen)
        self.ready = ready
        self.metrics = metrics
        self.status = status
        self.on_webhook = on_webhook
        self.webhook_secret = webhook_secret
        self.page = page
        # POST /webhook, /webhook/mlflow and /sync (mlflow_gitops.adapters.inbound)
        self.inbound = inbound or Inbound(lambda _route: on_webhook(),
                                          webhook_secret=webhook_secret)
        self._server: ThreadingHTTPServer | None = None
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
        server_class = _V6Server if ":" in self.host else ThreadingHTTPServer
        try:
            server = server_class((self.host, self._port), _Handler)
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
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server_version = "mlflow-gitops"
    sys_version = ""
    timeout = 10  # seconds a client may take to send its request (slowloris guard)
    _head_only = False  # a HEAD request: headers as for GET, no body

    @property
    def app(self) -> HttpServer:
        return self.server.app  # type: ignore[attr-defined,no-any-return]

    def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
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
                body = json.dumps(self.app.status(), default=str, indent=2).encode("utf-8")
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
        if length is None or not length.isdigit():
            self._send(411, b"Content-Length required\n")
            return
        if int(length) > MAX_BODY:
            self._send(413, f"body larger than {MAX_BODY} bytes\n".encode())
            return
        body = self.rfile.read(int(length))
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
