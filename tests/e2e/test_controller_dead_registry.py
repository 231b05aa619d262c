"""A registry that stops answering in the middle of a pass, with the controller as a process:
the pass is cut short at once (one error, not one per model), /readyz turns 503, SIGTERM
exits well inside the Deployment's 60 s grace, and nothing is left half-applied."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path
from typing import Any

from tests.support.controller_proc import ControllerProcess, start, wait_until
from tests.support.counting_proxy import CountingProxy
from tests.support.envfiles import HEADER
from tests.support.gitrepos import bare_remote, commit_all, git, write_files
from tests.support.registry_helpers import make_model, stages_of

STAGING = "environments/staging.yaml"
#: The controller's own defaults (tests/conftest.py raises the retries for the test session).
DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1"}


def staging(models: dict[str, int]) -> dict[str, str]:
    listing = "".join(f"  {m}: {v}\n" for m, v in models.items())
    return {STAGING: HEADER + "target:\n  stage: Staging\nmodels:\n" + listing}


def pass_seconds(proc: ControllerProcess, outcome: str) -> list[float]:
    out = []
    for record in proc.log_records():
        found = re.match(rf"reconcile {outcome} in ([0-9.]+)s", record.get("message", ""))
        if found:
            out.append(float(found.group(1)))
    return out


def test_a_registry_dying_mid_pass_cuts_the_pass_short_and_sigterm_exits_fast(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        controllers: list[ControllerProcess]) -> None:
    """The registry stops answering after a few of 25 promotions: that pass ends within one
    call's budget with one summarized error, /readyz is 503 at once, SIGTERM exits 0 within
    20 s, and a controller started after the outage finishes the promotions."""
    models = [f"dead{i:02d}-{unique}" for i in range(25)]
    for model in models:
        make_model(mlflow_client, model, 2, {1: "Staging"})
    bare, work = bare_remote(tmp_path, staging(dict.fromkeys(models, 1)))
    proxy = CountingProxy(mlflow_server.uri).start()
    proc = start(controllers, tmp_path, bare.as_uri(), proxy.uri, interval=0.5, env=DEFAULTS)
    wait_until(lambda: proc.get("/readyz")[0] == 200, message="ready")

    proxy.write_delay = 0.1
    write_files(work, staging(dict.fromkeys(models, 2)))
    sha = commit_all(work, "promote all to v2")
    git(work, "push", "-q", "origin", "HEAD:main")
    wait_until(lambda: sum(stages_of(mlflow_client, m).get(2) == "Staging"
                           for m in models) >= 3, every=0.05, message="a few promoted")
    proxy.down = True  # the registry dies: open connections get no answer,
    proxy.stop()  # and its address refuses every new one
    died = time.monotonic()
    wait_until(lambda: proc.get("/readyz")[0] == 503, timeout=15, every=0.1,
               message="readyz 503 once the registry stopped answering")
    assert time.monotonic() - died < 15
    status = wait_until(lambda: (s := proc.status())["registry_errors"] and s,
                        message="registry error in /status")
    assert "default" in status["registry_errors"]
    failed = pass_seconds(proc, "error")
    assert failed and failed[0] < 15, f"the cut-short pass took {failed}"
    cut = [r for r in proc.log_records() if "stopped answering" in r.get("message", "")]
    assert len(cut) == 1, "one summarized error, not one per remaining model"
    assert "other models in registry 'default' are skipped" in cut[0]["message"]

    asked = time.monotonic()
    assert proc.terminate(timeout=30) == 0
    assert time.monotonic() - asked < 20

    done = sum(stages_of(mlflow_client, m).get(2) == "Staging" for m in models)
    assert done < len(models)
    after = start(controllers, tmp_path, bare.as_uri(), mlflow_server.uri, interval=0.5)
    wait_until(lambda: after.status()["last_applied_commit"] == sha, timeout=60,
               message="the rest applied once the registry answers")
    assert all(stages_of(mlflow_client, m) == {1: "Archived", 2: "Staging"} for m in models)
    assert after.terminate() == 0


def test_sigterm_exits_in_bounded_time_while_registry_calls_hang(
        tmp_path: Path, unique: str, controllers: list[ControllerProcess]) -> None:
    """A registry that accepts connections and never answers: /readyz says not synced, and
    SIGTERM still exits 0 well inside the 60 s grace period."""
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(64)  # connections are queued, never answered
        uri = f"http://127.0.0.1:{hole.getsockname()[1]}"
        bare, _ = bare_remote(tmp_path, staging({f"hang-{unique}": 1}))
        proc = start(controllers, tmp_path, bare.as_uri(), uri, interval=0.5, env=DEFAULTS)
        time.sleep(1.0)  # the first pass is now waiting on the registry
        assert proc.get("/readyz")[0] == 503
        asked = time.monotonic()
        assert proc.terminate(timeout=40) == 0
        assert time.monotonic() - asked < 20
