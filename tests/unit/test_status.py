"""The states, decided in one place (planning.status) and folded into logs and
metrics once per entry (loop.report)."""

from __future__ import annotations

import logging

import pytest
from mlflow_gitops.adapters.metrics import Metrics
from mlflow_gitops.core.plan import ModelError, Plan
from mlflow_gitops.core.states import state_of, worst
from mlflow_gitops.loop.reconciler import PassResult
from mlflow_gitops.loop.report import Reporter, pass_outcome
from mlflow_gitops.planning.status import entered, environment_status

from tests.support.builders import desired, env, live
from tests.unit.test_metrics import _samples


def _error(kind: str, until: float | None = None) -> ModelError:
    return ModelError("default", "production", "churn", kind,  # type: ignore[arg-type]
                      f"churn {kind}", "environments/production.yaml", 10, until=until)


@pytest.mark.parametrize(("kind", "state"), [
    ("waiting", "Waiting"), ("held", "Held"), ("gate", "Refused"),
    ("missing_version", "Error"), ("apply", "Error"), ("registry", "Error"),
    ("guard", "Error")])
def test_each_error_kind_maps_to_its_state(kind: str, state: str) -> None:
    """ModelError.kind decides the state: waiting, held and gate are not Error."""
    assert state_of(_error(kind)) == state


def test_waiting_row_carries_when_it_expects_to_proceed() -> None:
    """A soak wait is a Waiting row with its `until`, not an Error."""
    state = desired(env("production", "stage:Production", {"churn": 2}))
    snap = {"default": live({"churn": {1: "Production", 2: "Staging"}})}
    (row,) = environment_status(state, snap, Plan("c0ffee", errors=(_error("waiting", 1e9),)))
    assert (row.sync, row.until) == ("Waiting", 1e9)
    assert row.to_dict()["until"] == 1e9


def test_worst_state_orders_by_severity() -> None:
    """An Error anywhere outranks Refused, which outranks Held and Waiting."""
    assert worst(["Synced", "Waiting", "Held"]) == "Held"
    assert worst(["Waiting", "Error", "Refused"]) == "Error"
    assert worst([]) == "Synced"


def _pass(*errors: ModelError) -> PassResult:
    state = desired(env("production", "stage:Production", {"churn": 2}))
    snap = {"default": live({"churn": {1: "Production", 2: "Staging"}})}
    the_plan = Plan("c0ffee", errors=errors)
    return PassResult(state, snap, the_plan, status=environment_status(state, snap, the_plan))


def test_a_soak_wait_counts_waiting_and_logs_once_at_info(
        caplog: pytest.LogCaptureFixture) -> None:
    """Three passes that wait on soak: result `waiting` each time, one INFO line in all."""
    metrics = Metrics()
    reporter = Reporter(metrics)
    caplog.set_level(logging.DEBUG, logger="mlflow_gitops.controller")
    for _ in range(3):
        reporter.pass_started()
        result = _pass(_error("waiting", 2e9))
        reporter.result(result)
        reporter.pass_finished(pass_outcome(result), 0.1, "interval", "c0ffee")
    lines = [r for r in caplog.records if "Waiting" in r.getMessage()]
    assert [(r.levelname, r.getMessage()) for r in lines] == [
        ("INFO", "production/churn: Waiting until 2033-05-18T03:33:20+00:00: "
                 "environments/production.yaml:10: churn waiting")]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    samples = _samples(metrics)
    assert samples[("mlflow_gitops_reconcile_total", (("result", "waiting"),))] == 3
    assert samples[("mlflow_gitops_reconcile_total", (("result", "error"),))] == 0
    assert samples[("mlflow_gitops_entries",
                    (("environment", "production"), ("state", "Waiting")))] == 1


@pytest.mark.parametrize(("kind", "level", "result"), [
    ("gate", "WARNING", "refused"), ("held", "INFO", "held"), ("apply", "ERROR", "error")])
def test_entering_a_state_logs_at_its_level(caplog: pytest.LogCaptureFixture, kind: str,
                                            level: str, result: str) -> None:
    """Refused is a WARNING, Held INFO, Error ERROR; each once, and counted by its result."""
    reporter = Reporter(Metrics())
    caplog.set_level(logging.INFO, logger="mlflow_gitops.controller")
    for _ in range(2):
        reporter.result(_pass(_error(kind)))
    assert [r.levelname for r in caplog.records] == [level]
    assert pass_outcome(_pass(_error(kind))) == result


def test_a_return_to_synced_is_news_but_a_first_synced_is_not() -> None:
    """entered(): a new Synced row is silent, a row that recovers is reported."""
    state = desired(env("production", "stage:Production", {"churn": 1}))
    snap = {"default": live({"churn": {1: "Production"}})}
    rows = environment_status(state, snap, Plan("c0ffee"))
    assert [r.sync for r in rows] == ["Synced"]
    assert entered({}, rows) == []
    assert entered({("production", "churn"): "Error"}, rows) == rows


def test_next_until_is_the_earliest_wait() -> None:
    """The loop wakes for the first Waiting entry that expects to proceed."""
    from mlflow_gitops.planning.status import next_until

    state = desired(env("production", "stage:Production", {"a": 2, "b": 2}))
    snap = {"default": live({"a": {2: "None"}, "b": {2: "None"}})}
    waits = (ModelError("default", "production", "a", "waiting", "x", "f", 1, until=900.0),
             ModelError("default", "production", "b", "waiting", "y", "f", 2, until=500.0))
    assert next_until(environment_status(state, snap, Plan("c", errors=waits))) == 500.0
    assert next_until(environment_status(state, snap, Plan("c"))) is None


def test_a_converged_controller_logs_a_heartbeat_and_nothing_else_at_info(
        caplog: pytest.LogCaptureFixture) -> None:
    """Quiet passes log at DEBUG, except one INFO heartbeat per interval (clock injected);
    a pass that enters a state logs at INFO and restarts the interval."""
    now = [0.0]
    reporter = Reporter(Metrics(), heartbeat=600, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="mlflow_gitops.controller")
    drifting = _pass()  # live v1, git wants v2, nothing applied: the same every pass
    for minute in range(0, 25):
        now[0] = minute * 60.0
        reporter.pass_started()
        reporter.result(drifting)
        reporter.pass_finished("success", 0.01, "interval", "c0ffee1234567890")
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    heartbeat = "heartbeat: reconcile success, nothing new (1 OutOfSync) at commit c0ffee123456"
    assert info == ["production/churn: OutOfSync: drift not applied (self_heal: false)",
                    "reconcile success in 0.01s", heartbeat, heartbeat]  # minutes 0, 10, 20
    assert all(r.levelno < logging.WARNING for r in caplog.records)


def test_a_version_promoted_onward_stays_in_staging_as_waiting_not_drift() -> None:
    """promote takes v2 out of staging.yaml in the commit that gives it to production; while
    production waits on its soak, staging's row says the version stays there until
    production takes it (Waiting, with production's time), never 'live but not listed'; a
    refused promotion leaves the honest OutOfSync."""
    from dataclasses import replace

    from mlflow_gitops.core.model import Promotion

    staging = env("staging", "stage:Staging", {"fraud": 1})
    production = replace(env("production", "stage:Production", {"churn": 2}),
                         promotion=Promotion(from_env="staging", min_soak_seconds=3600))
    state = desired(production, staging)
    snap = {"default": live({"churn": {1: "Production", 2: "Staging"}, "fraud": {1: "Staging"}})}
    rows = {r.environment: r for r in environment_status(
        state, snap, Plan("c0ffee", errors=(_error("waiting", 1e9),))) if r.model == "churn"}
    assert (rows["staging"].sync, rows["staging"].until) == ("Waiting", 1e9)
    assert "stays in staging until production takes it (moving to production" \
        in rows["staging"].message
    rows = {r.environment: r for r in environment_status(
        state, snap, Plan("c0ffee", errors=(_error("gate"),))) if r.model == "churn"}
    assert "staging" not in rows  # refused: not moving; staging lists other models only
