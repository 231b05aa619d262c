"""/metrics counts prompts as entries: one entry per (environment, prompt), like a model."""

from __future__ import annotations

from mlflow_gitops.adapters.metrics import Metrics
from mlflow_gitops.loop.reconciler import PassResult
from mlflow_gitops.loop.report import Reporter

from tests.unit.test_metrics import _samples
from tests.unit.test_page_prompts import page_data


def test_prompt_entries_are_counted_per_state_and_out_of_sync() -> None:
    """In champion, the model and one prompt are Synced and the other prompt OutOfSync:
    the entries gauge says 2 Synced and 1 OutOfSync, and out_of_sync says 1."""
    data = page_data()
    assert data.desired is not None and data.plan is not None
    metrics = Metrics()
    Reporter(metrics).result(PassResult(data.desired, dict(data.snapshots), data.plan,
                                        status=data.rows))
    samples = _samples(metrics)

    def count(state: str) -> float:
        return samples[("mlflow_gitops_entries",
                        (("environment", "champion"), ("state", state)))]

    assert (count("Synced"), count("OutOfSync")) == (2, 1)
    assert samples[("mlflow_gitops_out_of_sync", (("environment", "champion"),))] == 1
