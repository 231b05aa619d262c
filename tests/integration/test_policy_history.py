"""The policy's history providers over real git repositories: the local work tree (plan,
apply, diff) and the controller's GitSource (run), with commit dates set by the test."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mlflow_gitops.adapters.git.source import GitSource
from mlflow_gitops.cli.policies import gitsource_history, local_history
from mlflow_gitops.policy.rules import Assignment

from tests.support.gitrepos import bare_remote, git, init_repo, write_files
from tests.support.runs import logged_version

STAGING = "environments/staging.yaml"
HOUR = 3600


def staging(version: int) -> str:
    return ("apiVersion: mlflow-gitops/v1\nkind: Environment\ntarget:\n  stage: Staging\n"
            f"models:\n  fraud: {version}\n  churn: 1\n")


def commit(repo: Path, text: str | None, at: float, message: str) -> str:
    path = repo / STAGING
    path.parent.mkdir(parents=True, exist_ok=True)
    if text is None:
        path.unlink()
    else:
        path.write_text(text)
    stamp = {"GIT_AUTHOR_DATE": f"@{int(at)} +0000", "GIT_COMMITTER_DATE": f"@{int(at)} +0000"}
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message, env=stamp)
    return git(repo, "rev-parse", "HEAD")


def test_local_history_counts_a_merged_branch_from_its_merge(tmp_path: Path) -> None:
    """A change written on a branch two days ago and merged an hour ago is dated by the merge
    (first parent): soak starts when main got it."""
    repo = init_repo(tmp_path / "repo")
    now = time.time()
    first = commit(repo, staging(1), now - 72 * HOUR, "fraud v1")
    git(repo, "checkout", "-q", "-b", "promote")
    commit(repo, staging(2), now - 48 * HOUR, "fraud v2")
    git(repo, "checkout", "-q", "main")
    stamp = f"@{int(now - HOUR)} +0000"
    git(repo, "merge", "-q", "--no-ff", "-m", "merge promote", "promote",
        env={"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp})
    merge = git(repo, "rev-parse", "HEAD")
    found = local_history(root=repo).assignments(STAGING, "fraud")
    assert found == [Assignment(merge, float(int(now - HOUR)), 2),
                     Assignment(first, float(int(now - 72 * HOUR)), 1)]
    assert [a.version for a in local_history(root=repo).assignments(STAGING, "gone")] == \
        [None, None]


def test_local_history_outside_git_is_empty(tmp_path: Path) -> None:
    """A folder that is not in a git work tree simply has no history."""
    folder = tmp_path / "environments"
    folder.mkdir()
    (folder / "staging.yaml").write_text(staging(1))
    assert local_history().assignments(str(folder / "staging.yaml"), "fraud") == []


def test_gitsource_history_reads_the_fetched_branch_with_commit_times(tmp_path: Path) -> None:
    """Through the controller's GitSource: newest first, commit times; a deleted file assigns
    nothing and an invalid commit is skipped (the controller kept the last good state)."""
    now = time.time()
    bare, work = bare_remote(tmp_path, {STAGING: staging(1)})
    two = commit(work, staging(2), now - 5 * HOUR, "fraud v2")
    broken = commit(work, "models: [not, an, environment]\n", now - 4 * HOUR, "broken")
    deleted = commit(work, None, now - 3 * HOUR, "remove staging")
    git(work, "push", "-q", "origin", "HEAD:main")
    source = GitSource(bare.as_uri(), "main", "environments", tmp_path / "cache")
    sha = source.fetch()
    found = gitsource_history(source, rev=sha).assignments(STAGING, "fraud")
    assert [(a.sha, a.version) for a in found[:2]] == [(deleted, None), (two, 2)]
    assert broken not in {a.sha for a in found}
    assert found[1].committed_at == float(int(now - 5 * HOUR))
    assert found[-1].version == 1


def test_controller_pass_gates_with_the_gitsource_history(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str) -> None:
    """The controller loop (GitSource + policy_for_source): a version soaked 29h by commit
    time is promoted, one soaked 1h is refused with the soak in the reason."""
    from mlflow_gitops.adapters.metrics import Metrics
    from mlflow_gitops.adapters.mlflow.registry import MlflowRegistry
    from mlflow_gitops.cli.policies import policy_for_source
    from mlflow_gitops.loop.runner import Controller

    old, new = f"old-{unique}", f"new-{unique}"
    for model in (old, new):
        logged_version(mlflow_client, model, {"accuracy": 0.95})
    now = time.time()
    header = "apiVersion: mlflow-gitops/v1\nkind: Environment\n"

    def files(staged: dict[str, int], served: dict[str, int]) -> dict[str, str]:
        def models(m: dict[str, int]) -> str:
            return "models:\n" + "".join(f"  {k}: {v}\n" for k, v in m.items()) if m \
                else "models: {}\n"
        return {STAGING: header + "target:\n  stage: Staging\n" + models(staged),
                "environments/production.yaml": header + "target:\n  alias: champion\n"
                "promotion:\n  from: staging\n  min_soak: 24h\n" + models(served)}

    bare, work = bare_remote(tmp_path, files({old: 1}, {}))
    git(work, "commit", "-q", "--amend", "--no-edit", env={
        "GIT_COMMITTER_DATE": f"@{int(now - 30 * HOUR)} +0000"})
    commit(work, files({old: 1, new: 1}, {})[STAGING], now - HOUR, "new to staging")
    write_files(work, files({old: 1, new: 1}, {old: 1, new: 1}))
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "promote both", env={
        "GIT_COMMITTER_DATE": f"@{int(now - 60)} +0000"})
    git(work, "push", "-q", "-f", "origin", "HEAD:main")

    source = GitSource(bare.as_uri(), "main", "environments", tmp_path / "cache")
    registry = MlflowRegistry(mlflow_server.uri)
    controller = Controller(source, {"default": registry}, Metrics(),
                            policy=policy_for_source)
    controller.run_pass("test")
    result = controller.state.last_result
    assert result is not None
    (error,) = result.plan.errors
    assert error.model == new and error.kind == "gate"
    assert "1h in staging (since commit" in error.message
    assert "< min_soak 1d" in error.message
    assert mlflow_client.get_registered_model(old).aliases == {"champion": "1"}
    assert mlflow_client.get_registered_model(new).aliases == {}
