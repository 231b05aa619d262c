"""A merge does not wait for a drift check, and a drift check never undoes a merge: the
controller in-process (its loop and commit lane threads), following a real bare git remote,
against the real MLflow server behind a proxy that holds the drift check's bulk read open
(tests/support/slow_proxy.py). Nothing here is timed: the held read is the slow registry,
and the assertions are about order (applied while the check is still held) and content."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow_gitops.adapters.git.source import GitSource
from mlflow_gitops.adapters.metrics import Metrics
from mlflow_gitops.adapters.mlflow.registry import MlflowRegistry
from mlflow_gitops.loop.runner import Controller

from tests.support.bulk_seed import add_models
from tests.support.controller_proc import wait_until
from tests.support.gitrepos import bare_remote, commit_all, git, write_files
from tests.support.servers import MlflowServer
from tests.support.slow_proxy import Rule, SlowProxy, searches_naming_at_least

MODELS = 8  # the drift check reads all of them at once; a commit-first read names one


def champion_file(versions: dict[str, int]) -> dict[str, str]:
    body = "".join(f"  {name}: {v}\n" for name, v in sorted(versions.items()))
    return {"environments/champion.yaml": "apiVersion: mlflow-gitops/v1\nkind: Environment\n"
            f"target:\n  alias: champion\nmodels:\n{body}"}


@dataclass
class Running:
    controller: Controller
    proxy: SlowProxy
    work: Path
    names: list[str]
    versions: dict[str, int]
    client: object

    def push(self, model: str, version: int) -> str:
        self.versions[model] = version
        write_files(self.work, champion_file(self.versions))
        sha = commit_all(self.work, f"{model}: @champion to v{version}")
        git(self.work, "push", "-q", "origin", "main")
        return sha

    def champion(self, model: str) -> int:
        return int(self.client.get_model_version_by_alias(model, "champion").version)  # type: ignore[attr-defined]

    def hold_drift_check(self) -> Rule:
        """Trigger a pass (no new commit) and hold its bulk read of every model."""
        rule = self.proxy.hold(searches_naming_at_least(MODELS))
        self.controller.on_webhook("webhook")
        assert rule.reached.wait(60), "the drift check never read the registry"
        return rule


@pytest.fixture()
def running(tmp_path: Path, mlflow_server: MlflowServer, mlflow_client: object,
            unique: str) -> Iterator[Running]:
    names = [f"beside-{unique}-{i}" for i in range(MODELS)]
    add_models(mlflow_server.root / "mlflow.db", names, 3, aliases={"champion": 2})
    versions = dict.fromkeys(names, 2)
    _bare, work = bare_remote(tmp_path / "git", champion_file(versions))
    proxy = SlowProxy(mlflow_server.uri).start()
    source = GitSource(f"file://{_bare}", "main", "environments", tmp_path / "cache")
    controller = Controller(source, {"default": MlflowRegistry(proxy.uri)}, Metrics(),
                            interval=3600)
    loop = threading.Thread(target=controller.loop, daemon=True)
    loop.start()
    try:
        wait_until(lambda: controller.state.passes >= 1, timeout=60, message="the first pass")
        assert controller.state.last_result is not None and controller.state.last_result.ok
        yield Running(controller, proxy, work, names, versions, mlflow_client)
    finally:
        proxy.release_all()
        controller.stop()
        loop.join(60)
        proxy.stop()
        source.close()


def test_a_commit_pushed_during_a_slow_drift_check_is_applied_before_the_check_ends(
        running: Running) -> None:
    """A merge pushed while the drift check of every managed model is stuck on a slow
    registry read is applied while that check is still running, and counted once."""
    target = running.names[-1]
    passes = running.controller.state.passes
    held = running.hold_drift_check()
    running.push(target, 3)
    running.controller.on_webhook("webhook")
    wait_until(lambda: running.champion(target) == 3, timeout=60,
               message="the new commit applied while the drift check is held")
    assert running.controller.state.passes == passes  # the drift check has not ended
    assert not held.released
    held.release()
    wait_until(lambda: running.controller.state.passes >= passes + 2, timeout=60,
               message="the held pass and the one the commit's trigger asked for")
    assert running.champion(target) == 3
    # The lane's write is folded into a pass's outcome: counted once, not lost, not twice.
    metrics = running.controller.metrics
    assert isinstance(metrics, Metrics)
    assert metrics.registry.get_sample_value(
        "mlflow_gitops_transitions_total",
        {"environment": "champion", "action": "set_alias"}) == 1


def test_a_heal_planned_before_a_commit_never_reverts_that_commit(
        running: Running, caplog: pytest.LogCaptureFixture) -> None:
    """A drift check that read the registry before a commit landed, and so plans to heal a
    model back to the older desired version, leaves the commit's change alone: the heal is
    never written, nor reported as pending, and the model ends at the commit's version."""
    caplog.set_level(logging.INFO, logger="mlflow_gitops")
    target = running.names[0]
    running.client.set_registered_model_alias(target, "champion", "1")  # type: ignore[attr-defined]
    passes = running.controller.state.passes
    held = running.hold_drift_check()  # its answer says @champion v1: drift from v2
    running.proxy.requests.clear()
    running.push(target, 3)
    running.controller.on_webhook("webhook")
    wait_until(lambda: running.champion(target) == 3, timeout=60,
               message="the new commit applied while the drift check is held")
    held.release()  # the check goes on with its stale view: v1 live, v2 wanted
    wait_until(lambda: running.controller.state.passes >= passes + 2, timeout=60,
               message="the held pass and the one the commit's trigger asked for")
    moves = [(body["name"], str(body["version"]))
             for body in running.proxy.written("registered-models/alias")]
    assert moves == [(target, "3")]  # the commit's move, and no heal back to v2
    said = [r.getMessage() for r in caplog.records if f"/{target}:" in r.getMessage()]
    assert not [m for m in said if "OutOfSync" in m], said
    assert running.champion(target) == 3
    result = running.controller.state.last_result
    assert result is not None and result.ok and not result.plan.changes
