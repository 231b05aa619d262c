"""The Prometheus metrics, read back from the exposition text."""

from __future__ import annotations

import pytest
from mlflow_gitops.adapters.metrics import Metrics
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(metrics: Metrics) -> Samples:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    found: Samples = {}
    for family in text_string_to_metric_families(body.decode("utf-8")):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _names(metrics: Metrics) -> set[str]:
    return {name for name, _ in _samples(metrics)}


def test_every_spec_metric_is_exposed_from_the_start() -> None:
    """A fresh controller already exposes each metric the loop reports on."""
    names = _names(Metrics())
    for name in ("mlflow_gitops_reconcile_total", "mlflow_gitops_reconcile_duration_seconds_count",
                 "mlflow_gitops_last_applied_timestamp_seconds", "mlflow_gitops_leader",
                 "mlflow_gitops_invalid_commit"):
        assert name in names, name


def test_reconcile_results_are_counted_and_timed() -> None:
    """Each pass counts under its result (every result at 0 first) and lands in the histogram."""
    metrics = Metrics()
    before = _samples(metrics)
    for result in ("success", "error", "invalid", "skipped"):
        assert before[("mlflow_gitops_reconcile_total", (("result", result),))] == 0
    metrics.reconciled("success", 0.2)
    metrics.reconciled("success", 3.0)
    metrics.reconciled("error", 0.01)
    after = _samples(metrics)
    assert after[("mlflow_gitops_reconcile_total", (("result", "success"),))] == 2
    assert after[("mlflow_gitops_reconcile_total", (("result", "error"),))] == 1
    assert after[("mlflow_gitops_reconcile_duration_seconds_count", ())] == 3
    assert after[("mlflow_gitops_reconcile_duration_seconds_sum", ())] == pytest.approx(3.21)
    assert after[("mlflow_gitops_reconcile_duration_seconds_bucket", (("le", "0.25"),))] == 2


def test_unknown_result_is_refused() -> None:
    """A typo in a result name fails loudly instead of creating a new series."""
    with pytest.raises(ValueError, match="succes"):
        Metrics().reconciled("succes", 1.0)


def test_transitions_are_counted_per_environment_and_action() -> None:
    """Applied changes add up per (environment, action)."""
    metrics = Metrics()
    metrics.transition("production", "transition_stage")
    metrics.transition("production", "transition_stage", 2)
    metrics.transition("staging", "set_alias")
    found = _samples(metrics)
    key = "mlflow_gitops_transitions_total"
    assert found[(key, (("action", "transition_stage"), ("environment", "production")))] == 3
    assert found[(key, (("action", "set_alias"), ("environment", "staging")))] == 1


def test_out_of_sync_follows_the_latest_counts() -> None:
    """The out-of-sync gauge shows the latest count per environment and drops removed ones."""
    metrics = Metrics()
    metrics.out_of_sync({"production": 2, "staging": 0})
    metrics.out_of_sync({"production": 0})
    found = _samples(metrics)
    assert found[("mlflow_gitops_out_of_sync", (("environment", "production"),))] == 0
    assert ("mlflow_gitops_out_of_sync", (("environment", "staging"),)) not in found


def test_commit_info_shows_only_the_current_sha() -> None:
    """The commit info gauge is 1 for the current sha and the previous sha's series is gone."""
    metrics = Metrics()
    metrics.commit("a" * 40)
    metrics.commit("b" * 40)
    metrics.commit("b" * 40)
    commits = {labels: value for (name, labels), value in _samples(metrics).items()
               if name == "mlflow_gitops_git_commit_info"}
    assert commits == {(("sha", "b" * 40),): 1.0}


def test_gauges_for_applied_time_leader_and_invalid_commit() -> None:
    """Last applied time, leadership and the invalid-commit flag are plain gauges."""
    metrics = Metrics()
    metrics.applied(1_700_000_000.0)
    metrics.leader(True)
    metrics.invalid_commit(True)
    found = _samples(metrics)
    assert found[("mlflow_gitops_last_applied_timestamp_seconds", ())] == 1_700_000_000.0
    assert found[("mlflow_gitops_leader", ())] == 1
    assert found[("mlflow_gitops_invalid_commit", ())] == 1
    metrics.leader(False)
    metrics.invalid_commit(False)
    found = _samples(metrics)
    assert found[("mlflow_gitops_leader", ())] == 0
    assert found[("mlflow_gitops_invalid_commit", ())] == 0


def test_two_instances_do_not_share_series() -> None:
    """Each Metrics has its own registry: two controllers in one process never collide."""
    first, second = Metrics(), Metrics()
    first.reconciled("success", 0.1)
    assert _samples(second)[("mlflow_gitops_reconcile_total", (("result", "success"),))] == 0


def test_process_python_and_build_info_are_exposed_without_created_series() -> None:
    """process_* and python_* collectors and build_info are there; no *_created series."""
    names = _names(Metrics())
    assert {"process_cpu_seconds_total", "python_info", "mlflow_gitops_build_info"} <= names
    body = Metrics().render()[0].decode()
    assert "_created" not in body


def test_entries_per_state_drop_environments_that_left() -> None:
    """The state gauge shows every state of each environment and forgets removed ones."""
    metrics = Metrics()
    metrics.states({("prod", "Waiting"): 2, ("staging", "Synced"): 1})
    metrics.states({("prod", "Synced"): 2})
    samples = _samples(metrics)
    assert samples[("mlflow_gitops_entries", (("environment", "prod"), ("state", "Waiting")))] == 0
    assert samples[("mlflow_gitops_entries", (("environment", "prod"), ("state", "Synced")))] == 2
    assert not [k for k in samples if ("environment", "staging") in k[1]]
