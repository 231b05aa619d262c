"""The controller as a subprocess (`mlflow-gitops run`), the way a Deployment runs it, with
helpers to read its /status and /metrics and to wait for what a test expects."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.servers import free_port


def wait_until(predicate: Callable[[], Any], timeout: float = 20, every: float = 0.1,
               message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - the process may be starting up
            last = exc
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}; last: {last!r}")


class ControllerProcess:
    def __init__(self, workdir: Path, repo: str, tracking_uri: str, *extra: str,
                 interval: float = 1.0, env: dict[str, str] | None = None):
        self.workdir = workdir
        self.port = free_port()
        self.log_path = workdir / f"controller-{self.port}.log"
        self.args = [sys.executable, "-m", "mlflow_gitops.cli", "run", "--repo", repo,
                     "--interval", str(interval), "--listen", f"127.0.0.1:{self.port}",
                     "--cache-dir", str(workdir / f"cache-{self.port}"),
                     "--log-format", "json", "--log-level", "DEBUG", *extra]
        self.env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ControllerProcess:
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=self.env)
        wait_until(lambda: self.get("/healthz")[0] == 200, timeout=30,
                   message="controller /healthz")
        return self

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def status(self) -> dict[str, Any]:
        return json.loads(self.get("/status")[1])

    def metrics(self) -> str:
        return self.get("/metrics")[1].decode()

    def post_webhook(self, body: bytes, headers: dict[str, str]) -> int:
        req = urllib.request.Request(self.url + "/webhook", data=body, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def github_signature(self, body: bytes, secret: bytes) -> dict[str, str]:
        digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
        return {"X-Hub-Signature-256": f"sha256={digest}", "X-GitHub-Event": "push"}

    def passes(self) -> int:
        return int(self.status()["last_pass"]["passes"])

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.logs().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def terminate(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.log.close()
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if hasattr(self, "log"):
            self.log.close()


def start(controllers: list[Any], *args: Any, **kwargs: Any) -> ControllerProcess:
    """A started ControllerProcess, killed after the test (the `controllers` fixture)."""
    proc = ControllerProcess(*args, **kwargs)
    controllers.append(proc)
    return proc.start()


def synced_at(proc: ControllerProcess, sha: str) -> bool:
    """The controller applied `sha` and every entry is Synced."""
    status = proc.status()
    return bool(status["last_applied_commit"] == sha and all(
        row["sync"] == "Synced" for row in status["environments"]))
