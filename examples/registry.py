"""`make registry`: a local MLflow registry for the README's walkthrough.

Starts `mlflow server` on SQLite in `.registry/` on 127.0.0.1:5000 (MLFLOW_GITOPS_REGISTRY_PORT
to change it), in the background, and registers `fraud-detector` v1–v3, each from a run that
logged its accuracy, and the prompt `support-summarizer` v1–v2 (MLflow's prompt registry). Run
it again and it reuses what is there; `make registry-stop` stops it."""

from __future__ import annotations

import os
import signal
import socket
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.servers import MlflowServer  # noqa: E402

WORK = ROOT / ".registry"
PID_FILE = WORK / "server.pid"
MODEL = "fraud-detector"
ACCURACY = {1: 0.91, 2: 0.93, 3: 0.88}
PROMPT = "support-summarizer"
TEMPLATES = ("Summarize this support ticket in one sentence:\n{{ticket}}",
             "Summarize this support ticket in one sentence.\nName the product first.\n"
             "{{ticket}}")


def _port() -> int:
    return int(os.environ.get("MLFLOW_GITOPS_REGISTRY_PORT", "5000"))


def _answers(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def _port_taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def start() -> None:
    port = _port()
    uri = f"http://127.0.0.1:{port}"
    if PID_FILE.exists() and _answers(uri):
        print(f"registry already running at {uri}")
    else:
        if _port_taken(port):
            raise SystemExit(f"make registry: port {port} is in use by another program; pick "
                             f"another: MLFLOW_GITOPS_REGISTRY_PORT={port + 1} make registry")
        server = MlflowServer(WORK, port=port).start()
        assert server.proc is not None
        PID_FILE.write_text(str(server.proc.pid))
        print(f"started MLflow at {uri} (SQLite in .registry/; make registry-stop stops it)")
    _register(uri)
    print(f"export MLFLOW_TRACKING_URI={uri}")


def _register(uri: str) -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    from mlflow import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # after the import that sets it up

    client = MlflowClient(uri, uri)
    if client.search_registered_models(f"name = '{MODEL}'"):
        print(f"{MODEL} is already registered")
        return
    experiment = client.create_experiment("fraud")
    client.create_registered_model(MODEL)
    for version, accuracy in ACCURACY.items():
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "accuracy", accuracy)
        client.set_terminated(run.info.run_id)
        client.create_model_version(MODEL, source=f"s3://models/fraud/{version}",
                                    run_id=run.info.run_id)
    print(f"registered {MODEL} v1, v2, v3 (accuracy "
          + ", ".join(f"{a}" for a in ACCURACY.values()) + ")")
    import mlflow

    mlflow.set_registry_uri(uri)
    for template in TEMPLATES:
        mlflow.genai.register_prompt(name=PROMPT, template=template)
    print(f"registered the prompt {PROMPT} v1, v2")


def stop() -> None:
    if not PID_FILE.exists():
        print("no registry started by make registry")
        return
    pid = int(PID_FILE.read_text())
    try:
        os.killpg(pid, signal.SIGTERM)
        print(f"stopped the registry (process group {pid})")
    except ProcessLookupError:
        print("the registry was not running")
    PID_FILE.unlink()


if __name__ == "__main__":
    {"start": start, "stop": stop}[sys.argv[1] if len(sys.argv) > 1 else "start"]()
