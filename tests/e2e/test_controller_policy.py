"""The promotion policy against an adversarial pull request author, with the
controller as a process, a real MLflow server and a bare git remote. Each known bypass
is refused with a reason that names the missing evidence, and the honest path
(applied to staging, soaked by the controller's recorded time, then promoted) goes through."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from tests.support.controller_proc import ControllerProcess, wait_until
from tests.support.envfiles import HEADER
from tests.support.gitrepos import bare_remote, commit_all, git, write_files
from tests.support.registry_helpers import stages_of
from tests.support.runs import logged_version

DAY = 86400


def env_file(target: str, models: dict[str, int], promotion: str = "") -> str:
    """An environment file: `target` is its YAML (e.g. 'stage: Staging'), `promotion` the
    body of its promotion block, if any."""
    block = f"promotion:\n{promotion}" if promotion else ""
    listed = "models:\n" + "".join(f"  {m}: {v}\n" for m, v in models.items()) if models \
        else "models: {}\n"
    return HEADER + f"target:\n  {target}\n" + block + listed


def push(work: Path, files: dict[str, str], message: str, env: dict[str, str] | None = None
         ) -> str:
    """Commit `files` on main (with `env`, e.g. a backdated GIT_COMMITTER_DATE) and push."""
    write_files(work, files)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", message, env=env)
    git(work, "push", "-q", "origin", "HEAD:main")
    return git(work, "rev-parse", "HEAD")


def backdated(days: float) -> dict[str, str]:
    stamp = f"@{int(time.time() - days * DAY)} +0000"
    return {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}


def row(proc: ControllerProcess, environment: str, model: str) -> dict[str, Any]:
    rows = proc.status()["environments"]
    return next(r for r in rows if r["environment"] == environment and r["model"] == model)


def settled_at(proc: ControllerProcess, sha: str, passes: int = 2) -> None:
    """Wait until the controller has made `passes` passes over commit `sha`."""
    wait_until(lambda: proc.status()["last_seen_commit"] == sha, message=f"commit {sha[:7]}")
    start = proc.passes()
    wait_until(lambda: proc.passes() >= start + passes, message=f"{passes} passes")


def record(client: Any, model: str, version: int, environment: str) -> dict[str, Any] | None:
    raw = client.get_model_version(model, str(version)).tags.get(f"gitops.applied.{environment}")
    return json.loads(raw) if raw is not None else None


def start(controllers: list[ControllerProcess], tmp_path: Path, bare: Path, uri: str
          ) -> ControllerProcess:
    proc = ControllerProcess(tmp_path, f"file://{bare}", uri, interval=0.5)
    controllers.append(proc)
    return proc.start()


STAGING = "environments/staging.yaml"
PRODUCTION = "environments/production.yaml"


def test_a_backdated_staging_commit_does_not_soak(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        controllers: list[ControllerProcess]) -> None:
    """A staging commit dated three days ago, then a promotion with min_soak 24h: the version
    entered staging when the controller applied it, seconds ago, so production waits, with
    the record (entry time and commit) in the reason and the time it expects to proceed."""
    model = f"backdated-{unique}"
    logged_version(mlflow_client, model, {"accuracy": 0.95})
    soak = "  from: staging\n  min_soak: 24h\n"
    bare, work = bare_remote(tmp_path, {
        STAGING: env_file("stage: Staging", {}),
        PRODUCTION: env_file("alias: champion", {}, soak)})
    proc = start(controllers, tmp_path, bare, mlflow_server.uri)
    staged = push(work, {STAGING: env_file("stage: Staging", {model: 1})},
                  "stage v1 (dated three days ago)", backdated(3))
    wait_until(lambda: stages_of(mlflow_client, model) == {1: "Staging"}, message="staged")
    sha = push(work, {PRODUCTION: env_file("alias: champion", {model: 1}, soak)},
               "promote v1 (also dated three days ago)", backdated(3))
    settled_at(proc, sha)

    assert mlflow_client.get_registered_model(model).aliases == {}
    entered = record(mlflow_client, model, 1, "staging")
    assert entered is not None and entered["commit"] == staged
    assert time.time() - entered["at"] < 120  # the controller's clock, not the commit's
    status = row(proc, "production", model)
    assert status["sync"] == "Waiting"
    assert f"applied by commit {staged[:7]}" in status["message"]
    assert "in staging (entered staging " in status["message"]
    assert "< min_soak 1d" in status["message"]
    assert status["until"] == pytest.approx(entered["at"] + DAY, abs=1)
    assert proc.terminate() == 0


def test_an_upstream_assignment_reverted_in_the_same_push_is_no_evidence(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        controllers: list[ControllerProcess]) -> None:
    """Staging → v2, its revert and production → v2 reach the remote in one push: v2 never
    entered staging, so production refuses it, naming the missing record."""
    model = f"raced-{unique}"
    for _ in range(2):
        logged_version(mlflow_client, model, {"accuracy": 0.95})
    policy = "  from: staging\n"
    bare, work = bare_remote(tmp_path, {
        STAGING: env_file("stage: Staging", {model: 1}),
        PRODUCTION: env_file("alias: champion", {}, policy)})
    proc = start(controllers, tmp_path, bare, mlflow_server.uri)
    wait_until(lambda: stages_of(mlflow_client, model)[1] == "Staging", message="v1 staged")

    write_files(work, {STAGING: env_file("stage: Staging", {model: 2})})
    commit_all(work, "stage v2")
    git(work, "revert", "--no-edit", "HEAD")
    write_files(work, {PRODUCTION: env_file("alias: champion", {model: 2}, policy)})
    sha = commit_all(work, "promote v2")
    git(work, "push", "-q", "origin", "HEAD:main")
    settled_at(proc, sha)

    assert mlflow_client.get_registered_model(model).aliases == {}
    assert stages_of(mlflow_client, model) == {1: "Staging", 2: "None"}
    assert record(mlflow_client, model, 2, "staging") is None
    status = row(proc, "production", model)
    assert status["sync"] == "Refused"
    assert f"{model} v2 not promoted: never in staging" in status["message"]
    assert "no gitops.applied.staging record" in status["message"]
    assert proc.terminate() == 0


def test_one_commit_listing_the_version_upstream_and_downstream_is_refused_with_upstream(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        controllers: list[ControllerProcess]) -> None:
    """One commit lists v1 in qa and in preprod (from: qa) while qa's gate refuses it:
    preprod refuses it too, saying qa refuses it and why; neither alias is set."""
    model = f"sidestep-{unique}"
    logged_version(mlflow_client, model, {"accuracy": 0.5})
    gate = "  gates:\n    - metric: accuracy\n      min: 0.9\n"
    bare, work = bare_remote(tmp_path, {
        "environments/qa.yaml": env_file("alias: qa", {}, gate),
        "environments/preprod.yaml": env_file("alias: preprod", {}, "  from: qa\n")})
    proc = start(controllers, tmp_path, bare, mlflow_server.uri)
    sha = push(work, {"environments/qa.yaml": env_file("alias: qa", {model: 1}, gate),
                      "environments/preprod.yaml": env_file("alias: preprod", {model: 1},
                                                            "  from: qa\n")},
               "v1 to qa and preprod at once")
    settled_at(proc, sha, passes=3)

    assert mlflow_client.get_registered_model(model).aliases == {}
    qa, preprod = row(proc, "qa", model), row(proc, "preprod", model)
    assert qa["sync"] == "Refused" and "accuracy 0.5 < min 0.9" in qa["message"]
    assert preprod["sync"] == "Refused"
    assert "not in qa: assigned there in this change, but qa refuses it (" in \
        preprod["message"]
    assert "accuracy 0.5 < min 0.9" in preprod["message"]
    assert proc.terminate() == 0


def test_a_hand_placed_version_archived_by_self_heal_gets_no_rollback_exemption(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        controllers: list[ControllerProcess]) -> None:
    """v2 (accuracy 0.5) is moved into Production by hand and archived by self-heal, which
    writes its lineage tag; assign → revert → assign then still refuses it on the gate:
    no record says it ever served in production through an accepted change."""
    model = f"forged-{unique}"
    logged_version(mlflow_client, model, {"accuracy": 0.95})
    logged_version(mlflow_client, model, {"accuracy": 0.5})
    policy = "  from: staging\n  gates:\n    - metric: accuracy\n      min: 0.9\n"
    bare, work = bare_remote(tmp_path, {
        STAGING: env_file("stage: Staging", {model: 1}),
        PRODUCTION: env_file("stage: Production", {}, policy)})
    proc = start(controllers, tmp_path, bare, mlflow_server.uri)
    wait_until(lambda: stages_of(mlflow_client, model)[1] == "Staging", message="v1 staged")
    push(work, {STAGING: env_file("stage: Staging", {}),
                PRODUCTION: env_file("stage: Production", {model: 1}, policy)}, "promote v1")
    wait_until(lambda: stages_of(mlflow_client, model)[1] == "Production", message="v1 serves")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow_client.transition_model_version_stage(model, "2", "Production")
    wait_until(lambda: stages_of(mlflow_client, model) == {1: "Production", 2: "Archived"},
               message="self-heal archived the hand-placed v2")
    tags = mlflow_client.get_model_version(model, "2").tags
    assert "gitops.env.production" in tags and "gitops.applied.production" not in tags

    assign = {PRODUCTION: env_file("stage: Production", {model: 2}, policy)}
    push(work, assign, "promote v2")
    git(work, "revert", "--no-edit", "HEAD")
    git(work, "push", "-q", "origin", "HEAD:main")
    sha = push(work, assign, "promote v2 again")
    settled_at(proc, sha)

    assert stages_of(mlflow_client, model) == {1: "Production", 2: "Archived"}
    status = row(proc, "production", model)
    assert status["sync"] == "Refused"
    assert "accuracy 0.5 < min 0.9" in status["message"]
    assert "never in staging" in status["message"]
    assert "rollback" not in proc.logs()
    assert proc.terminate() == 0


def test_the_honest_path_soaks_by_the_recorded_time_and_is_promoted(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        controllers: list[ControllerProcess]) -> None:
    """A version the controller applied to staging waits out min_soak 3s (Waiting, with
    when), then is promoted without another commit; the records show at least 3s between
    entering staging and entering production."""
    model = f"honest-{unique}"
    logged_version(mlflow_client, model, {"accuracy": 0.95})
    policy = "  from: staging\n  min_soak: 3s\n  gates:\n    - metric: accuracy\n      min: 0.9\n"
    bare, work = bare_remote(tmp_path, {
        STAGING: env_file("stage: Staging", {model: 1}),
        PRODUCTION: env_file("alias: champion", {}, policy)})
    proc = start(controllers, tmp_path, bare, mlflow_server.uri)
    wait_until(lambda: stages_of(mlflow_client, model) == {1: "Staging"}, message="staged")
    push(work, {PRODUCTION: env_file("alias: champion", {model: 1}, policy)}, "promote v1")
    wait_until(lambda: mlflow_client.get_registered_model(model).aliases == {"champion": "1"},
               timeout=30, message="v1 promoted after its soak")

    staged = record(mlflow_client, model, 1, "staging")
    served = record(mlflow_client, model, 1, "production")
    assert staged is not None and served is not None
    assert served["at"] - staged["at"] >= 3
    wait_until(lambda: row(proc, "production", model)["sync"] == "Synced", message="synced")
    assert proc.terminate() == 0
