"""`hold`, `release` and `reject` as processes against the real MLflow server, and how
`plan`, `apply` and `status` honour them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlflow_gitops.core.tags import REJECTED as REJECTED_TAG
from mlflow_gitops.core.tags import hold_tag

from tests.e2e.test_cli_apply import stage_env
from tests.support.cli import run_cli
from tests.support.registry_helpers import make_model, stages_of


def test_hold_stops_apply_for_that_environment_and_release_lets_it_converge(
        mlflow_server: Any, mlflow_client: Any, envs_dir: Path, unique: str) -> None:
    """A held model is not touched by apply (exit 0, shown Held with who and why) while the
    other model converges; after release, apply converges it."""
    held, other = f"held-{unique}", f"other-{unique}"
    make_model(mlflow_client, held, 2, {1: "Production"})
    make_model(mlflow_client, other, 2, {1: "Production"})
    stage_env(envs_dir, "production", "Production", {held: 2, other: 2})
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    hold = run_cli("hold", held, str(envs_dir), "--env", "production", "--reason",
                   "bad latency", "--by", "ann", env=env)
    assert hold.code == 0, hold.err
    assert f"{held} held in production by ann at " in hold.out
    tag = json.loads(mlflow_client.get_registered_model(held).tags[hold_tag("production")])
    assert (tag["by"], tag["reason"]) == ("ann", "bad latency") and tag["at"].endswith("Z")

    planned = run_cli("plan", str(envs_dir), env=env)
    assert f"{held} is held in production by ann at " in planned.out + planned.err
    applied = run_cli("apply", str(envs_dir), env=env)
    assert stages_of(mlflow_client, held) == {1: "Production", 2: "None"}
    assert stages_of(mlflow_client, other) == {1: "Archived", 2: "Production"}
    status = run_cli("status", str(envs_dir), "--output", "json", env=env)
    [row] = [r for r in json.loads(status.out)["environments"] if r["model"] == held]
    assert "bad latency" in row["message"], applied.out

    again = run_cli("hold", held, "--env", "production", "--reason", "other", "--path",
                    str(envs_dir), env=env)
    assert again.code == 0 and "already held in production by ann" in again.out
    released = run_cli("release", held, str(envs_dir), "--env", "production", env=env)
    assert released.code == 0 and f"{held} released in production" in released.out
    assert run_cli("apply", str(envs_dir), env=env).code == 0
    assert stages_of(mlflow_client, held) == {1: "Archived", 2: "Production"}
    twice = run_cli("release", held, str(envs_dir), "--env", "production", env=env)
    assert twice.code == 0 and "is not held in production; nothing changed" in twice.out


def test_hold_of_unknown_environment_or_model_is_one_line_error(
        mlflow_server: Any, mlflow_client: Any, envs_dir: Path, unique: str) -> None:
    """Holding an unknown environment, an unlisted model or a model the registry lacks fails
    with one line and writes nothing."""
    name = f"known-{unique}"
    make_model(mlflow_client, name, 1)
    stage_env(envs_dir, "production", "Production", {name: 1, f"ghost-{unique}": 1})
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    base = ("--reason", "x", "--path", str(envs_dir))
    unknown_env = run_cli("hold", name, "--env", "prod", *base, env=env)
    assert unknown_env.code == 1
    assert unknown_env.err.strip().splitlines() == [
        "mlflow-gitops: error: environment 'prod' does not exist in "
        f"{envs_dir} (known: production)"]
    unlisted = run_cli("hold", "nope", "--env", "production", *base, env=env)
    assert unlisted.code == 1 and "model 'nope' is not listed in environment" in unlisted.err
    ghost = run_cli("hold", f"ghost-{unique}", "--env", "production", *base, env=env)
    assert ghost.code == 1 and "does not exist in registry 'default'" in ghost.err
    assert "Traceback" not in unknown_env.err + unlisted.err + ghost.err
    assert hold_tag("production") not in mlflow_client.get_registered_model(name).tags


def test_rejected_version_is_refused_by_plan_and_apply_even_as_a_rollback(
        mlflow_server: Any, mlflow_client: Any, envs_dir: Path, unique: str) -> None:
    """After v1 served production and v2 replaced it, rejecting v1 refuses the rollback to it
    in plan and apply (exit 1, with the reason); --undo lets the rollback through."""
    name = f"rej-{unique}"
    make_model(mlflow_client, name, 2)
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    stage_env(envs_dir, "production", "Production", {name: 1})
    assert run_cli("apply", str(envs_dir), env=env).code == 0
    stage_env(envs_dir, "production", "Production", {name: 2})
    assert run_cli("apply", str(envs_dir), env=env).code == 0
    rejected = run_cli("reject", name, "--version", "1", "--reason", "leaks PII", "--by",
                       "bob", env=env)
    assert rejected.code == 0, rejected.err
    assert f"{name} v1 rejected by bob at " in rejected.out
    assert "leaks PII" in mlflow_client.get_model_version(name, "1").tags[REJECTED_TAG]

    stage_env(envs_dir, "production", "Production", {name: 1})  # the rollback
    planned = run_cli("plan", str(envs_dir), "--output", "json", env=env)
    [error] = json.loads(planned.out)["errors"]
    assert error["kind"] == "gate" and "is rejected by bob" in error["message"]
    assert json.loads(planned.out)["changes"] == []
    applied = run_cli("apply", str(envs_dir), env=env)
    assert applied.code == 1
    assert f"production.yaml:6: {name} v1 is rejected by bob" in applied.out + applied.err
    assert stages_of(mlflow_client, name) == {1: "Archived", 2: "Production"}

    undo = run_cli("reject", name, "--version", "1", "--undo", env=env)
    assert undo.code == 0 and "is no longer rejected" in undo.out
    assert run_cli("apply", str(envs_dir), env=env).code == 0
    assert stages_of(mlflow_client, name) == {1: "Production", 2: "Archived"}
    missing = run_cli("reject", name, "--version", "9", "--reason", "x", env=env)
    assert missing.code == 1
    assert missing.err.strip() == \
        f"mlflow-gitops: error: {name} v9 does not exist in registry 'default'"


def test_a_renamed_file_leaves_its_hold_behind_and_plan_says_so(
        mlflow_server: Any, mlflow_client: Any, envs_dir: Path, unique: str) -> None:
    """prod.yaml held, then renamed to production.yaml: plan (text and markdown) warns that
    the hold on 'prod' no longer applies; `release --env prod --registry default` lifts it and
    the warning goes; releasing a name no file defines and no hold has stays an error."""
    name = f"renamed-{unique}"
    make_model(mlflow_client, name, 1, {1: "Production"})
    stage_env(envs_dir, "prod", "Production", {name: 1})
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    assert run_cli("hold", name, str(envs_dir), "--env", "prod", "--reason", "INC-7",
                   env=env).code == 0
    (envs_dir / "prod.yaml").rename(envs_dir / "production.yaml")
    planned = run_cli("plan", str(envs_dir), env=env)
    warning = (f"hold on {name} for 'prod' no longer applies: no environment file named "
               "prod.yaml — release it")
    assert planned.code == 0 and f"warning: {warning}" in planned.out, planned.out
    markdown = run_cli("plan", str(envs_dir), "--output", "markdown", env=env)
    assert f"- ⚠️ {warning}" in markdown.out

    released = run_cli("release", name, str(envs_dir), "--env", "prod", "--registry",
                       "default", env=env)
    assert released.code == 0 and f"{name} released in prod" in released.out
    assert hold_tag("prod") not in mlflow_client.get_registered_model(name).tags
    assert "no longer applies" not in run_cli("plan", str(envs_dir), env=env).out
    typo = run_cli("release", name, str(envs_dir), "--env", "prdo", env=env)
    assert typo.code != 0 and "environment 'prdo' does not exist" in typo.err
