"""A real Prometheus server for verification tests: Debian's `prometheus` binary on a free
loopback port, its own config and a storage folder in tmp, scraping every second a tiny
exporter the test controls (text exposition format 0.0.4 served by http.server,
https://prometheus.io/docs/instrumenting/exposition_formats/). Nothing goes out: no remote
write, no alerting, no service discovery beyond the one static target."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.servers import free_port

BINARY = shutil.which("prometheus") or "/usr/bin/prometheus"


def available() -> str | None:
    """Why a real Prometheus cannot run here (None: it can)."""
    if not Path(BINARY).exists():
        return ("the prometheus server is not installed (make tools installs Debian's "
                "prometheus package where apt-get is usable)")
    return None


class Exporter(ThreadingHTTPServer):
    """Serves `/metrics` from `self.series`: {(name, labels as sorted tuple): value}."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", free_port()), _ExporterHandler)
        self.series: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def set(self, name: str, value: float, **labels: str) -> None:
        with self.lock:
            self.series[(name, tuple(sorted(labels.items())))] = value

    def clear(self) -> None:
        with self.lock:
            self.series.clear()

    def text(self) -> str:
        with self.lock:
            lines = []
            for (name, labels), value in sorted(self.series.items()):
                inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                lines.append(f"{name}{{{inner}}} {value!r}")
        return "\n".join(lines) + "\n"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _ExporterHandler(BaseHTTPRequestHandler):
    server: Exporter

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path.startswith("/quality/"):  # an HTTP JSON source: {"error_rate": x}
            _, _, model, version = self.path.split("/", 3)
            value = self.server.series.get(
                ("model_error_ratio", (("model", urllib.parse.unquote(model)),
                                       ("version", version))))
            body = json.dumps({"result": {"error_rate": value}}).encode()
            kind = "application/json"
        else:
            body, kind = self.server.text().encode(), "text/plain; version=0.0.4"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class PrometheusServer:
    """`prometheus` scraping `exporter` every `scrape` seconds; `stop()`/`start()` again."""

    def __init__(self, root: Path, exporter: Exporter, scrape: str = "1s") -> None:
        self.root = root
        self.exporter = exporter
        self.scrape = scrape
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> PrometheusServer:
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "prometheus.yml"
        config.write_text(
            f"global:\n  scrape_interval: {self.scrape}\n  evaluation_interval: 1m\n"
            "scrape_configs:\n  - job_name: model\n"
            f"    static_configs:\n      - targets: ['{self.exporter.target}']\n")
        log = open(self.root / "prometheus.log", "ab")  # noqa: SIM115 - handed to the process
        self.proc = subprocess.Popen(
            [BINARY, f"--config.file={config}", f"--storage.tsdb.path={self.root / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h",
             "--query.lookback-delta=3s"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited; see {self.root / 'prometheus.log'}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"prometheus did not become ready in {timeout}s")

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = json.load(resp)
        return list(body["data"]["result"])

    def wait_for(self, promql: str, timeout: float = 15) -> None:
        """Until `promql` has data (the exporter has been scraped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.query(promql):
                return
            time.sleep(0.2)
        raise AssertionError(f"no data for {promql} after {timeout}s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
