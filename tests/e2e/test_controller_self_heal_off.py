"""`self_heal: false` across restarts, with the controller as a process, a real MLflow server
and a bare git remote: what was fully applied is recorded per entry in the registry, so a
half-applied commit is finished, a held-back promotion is applied once allowed, and a
restart while the registry is down reverts nothing."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

from tests.support.controller_proc import ControllerProcess, start, synced_at, wait_until
from tests.support.counting_proxy import CountingProxy
from tests.support.envfiles import HEADER
from tests.support.gitrepos import bare_remote, commit_all, git, write_files
from tests.support.registry_helpers import make_model, stages_of
from tests.support.servers import MlflowServer

PROD = "environments/production.yaml"
RECORD = "gitops.converged.production"


def production(models: dict[str, int], gates: str = "") -> dict[str, str]:
    listing = "".join(f"  {m}: {v}\n" for m, v in models.items())
    return {PROD: HEADER + "target:\n  stage: Production\nsync:\n  self_heal: false\n"
            + gates + "models:\n" + listing}


def push(work: Path, files: dict[str, str], message: str) -> str:
    write_files(work, files)
    sha = commit_all(work, message)
    git(work, "push", "-q", "origin", "HEAD:main")
    return sha


def recorded(client: Any, model: str) -> int | None:
    value = client.get_registered_model(model).tags.get(RECORD)
    return json.loads(value)["version"] if value else None


def test_a_commit_half_applied_when_the_controller_was_killed_is_finished_after_restart(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        controllers: list[ControllerProcess]) -> None:
    """kill -9 in the middle of a 20-model promotion; the restarted controller applies the
    rest (their lineage tags may already be written) and reports every entry Synced."""
    models = [f"half{i:02d}-{unique}" for i in range(20)]
    for model in models:
        make_model(mlflow_client, model, 2, {1: "Production"})
    bare, work = bare_remote(tmp_path, production(dict.fromkeys(models, 1)))
    first = start(controllers, tmp_path, bare.as_uri(), mlflow_server.uri, interval=0.5)
    wait_until(lambda: synced_at(first, git(work, "rev-parse", "HEAD")), message="first sync")
    assert first.terminate() == 0

    sha = push(work, production(dict.fromkeys(models, 2)), "promote all to v2")
    with CountingProxy(mlflow_server.uri) as slow:
        slow.write_delay = 0.05
        second = start(controllers, tmp_path, bare.as_uri(), slow.uri, interval=0.5)

        def promoted() -> int:
            return sum(stages_of(mlflow_client, m).get(2) == "Production" for m in models)
        wait_until(lambda: promoted() >= 4, timeout=60, every=0.05, message="some promoted")
        second.kill()  # SIGKILL: nothing after this point is written
    done = promoted()
    assert 4 <= done < len(models), "the kill must land in the middle of the commit"
    assert sum(recorded(mlflow_client, m) == 2 for m in models) <= done

    third = start(controllers, tmp_path, bare.as_uri(), mlflow_server.uri, interval=0.5)
    wait_until(lambda: synced_at(third, sha), timeout=60, message="the rest applied")
    assert all(stages_of(mlflow_client, m) == {1: "Archived", 2: "Production"} for m in models)
    assert all(recorded(mlflow_client, m) == 2 for m in models)
    assert third.terminate() == 0


def test_a_promotion_held_back_by_a_gate_is_applied_when_allowed_after_later_commits(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        controllers: list[ControllerProcess]) -> None:
    """A refused promotion stays a change across a later commit and a restart: once the
    version earns its tag, the restarted controller applies it."""
    gated, other = f"gated-{unique}", f"other-{unique}"
    make_model(mlflow_client, gated, 2, {1: "Production"})
    make_model(mlflow_client, other, 2, {1: "Production"})
    mlflow_client.set_model_version_tag(other, "2", "validation_status", "passed")
    gates = "promotion:\n  gates:\n    - tag: validation_status\n      equals: passed\n"
    bare, work = bare_remote(tmp_path, production({gated: 1, other: 1}, gates))
    first = start(controllers, tmp_path, bare.as_uri(), mlflow_server.uri, interval=0.5)
    wait_until(lambda: synced_at(first, git(work, "rev-parse", "HEAD")), message="first sync")

    push(work, production({gated: 2, other: 1}, gates), "promote the gated model")
    wait_until(lambda: any(r["model"] == gated and r["sync"] != "Synced"
                           and "validation_status" in (r.get("message") or "")
                           for r in first.status()["environments"]), message="refused")
    later = push(work, production({gated: 2, other: 2}, gates), "a later commit")
    wait_until(lambda: stages_of(mlflow_client, other).get(2) == "Production",
               message="the later commit applied")
    assert first.terminate() == 0
    assert stages_of(mlflow_client, gated) == {1: "Production", 2: "None"}
    assert recorded(mlflow_client, gated) == 1

    mlflow_client.set_model_version_tag(gated, "2", "validation_status", "passed")
    second = start(controllers, tmp_path, bare.as_uri(), mlflow_server.uri, interval=0.5)
    wait_until(lambda: synced_at(second, later), message="applied once allowed")
    assert stages_of(mlflow_client, gated) == {1: "Archived", 2: "Production"}
    assert second.terminate() == 0


def test_a_restart_while_the_registry_is_down_reverts_nothing(
        tmp_path: Path, unique: str, controllers: list[ControllerProcess]) -> None:
    """The controller starts while MLflow is down; once it answers, a manual change in a
    self_heal: false environment is reported as drift, pass after pass, never reverted."""
    from mlflow import MlflowClient

    server = MlflowServer(tmp_path / "mlflow-own").start()
    try:
        client = MlflowClient(server.uri, server.uri)
        model = f"down-{unique}"
        make_model(client, model, 2)
        bare, work = bare_remote(tmp_path, production({model: 1}))
        fast = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "2"}
        first = start(controllers, tmp_path, bare.as_uri(), server.uri, interval=0.5, env=fast)
        sha = git(work, "rev-parse", "HEAD")
        wait_until(lambda: synced_at(first, sha), message="first sync")
        assert first.terminate() == 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client.transition_model_version_stage(model, "2", "Production",
                                                  archive_existing_versions=True)

        server.stop()
        second = start(controllers, tmp_path, bare.as_uri(), server.uri, interval=0.5,
                       env=fast)
        wait_until(lambda: second.passes() >= 2, message="passes fail while MLflow is down")
        assert second.get("/readyz")[0] == 503
        server.start()
        passes = second.passes()
        wait_until(lambda: second.passes() >= passes + 3 and second.status()[
            "last_applied_commit"] == sha, timeout=60, message="three passes with MLflow up")
        time.sleep(0.5)
        assert stages_of(client, model) == {1: "Archived", 2: "Production"}
        row = next(r for r in second.status()["environments"] if r["model"] == model)
        assert row["sync"] == "OutOfSync"
        assert second.terminate() == 0
    finally:
        server.stop()
