"""Day-two controls against the controller as a process, a real MLflow server and a bare git
remote: a hold keeps self-heal off one model in
one environment, a rejected version is refused even as a rollback, and a freeze window makes
a promotion wait while a rollback goes through."""

from __future__ import annotations

import json
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlflow_gitops.policy.windows import when

from tests.support.cli import run_cli
from tests.support.controller_proc import ControllerProcess, start, wait_until
from tests.support.envfiles import HEADER, env_files
from tests.support.gitrepos import bare_remote, git, merge_branch
from tests.support.registry_helpers import make_model, stages_of


def row(proc: ControllerProcess, environment: str, model: str) -> dict[str, Any]:
    """The /status row of one environment and model."""
    return next(r for r in proc.status()["environments"]
                if r["environment"] == environment and r["model"] == model)


def by_hand(client: Any, model: str, version: int, stage: str) -> None:
    """A change made in the MLflow UI: the version moves to `stage`, and whatever held that
    stage before is archived."""
    before = [v for v, s in stages_of(client, model).items() if s == stage and v != version]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client.transition_model_version_stage(model, str(version), stage)
        for old in before:
            client.transition_model_version_stage(model, str(old), "Archived")


def test_hold_stops_self_heal_for_that_model_and_environment_only(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        controllers: list[ControllerProcess]) -> None:  # noqa: F811
    """While production holds `a`, a manual fix of `a` in production survives several passes
    (shown Held with who and why), while the same drift of `b`, and of `a` in staging, is
    healed; after release, `a` converges back to git."""
    a, b = f"held-{unique}", f"free-{unique}"
    for model in (a, b):
        make_model(mlflow_client, model, 3)
    files = {
        "environments/production.yaml":
            HEADER + f"target:\n  stage: Production\nmodels:\n  {a}: 1\n  {b}: 1\n",
        "environments/staging.yaml":
            HEADER + f"target:\n  stage: Staging\nmodels:\n  {a}: 2\n  {b}: 2\n"}
    bare, work = bare_remote(tmp_path, files)
    proc = start(controllers, tmp_path, f"file://{bare}", mlflow_server.uri, interval=1)
    converged = {1: "Production", 2: "Staging", 3: "None"}
    wait_until(lambda: stages_of(mlflow_client, a) == converged
               and stages_of(mlflow_client, b) == converged, timeout=30, message="first sync")

    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    held = run_cli("hold", a, str(work / "environments"), "--env", "production", "--reason",
                   "INC-42: v1 misbehaves, v3 put back by hand", "--by", "oncall", env=env)
    assert held.code == 0, held.err
    wait_until(lambda: row(proc, "production", a)["sync"] == "Held", message="Held shown")
    by_hand(mlflow_client, a, 3, "Production")  # the on-call fix, in the MLflow UI
    by_hand(mlflow_client, b, 3, "Production")  # the same drift on a model nobody held
    by_hand(mlflow_client, a, 2, "None")  # and drift of `a` in staging, which is not held
    passes = proc.passes()
    wait_until(lambda: proc.passes() >= passes + 3, timeout=30, message="three passes")
    assert stages_of(mlflow_client, a) == {1: "Archived", 2: "Staging", 3: "Production"}
    assert stages_of(mlflow_client, b) == {1: "Production", 2: "Staging", 3: "Archived"}
    status = row(proc, "production", a)
    assert status["sync"] == "Held" and "by oncall at " in status["message"]
    assert "INC-42: v1 misbehaves" in status["message"]
    assert row(proc, "staging", a)["sync"] == "Synced"
    assert row(proc, "production", b)["sync"] == "Synced"

    released = run_cli("release", a, str(work / "environments"), "--env", "production",
                       env=env)
    assert released.code == 0, released.err
    wait_until(lambda: stages_of(mlflow_client, a) == {1: "Production", 2: "Staging",
                                                        3: "Archived"},
               timeout=30, message="converged after release")
    wait_until(lambda: row(proc, "production", a)["sync"] == "Synced", message="Synced")
    assert proc.terminate() == 0


def test_rejected_version_is_refused_by_the_controller_even_as_a_rollback(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        controllers: list[ControllerProcess]) -> None:  # noqa: F811
    """v1 served production, v3 replaced it, v1 is rejected: reverting to v1 is Refused with
    the reason and production keeps v3 over several passes."""
    model = f"rej-{unique}"
    make_model(mlflow_client, model, 3)
    bare, work = bare_remote(tmp_path, env_files(model, production=1, staging=2))
    proc = start(controllers, tmp_path, f"file://{bare}", mlflow_server.uri, interval=1)
    wait_until(lambda: stages_of(mlflow_client, model) == {1: "Production", 2: "Staging",
                                                            3: "None"}, timeout=30,
               message="first sync")
    merge_branch(work, "promote-v3", env_files(model, 3, 2), f"Promote {model} v3")
    wait_until(lambda: stages_of(mlflow_client, model)[3] == "Production", timeout=30,
               message="v3 promoted")
    rejected = run_cli("reject", model, "--version", "1", "--reason", "leaks PII", "--by",
                       "sec-team", env={"MLFLOW_TRACKING_URI": mlflow_server.uri})
    assert rejected.code == 0, rejected.err

    git(work, "revert", "--no-edit", "-m", "1", "HEAD")  # the rollback to v1
    git(work, "push", "-q", "origin", "main")
    wait_until(lambda: row(proc, "production", model)["sync"] == "Refused", timeout=30,
               message="rollback refused")
    status = row(proc, "production", model)
    assert f"{model} v1 is rejected by sec-team at " in status["message"]
    assert "leaks PII" in status["message"] and status["desired"] == 1
    passes = proc.passes()
    wait_until(lambda: proc.passes() >= passes + 2, timeout=30, message="two passes")
    assert stages_of(mlflow_client, model) == {1: "Archived", 2: "Staging", 3: "Production"}
    assert proc.terminate() == 0


def test_deny_window_makes_a_promotion_wait_and_lets_a_rollback_through(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        controllers: list[ControllerProcess]) -> None:  # noqa: F811
    """Inside a deny window that started this minute, promoting v4 is Waiting until the
    window's end (shown with the opening time, in plan too), nothing is written; a rollback
    to v1, which production served before, goes through during the freeze."""
    model = f"win-{unique}"
    make_model(mlflow_client, model, 4)
    bare, work = bare_remote(tmp_path, env_files(model, production=1, staging=2))
    proc = start(controllers, tmp_path, f"file://{bare}", mlflow_server.uri, interval=1)
    wait_until(lambda: stages_of(mlflow_client, model)[1] == "Production", timeout=30,
               message="first sync")
    merge_branch(work, "promote-v2", env_files(model, 2, 3), f"Promote {model} v2")
    wait_until(lambda: stages_of(mlflow_client, model) == {1: "Archived", 2: "Production",
                                                            3: "Staging", 4: "None"},
               timeout=30, message="v2 promoted")

    start_of_minute = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    opens = start_of_minute.timestamp() + 2 * 3600

    def frozen(version: int) -> dict[str, str]:
        files = env_files(model, version, 3)
        files["environments/production.yaml"] = files["environments/production.yaml"].replace(
            "models:", "promotion:\n  windows:\n"
            f"    - deny: \"{start_of_minute.minute} {start_of_minute.hour} * * *\"\n"
            "      duration: 2h\nmodels:")
        return files

    merge_branch(work, "promote-v4", frozen(4), f"Promote {model} v4 during the freeze")
    wait_until(lambda: row(proc, "production", model)["sync"] == "Waiting", timeout=30,
               message="promotion waiting")
    status = row(proc, "production", model)
    assert status["until"] == opens
    assert f"the window opens {when(opens)}" in status["message"]
    assert stages_of(mlflow_client, model) == {1: "Archived", 2: "Production", 3: "Staging",
                                               4: "None"}
    planned = run_cli("plan", str(work / "environments"), "--output", "json",
                      env={"MLFLOW_TRACKING_URI": mlflow_server.uri})
    assert not [e for e in json.loads(planned.out)["errors"]
                if e["environment"] == "production"]
    [error] = [e for e in json.loads(planned.out)["waiting"]
               if e["environment"] == "production"]
    assert error["kind"] == "waiting" and error["until"] == opens

    merge_branch(work, "rollback-v1", frozen(1), f"Roll {model} back to v1")
    wait_until(lambda: stages_of(mlflow_client, model) == {1: "Production", 2: "Archived",
                                                            3: "Staging", 4: "None"},
               timeout=30, message="rollback applied during the freeze")
    wait_until(lambda: row(proc, "production", model)["sync"] == "Synced", message="Synced")
    assert proc.terminate() == 0
