"""The controller as a process against hostile input: a commit whose values the
YAML reader refuses, odd HTTP requests, bad flags, and credentials in URIs. Nothing stops it,
nothing leaks."""

from __future__ import annotations

import json
import socket
import warnings
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run_cli
from tests.support.controller_proc import ControllerProcess, start, wait_until
from tests.support.envfiles import HEADER
from tests.support.gitrepos import bare_remote, commit_all, git
from tests.support.registry_helpers import make_model, stages_of
from tests.support.servers import free_port


def _files(model: str, production: int, staging: str, gated: bool = False) -> dict[str, str]:
    policy = "promotion:\n  from: staging\n  min_soak: 1s\n" if gated else ""
    return {
        "environments/production.yaml": HEADER + (
            f"target:\n  stage: Production\n{policy}models:\n  {model}: {production}\n"),
        "environments/staging.yaml": HEADER + (
            f"target:\n  stage: Staging\nmodels:\n  {model}: {staging}\n"),
    }


def test_a_value_the_yaml_reader_refuses_is_an_invalid_commit(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        controllers: list[ControllerProcess]) -> None:
    """`!!int abc` makes the commit invalid (file:line in /status, the metric at 1), the last
    good state stays in force (drift is healed), and once fixed, a gated promotion that walks
    the file's history past the bad revision is applied."""
    model = f"hostile-{unique}"
    make_model(mlflow_client, model, 3)
    bare, work = bare_remote(tmp_path, _files(model, 1, "2"))
    proc = start(controllers, tmp_path, f"file://{bare}", mlflow_server.uri, interval=0.5)
    wait_until(lambda: stages_of(mlflow_client, model) == {1: "Production", 2: "Staging",
                                                            3: "None"}, message="first sync")

    (work / "environments/staging.yaml").write_text(
        _files(model, 1, "!!int abc")["environments/staging.yaml"])
    bad = commit_all(work, "a value PyYAML cannot construct")
    git(work, "push", "-q", "origin", "main")
    status = wait_until(lambda: (s := proc.status())["invalid_commit"] and s, message="invalid")
    assert status["invalid_commit"]["commit"] == bad
    assert status["invalid_commit"]["diagnostics"] == [{
        "file": "environments/staging.yaml", "line": 6,
        "message": "invalid value: 'abc' is not a whole number; fix it, or quote it to make "
                   "it a string"}]
    assert "mlflow_gitops_invalid_commit 1.0" in proc.metrics()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow_client.transition_model_version_stage(model, "1", "Archived")  # drift
    wait_until(lambda: stages_of(mlflow_client, model)[1] == "Production",
               message="the last good state healed the drift")

    files = _files(model, 2, "3", gated=True)
    for rel, text in files.items():
        (work / rel).write_text(text)
    good = commit_all(work, "fix staging, promote v2 to production")
    git(work, "push", "-q", "origin", "main")
    wait_until(lambda: proc.status()["last_applied_commit"] == good, timeout=30,
               message="the fixed commit applied")
    assert stages_of(mlflow_client, model) == {1: "Archived", 2: "Production", 3: "Staging"}
    status = proc.status()
    assert status["invalid_commit"] is None and status["last_pass"]["outcome"] == "success"
    assert "mlflow_gitops_invalid_commit 0.0" in proc.metrics()
    assert "internal error" not in proc.logs()
    assert proc.terminate() == 0


def _raw(proc: ControllerProcess, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", proc.port), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_odd_requests_and_a_password_in_the_tracking_uri(
        tmp_path: Path, unique: str, controllers: list[ControllerProcess]) -> None:
    """HEAD is answered, bad Content-Length values are 400, every output line stays JSON,
    and the password of MLFLOW_TRACKING_URI is in no log line, /status or /readyz while the
    registry fails."""
    password = f"Pw-{unique}-zz"
    bare, _ = bare_remote(tmp_path, _files(f"m-{unique}", 1, "2"))
    (tmp_path / "hook").write_text("hook-secret\n")
    proc = start(controllers, tmp_path, f"file://{bare}",
                 f"http://alice:{password}@127.0.0.1:{free_port()}",
                 "--webhook-secret-file", str(tmp_path / "hook"), interval=0.5,
                 env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"})
    status = wait_until(lambda: (s := proc.status())["registry_errors"] and s,
                        message="the registry error shows in /status")
    assert password not in json.dumps(status)  # the message may name the URI, never PW

    for method in (b"HEAD /healthz", b"HEAD /readyz", b"HEAD /status", b"HEAD /metrics"):
        head, _, body = _raw(proc, method + b" HTTP/1.0\r\n\r\n").partition(b"\r\n\r\n")
        assert head.split(b" ")[1] in (b"200", b"503") and body == b"", method
    for length in (b"9" * 5000, "²".encode(), b"-5"):
        answer = _raw(proc, b"POST /webhook HTTP/1.0\r\nContent-Length: " + length
                      + b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.0 400"), answer[:60]

    shown = json.dumps(proc.status()) + proc.get("/readyz")[1].decode() + proc.metrics()
    assert password not in shown
    assert proc.terminate() == 0
    logs = proc.logs()
    assert password not in logs and "registry" in logs
    lines = [line for line in logs.splitlines() if line.strip()]
    assert len(proc.log_records()) == len(lines), "a line outside the JSON log"
    assert "Traceback" not in logs


@pytest.mark.parametrize("flags, words", [
    (["--interval", "-5"], "argument --interval: '-5': must be a number of seconds above 0"),
    (["--interval", "0"], "argument --interval: '0': must be a number of seconds above 0"),
    (["--interval", "nan"], "must be a number of seconds above 0"),
    (["--lease-duration", "0"], "must be a whole number of seconds above 0"),
])
def test_flags_that_make_no_sense_are_usage_errors(flags: list[str], words: str) -> None:
    """`--interval -5` or `0` exits 1 with one line pointing at --help; nothing starts."""
    result = run_cli("run", "--repo-url", "file:///nowhere", "--listen", "127.0.0.1:0", *flags,
                     timeout=60)
    assert result.code == 1
    assert result.err.count("\n") == 1 and words in result.err and "--help" in result.err


def test_a_listen_address_with_odd_digits_is_one_line(tmp_path: Path) -> None:
    """`--listen host:²` (a Unicode digit) is a one-line error, not an internal error."""
    result = run_cli("run", "--repo-url", "file:///nowhere", "--listen", "127.0.0.1:²",
                     "--cache-dir", str(tmp_path / "cache"), timeout=60,
                     env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:1"})
    assert result.code == 1
    assert "--listen '127.0.0.1:²': expected host:port" in result.err
    assert "internal error" not in result.err and "Traceback" not in result.err


def test_a_secret_file_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    """A missing or unreadable --webhook-secret-file is a one-line error, exit 1."""
    for path in (tmp_path / "missing", tmp_path):
        result = run_cli("run", "--repo-url", "file:///nowhere", "--listen", "127.0.0.1:0",
                         "--webhook-secret-file", str(path),
                         "--cache-dir", str(tmp_path / "cache"), timeout=60,
                         env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:1"})
        assert result.code == 1
        assert f"--webhook-secret-file {path}: cannot read it" in result.err
        assert "internal error" not in result.err


def test_a_token_in_a_git_url_query_is_refused_and_never_shown(tmp_path: Path) -> None:
    """`?access_token=` / `?private_token=` in --repo-url: exit 1, one line, no token."""
    for url in ("https://github.com/acme/envs.git?access_token=ghp_Leak123456",
                "https://gitlab.com/acme/envs.git?private_token=glpat-Leak123456&x=1"):
        result = run_cli("run", "--repo-url", url, "--listen", "127.0.0.1:0",
                         "--cache-dir", str(tmp_path / "cache"), timeout=60,
                         env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:1"})
        assert result.code == 1, result.err
        assert "Leak123456" not in result.err + result.out
        assert "carries a credential in its query" in result.err
        assert result.err.count("\n") == 1


def test_thousands_of_failing_entries_are_summarized_in_logs_and_status(
        tmp_path: Path, mlflow_server: Any, unique: str,
        controllers: list[ControllerProcess]) -> None:
    """3,000 unregistered models: the log has the first 20 and one summary line (and nothing
    more on later passes); /status pages them, with counts per state and filters."""
    count = 3000
    models = "".join(f"  ghost-{unique}-{i}: 1\n" for i in range(count))
    bare, _ = bare_remote(tmp_path, {"environments/production.yaml": HEADER + (
        "target:\n  stage: Production\nmodels:\n" + models)})
    proc = start(controllers, tmp_path, f"file://{bare}", mlflow_server.uri, interval=0.5)
    status = wait_until(lambda: (s := proc.status())["summary"]["entries"] == count and s,
                        timeout=60, message="all entries in /status")
    assert status["summary"]["by_state"] == {"Error": count}
    assert len(status["environments"]) == 500
    assert status["page"] == {"offset": 0, "limit": 500, "matched": count, "returned": 500,
                              "next_offset": 500}
    one = json.loads(proc.get(f"/status?model=ghost-{unique}-7")[1])
    assert [row["model"] for row in one["environments"]] == [f"ghost-{unique}-7"]
    last = json.loads(proc.get("/status?offset=2990&limit=100&state=error")[1])
    assert last["page"]["returned"] == 10 and last["page"]["next_offset"] is None
    assert proc.get("/status?limit=0")[0] == 400 and proc.get("/status?bogus=1")[0] == 400

    passes = proc.passes()
    wait_until(lambda: proc.passes() >= passes + 3, message="three more passes")
    records = proc.log_records()
    per_model = [r for r in records if str(r.get("model", "")).startswith(f"ghost-{unique}")]
    summaries = [r for r in records if r.get("more")]
    assert len(per_model) == 20 and per_model[0]["level"] == "ERROR"
    assert [(r["more"], r["by_state"]) for r in summaries] == [(count - 20, {"Error": count - 20})]
    assert proc.terminate() == 0
