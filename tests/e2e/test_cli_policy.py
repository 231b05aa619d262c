"""`plan` and `apply` with promotion gates, as processes, in a real git work tree whose
commits carry chosen dates: soak counts from the controller's recorded apply, never from a
commit date, and a rollback needs the record that the version served."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from tests.support.cli import run_cli
from tests.support.gitrepos import git, init_repo
from tests.support.registry_helpers import stages_of
from tests.support.runs import logged_version

HEADER = "apiVersion: mlflow-gitops/v1\nkind: Environment\n"
HOUR = 3600


def staging(models: dict[str, int]) -> str:
    return HEADER + "target:\n  stage: Staging\n" + _models(models)


def production(models: dict[str, int], min_soak: str | None = None, min_accuracy: float = 0.9
               ) -> str:
    soak = f"  min_soak: {min_soak}\n" if min_soak else ""
    return (HEADER + "target:\n  stage: Production\npromotion:\n  from: staging\n" + soak
            + f"  gates:\n    - metric: accuracy\n      min: {min_accuracy}\n" + _models(models))


def _models(models: dict[str, int]) -> str:
    if not models:
        return "models: {}\n"
    return "models:\n" + "".join(f"  {m}: {v}\n" for m, v in models.items())


def commit(repo: Path, files: dict[str, str], at: float, message: str) -> str:
    """Write `files` under environments/ and commit them with author and committer date `at`."""
    for name, text in files.items():
        (repo / "environments" / name).write_text(text)
    stamp = f"@{int(at)} +0000"
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message,
        env={"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp})
    return git(repo, "rev-parse", "HEAD")


#: A duration as the policy writes it ("45s", "1m", "1h2m"): a loaded machine may pass a minute.
DUR = r"(?:\d+[dhms])+"


def test_backdated_commits_do_not_soak_and_the_recorded_apply_does(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """Staging commits dated 30h ago count nothing: soak starts when `apply` put the version
    into staging; `plan` and `diff` (the pull-request comment) show that record in the gate
    table; a soak of a few seconds by the recorded time is then promoted."""
    a, b = f"soaked-{unique}", f"fresh-{unique}"
    for model in (a, b):
        logged_version(mlflow_client, model, {"accuracy": 0.95})
        logged_version(mlflow_client, model, {"accuracy": 0.96})
    repo = init_repo(tmp_path / "repo")
    (repo / "environments").mkdir()
    now = time.time()
    staged = commit(repo, {"staging.yaml": staging({a: 1, b: 1}),
                           "production.yaml": production({}, "24h")},
                    now - 30 * HOUR, "a and b v1 to staging, 30h ago")
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    folder = str(repo / "environments")
    assert run_cli("apply", folder, env=env).code == 0
    commit(repo, {"staging.yaml": staging({a: 2, b: 2}),
                  "production.yaml": production({a: 1, b: 1}, "24h")}, now - 29 * HOUR,
           "promote a and b v1, v2 to staging, 29h ago")

    planned = run_cli("plan", folder, "--output", "markdown", env=env)
    assert f"#### production: {a} v1" not in planned.out
    assert re.search(rf"production.yaml:12` {a} v1 not promoted: {DUR} in staging \(entered "
                     rf"staging \d{{4}}-\d\d-\d\d \d\d:\d\d UTC, applied by commit "
                     rf"{staged[:7]}, {DUR} ago\) < min_soak 1d", planned.out)
    assert re.search(rf"\| min_soak 1d \| ⏳ wait until [^|]* \| {DUR} in staging "
                     r"\(entered staging ", planned.out)
    assert "| from staging | ✅ pass | holds stage Staging now |" in planned.out
    # the pull-request comment gives the same verdict on the same registry
    reviewed = run_cli("diff", "HEAD~1", "HEAD", "--repo", str(repo), "--output", "markdown",
                       env=env)
    assert re.search(rf"{a} v1 not promoted: {DUR} in staging \(entered staging .*applied by "
                     rf"commit {staged[:7]}, {DUR} ago\) < min_soak 1d", reviewed.out)
    applied = run_cli("apply", folder, env=env)  # a soak still running is no error: exit 0
    assert applied.code == 0 and "error" not in applied.err
    assert re.search(rf"  waiting .*{b} v1 not promoted: {DUR} in staging .* — until "
                     r"\d{4}-\d\d-\d\d \d\d:\d\d UTC\n", applied.out)
    assert "Traceback" not in applied.err
    assert stages_of(mlflow_client, a) == {1: "Staging", 2: "Staging"}

    commit(repo, {"production.yaml": production({a: 1, b: 1}, "2s")}, now - 28 * HOUR,
           "min_soak 2s")
    time.sleep(2.2)
    assert run_cli("apply", folder, env=env).code == 0
    assert stages_of(mlflow_client, a) == stages_of(mlflow_client, b) == {
        1: "Production", 2: "Staging"}


def test_rollback_needs_the_record_that_the_version_served(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """Production served v1, then v2; a stricter gate arrives with the revert to v1, which
    fails it: the controller's record that v1 served in production (not the git history,
    not the lineage tag) lets the rollback through; without the record it is refused."""
    name = f"revert-{unique}"
    for accuracy in (0.91, 0.97, 0.97):
        logged_version(mlflow_client, name, {"accuracy": accuracy})
    repo = init_repo(tmp_path / "repo")
    (repo / "environments").mkdir()
    now = time.time()
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    folder = str(repo / "environments")
    commit(repo, {"staging.yaml": staging({name: 1}), "production.yaml": production({})},
           now - 50 * HOUR, "v1 to staging")
    assert run_cli("apply", folder, env=env).code == 0
    commit(repo, {"staging.yaml": staging({name: 2}), "production.yaml": production({name: 1})},
           now - 48 * HOUR, "v1 to production")
    assert run_cli("apply", folder, env=env).code == 0
    assert run_cli("apply", folder, env=env).code == 0  # v2 was new to staging: next pass
    commit(repo, {"staging.yaml": staging({name: 3}), "production.yaml": production({name: 2})},
           now - 24 * HOUR, "v2 to production")
    assert run_cli("apply", folder, env=env).code == 0
    assert run_cli("apply", folder, env=env).code == 0
    assert stages_of(mlflow_client, name) == {1: "Archived", 2: "Production", 3: "Staging"}
    commit(repo, {"production.yaml": production({name: 1}, min_accuracy=0.95)}, now - 60,
           "revert to v1 (and a stricter gate)")
    record = mlflow_client.get_model_version(name, "1").tags["gitops.applied.production"]
    mlflow_client.delete_model_version_tag(name, "1", "gitops.applied.production")
    assert "gitops.env.production" in mlflow_client.get_model_version(name, "1").tags
    refused = run_cli("plan", folder, env=env)
    assert refused.code == 1 and "accuracy 0.91 < min 0.95" in refused.err  # errors: stderr
    mlflow_client.set_model_version_tag(name, "1", "gitops.applied.production", record)

    planned = run_cli("plan", folder, env=env)
    assert planned.code == 0, planned.err
    assert "note: rollback to v1, served in production before (applied by commit" \
        in planned.out
    assert run_cli("apply", folder, env=env).code == 0
    assert stages_of(mlflow_client, name) == {1: "Production", 2: "Archived", 3: "Staging"}


def test_a_version_never_in_staging_is_refused_by_plan_and_apply(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """Outside git, a version staging neither holds nor lists is refused with the reason."""
    name = f"skip-{unique}"
    for _ in range(2):
        logged_version(mlflow_client, name, {"accuracy": 0.99})
    folder = tmp_path / "environments"
    folder.mkdir()
    (folder / "staging.yaml").write_text(staging({name: 1}))
    (folder / "production.yaml").write_text(production({name: 2}))
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    planned = run_cli("plan", str(folder), env=env)
    assert planned.code == 1
    assert f"production.yaml:11: {name} v2 not promoted: never in staging" in planned.err
    assert "gate FAIL  from staging: never there (required in staging (stage Staging))" \
        in planned.err
    assert run_cli("apply", str(folder), env=env).code == 1
    assert stages_of(mlflow_client, name) == {1: "Staging", 2: "None"}


def test_a_running_soak_is_waiting_in_plan_diff_and_promote_never_an_error(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """A soak still running reads as Waiting with the time it expects to proceed in promote,
    plan and diff: never 'Errors' or FAIL, exit 0 (2 with --detailed-exitcode when another
    change is pending), never 1."""
    a, b = f"soaking-{unique}", f"other-{unique}"
    logged_version(mlflow_client, a, {"accuracy": 0.95})
    logged_version(mlflow_client, b, {"accuracy": 0.95})
    repo = init_repo(tmp_path / "repo")
    (repo / "environments").mkdir()
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    folder = str(repo / "environments")
    commit(repo, {"staging.yaml": staging({a: 1}), "production.yaml": production({}, "1h")},
           time.time(), "a v1 to staging")
    assert run_cli("apply", folder, env=env).code == 0
    until = r"until \d{4}-\d\d-\d\d \d\d:\d\d UTC"

    promoted = run_cli("promote", a, "1", "--env", "production", folder, env=env)
    assert promoted.code == 0, promoted.err
    assert re.search(rf"  waiting .*{a} v1 not promoted: {DUR} in staging .*< min_soak 1h "
                     rf"— {until}\n", promoted.out), promoted.out
    assert re.search(rf"gate wait  min_soak 1h: .* — {until}", promoted.out)
    assert "Errors" not in promoted.out and "FAIL" not in promoted.out + promoted.err
    assert re.search(rf"No changes to apply\. 1 waiting \({until}\)\.", promoted.out)

    commit(repo, {"staging.yaml": staging({b: 1}), "production.yaml":
                  production({a: 1}, "1h")}, time.time(), "a v1 to production, b to staging")
    planned = run_cli("plan", folder, "--detailed-exitcode", env=env)
    assert planned.code == 2, planned.err  # b's change is pending; a only waits
    assert "error" not in planned.err and "FAIL" not in planned.out
    assert re.search(rf"  waiting .*production.yaml:\d+: {a} v1 .* — {until}", planned.out)
    assert run_cli("plan", folder, env=env).code == 0
    status = run_cli("status", folder, env=env)
    assert status.code == 0, status.err
    assert re.search(rf"  production/{a}: .* — {until}\n", status.out), status.out
    # promoted onward, still live in staging: moving there, not 'live but not listed'
    assert re.search(rf"staging +stage Staging +{a} +- +v1 +Waiting", status.out)
    assert re.search(rf"  staging/{a}: v1 stays in staging until production takes it "
                     rf"\(moving to production; production is Waiting: .*\) — {until}",
                     status.out), status.out
    reviewed = run_cli("diff", "HEAD~1", "HEAD", "--repo", str(repo), "--detailed-exitcode",
                       env=env)
    assert reviewed.code == 2, reviewed.err
    assert re.search(rf"  waiting .*{a} v1 .* — {until}", reviewed.out)
    markdown = run_cli("diff", "HEAD~1", "HEAD", "--repo", str(repo), "-o", "markdown", env=env)
    assert markdown.code == 0 and "❌" not in markdown.out
    assert re.search(rf":hourglass: \*\*Waiting\*\* \({until}\)", markdown.out)


def test_promote_shows_its_own_change_and_not_the_problems_others_already_have(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """Production already refuses another model; promoting this one shows what this change
    does and only the problems it introduces (as diff does), not the other model's."""
    a, other = f"mine-{unique}", f"theirs-{unique}"
    logged_version(mlflow_client, a, {"accuracy": 0.95})
    logged_version(mlflow_client, other, {"accuracy": 0.95})
    repo = init_repo(tmp_path / "repo")
    (repo / "environments").mkdir()
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    folder = str(repo / "environments")
    commit(repo, {"staging.yaml": staging({a: 1}), "production.yaml": production({other: 1})},
           time.time(), "a v1 to staging; other straight to production (refused)")
    assert run_cli("apply", folder, env=env).code == 1  # other: never in staging
    promoted = run_cli("promote", a, "1", "--env", "production", folder, env=env)
    assert promoted.code == 0, promoted.err
    assert f"{a} v1: Staging → Production" in promoted.out
    assert other not in promoted.out + promoted.err
