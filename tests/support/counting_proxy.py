"""A counting reverse proxy in front of the real MLflow server: every HTTP call the client
makes passes through it and is counted by method and path. The server stays real; only the
counting is ours (used by the call-count test and by `make bench`)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

WRITE_PATHS = ("transition-stage", "alias", "set-tag", "delete-tag", "create", "update",
               "delete")


class CountingProxy:
    """`refuse_in=True` answers a search whose filter uses `name IN (...)` as a server
    before MLflow 3 does (400 INVALID_PARAMETER_VALUE), to exercise the per-model reads."""

    def __init__(self, upstream: str, refuse_in: bool = False):
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.counts: Counter[tuple[str, str]] = Counter()
        self.write_delay = 0.0  # seconds each write waits before it is forwarded
        self.down = False  # True: drop every request unanswered (a registry that died)
        self.refuse_in = refuse_in
        self.authorizations: set[str | None] = set()  # Authorization headers seen
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if proxy.down:  # even on a kept-alive connection: close it, answer nothing
                    self.close_connection = True
                    return
                path = self.path.split("?")[0]
                with proxy._lock:
                    proxy.counts[(self.command, path)] += 1
                    proxy.authorizations.add(self.headers.get("Authorization"))
                if proxy.write_delay and proxy.is_write(self.command, path):
                    time.sleep(proxy.write_delay)  # a slow registry, to stop a pass half-way
                if proxy.refuse_in and self._uses_in():
                    self._refuse()
                    return
                conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port,
                                                  timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                proxy.answered(self.command, self.path, body)  # a slow registry's hook
                self.send_response(resp.status)
                for key, value in resp.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            def _uses_in(self) -> bool:
                query = parse_qs(urlsplit(self.path).query)
                return any(" IN " in f.upper() for f in query.get("filter", ()))

            def _refuse(self) -> None:
                data = json.dumps({"error_code": "INVALID_PARAMETER_VALUE",
                                   "message": "Invalid clause(s) in filter string"}).encode()
                self.send_response(400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> CountingProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answered(self, method: str, path: str, body: bytes | None) -> None:
        """Called once the server has answered a request, before the answer is sent on
        (`path` with its query string): tests/support/slow_proxy.py slows answers here."""

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()

    def total(self) -> int:
        return sum(self.counts.values())

    @staticmethod
    def is_write(method: str, path: str) -> bool:
        return method != "GET" and not path.endswith("/search") and any(
            w in path for w in WRITE_PATHS)

    def writes(self) -> int:
        return sum(n for (method, path), n in self.counts.items() if self.is_write(method, path))

    def reads(self) -> int:
        return self.total() - self.writes()

    def __enter__(self) -> CountingProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
