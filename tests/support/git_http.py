"""A git remote over HTTPS-like HTTP: `git http-backend` behind Basic auth with a token,
so the controller's token handling (GIT_ASKPASS, never argv) runs as it does in a cluster."""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class GitHttp(BaseHTTPRequestHandler):
    """CGI bridge to `git http-backend`, requiring Basic auth with the token."""

    root: Path
    token: str
    expected: str
    usernames: list[str]
    leaks: list[str]

    def do_GET(self) -> None:  # noqa: N802
        self._serve()

    def do_POST(self) -> None:  # noqa: N802
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _serve(self) -> None:
        auth = self.headers.get("Authorization", "")
        if auth != self.expected:
            if auth.startswith("Basic "):
                self.usernames.append(base64.b64decode(auth[6:]).decode().split(":")[0])
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.usernames.append(base64.b64decode(auth[6:]).decode().split(":")[0])
        self.leaks.extend(processes_showing(self.token))  # git is running right now
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {"PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": str(self.root),
               "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path, "QUERY_STRING": query,
               "REQUEST_METHOD": self.command, "REMOTE_USER": "bot", "REMOTE_ADDR": "127.0.0.1",
               "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "CONTENT_LENGTH": str(len(body))}
        env.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in self.headers.items()
                    if k.lower() != "authorization"})
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True,
                             check=True).stdout
        sep = b"\r\n\r\n" if b"\r\n\r\n" in out else b"\n\n"
        head, _, payload = out.partition(sep)
        status, headers = 200, []
        for line in head.decode().splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@contextmanager
def serve_git_http(root: Path, token: str, username: str = "x-access-token"
                   ) -> Iterator[tuple[str, type[GitHttp]]]:
    """Serve every bare repository under `root` at http://127.0.0.1:PORT/<path>; yields
    that URL root and the handler class (its `usernames` and `leaks` lists)."""
    handler = type("Handler", (GitHttp,), {
        "root": root, "token": token, "usernames": [], "leaks": [],
        "expected": "Basic " + base64.b64encode(f"{username}:{token}".encode()).decode()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def processes_showing(secret: str) -> list[str]:
    """Processes whose argv or environment contains `secret` (what `ps e` would show)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        for part in ("cmdline", "environ"):
            try:
                if secret.encode() in (proc / part).read_bytes():
                    found.append(f"{proc.name}/{part}")
            except OSError:
                pass
    return found
