"""What the controller shows from the ledger: the timeline's bars are applied intervals (a
merged assignment never applied stays a dashed outline), and the delivery gauges."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from mlflow_gitops.adapters.metrics import Metrics
from mlflow_gitops.planning.delivery import DeliveryMetrics
from mlflow_gitops.planning.ledger import Interval
from mlflow_gitops.planning.timeline import Segment, Timeline
from mlflow_gitops.planning.timeline_ledger import with_applied

T = datetime(2026, 12, 1, tzinfo=timezone.utc)


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def test_bars_follow_applied_times_and_unapplied_merges_stay_outlines() -> None:
    """Git says v1 from day 0 and v2 from day 1 (a backdated commit could say anything);
    the ledger says v1 went live at day 0 + 1h and v2 only on day 3: the bars start then,
    carry the git commit's author, and a v3 merged on day 4 but never applied is pending."""
    git = (Segment("production", 1, T, T + timedelta(days=1), "c1", "Ann", "v1"),
           Segment("production", 2, T + timedelta(days=1), T + timedelta(days=4), "c2", "Bob",
                   "v2"),
           Segment("production", 3, T + timedelta(days=4), None, "c3", "Cy", "v3"))
    tl = Timeline("m", ("production",), git)
    applied = [Interval("production", "m", 1, ms(T + timedelta(hours=1)),
                        ms(T + timedelta(days=3)), "c1"),
               Interval("production", "m", 2, ms(T + timedelta(days=3)), None, "c2"),
               Interval("production", "other", 7, ms(T), None, "c9")]
    out = with_applied(tl, applied).lane("production")
    assert [(s.version, s.start, s.end, s.pending) for s in out] == [
        (1, T + timedelta(hours=1), T + timedelta(days=3), False),
        (2, T + timedelta(days=3), None, False),
        (3, T + timedelta(days=4), None, True)]
    assert out[1].author == "Bob" and out[1].applied_at == T + timedelta(days=3)


def test_a_model_without_ledger_records_keeps_its_git_timeline() -> None:
    """No interval for the model: the timeline is returned as it was."""
    tl = Timeline("m", ("production",), (Segment("production", 1, T, None, "c", "A", "s"),))
    assert with_applied(tl, [Interval("production", "x", 1, 0, None, "c")]) is tl


def test_delivery_gauges_expose_the_figures_and_drop_gone_environments() -> None:
    """Each environment's four figures become gauges; one with no data shows deployments
    only, and an environment that disappears loses its series."""
    metrics = Metrics()
    metrics.delivery([DeliveryMetrics("production", None, 4, 10800.0, 24480.0, 0.25, 3600.0),
                      DeliveryMetrics("staging", None, 0, None, None, None, None)])
    text = metrics.render()[0].decode()
    assert 'mlflow_gitops_deployments{environment="production"} 4.0' in text
    assert 'mlflow_gitops_lead_time_seconds{environment="production",quantile="0.9"} 24480.0' \
        in text
    assert 'mlflow_gitops_change_failure_rate{environment="production"} 0.25' in text
    assert 'mlflow_gitops_time_to_restore_seconds{environment="production"} 3600.0' in text
    assert 'mlflow_gitops_deployments{environment="staging"} 0.0' in text
    assert 'mlflow_gitops_change_failure_rate{environment="staging"}' not in text
    metrics.delivery([DeliveryMetrics("staging", None, 1, 5.0, 5.0, 0.0, None)])
    text = metrics.render()[0].decode()
    assert 'environment="production"' not in text.split("mlflow_gitops_deployments")[1] \
        .split("# HELP")[0]
    assert 'mlflow_gitops_lead_time_seconds{environment="production"' not in text
