"""Which commit statuses and notifications a pass causes, and that each is sent once
(loop.feedback)."""

from __future__ import annotations

from mlflow_gitops.core.feedback import CommitStatus, Notification
from mlflow_gitops.core.plan import Change, ModelError, Plan
from mlflow_gitops.loop.executor import Applied, ApplyResult
from mlflow_gitops.loop.feedback import Feedback
from mlflow_gitops.loop.reconciler import PassResult
from mlflow_gitops.planning.status import environment_status

from tests.support.builders import desired, env, live

SHA = "c0ffee" * 6 + "abcd"


class Port:
    def __init__(self) -> None:
        self.statuses: list[CommitStatus] = []
        self.notes: list[Notification] = []

    def commit_status(self, status: CommitStatus) -> None:
        self.statuses.append(status)

    def notify(self, notification: Notification) -> None:
        self.notes.append(notification)


def _promote(envname: str, model: str, version: int, reason: str = "git") -> Change:
    return Change("default", envname, model, version, "promote", reason,  # type: ignore[arg-type]
                  f"environments/{envname}.yaml", 10, "Staging", "Production")


def test_promotion_gives_pending_then_success_once_and_one_applied_event() -> None:
    """Applying sets pending, the pass's end success with what changed; a second pass on the
    same commit sends nothing again."""
    before = desired(env("production", "stage:Production", {"churn": 1}), commit="old")
    after = desired(env("production", "stage:Production", {"churn": 2}), commit=SHA)
    port = Port()
    feedback = Feedback(port)
    feedback.desired_changed(before, after)
    change = _promote("production", "churn", 2)
    done = Applied(change, SHA, 0.01)
    feedback.applying(done)
    snap = {"default": live({"churn": {1: "Archived", 2: "Production"}})}
    plan = Plan(SHA, (change,))
    result = PassResult(after, snap, plan, ApplyResult(plan, [done]),
                        status=tuple(environment_status(after, snap, Plan(SHA))))
    feedback.result(result)
    feedback.result(result)
    assert [(s.environment, s.state, s.description) for s in port.statuses] == [
        ("production", "pending", f"applying commit {SHA[:12]}"),
        ("production", "success", "applied: churn v2: Staging → Production")]
    assert [(n.event, n.model, n.changes) for n in port.notes] == [
        ("applied", "churn", ("churn v2: Staging → Production",))]


def test_refused_waiting_and_untouched_environments() -> None:
    """A refused entry fails its environment's status with the reason; a waiting one is
    pending and says until when; an environment the commit did not change gets no status."""
    before = desired(env("production", "stage:Production", {"a": 1}),
                     env("staging", "stage:Staging", {"a": 1}),
                     env("qa", "alias:qa", {"a": 1}), commit="old")
    after = desired(env("production", "stage:Production", {"a": 2}),
                    env("staging", "stage:Staging", {"a": 3}),
                    env("qa", "alias:qa", {"a": 1}), commit=SHA)
    port = Port()
    feedback = Feedback(port)
    feedback.desired_changed(before, after)
    errors = (ModelError("default", "production", "a", "gate", "a v2 not promoted: accuracy "
                         "0.8 < 0.9", "environments/production.yaml", 10),
              ModelError("default", "staging", "a", "waiting", "a v3 soaked 1h < 24h",
                         "environments/staging.yaml", 10, until=2e9))
    snap = {"default": live({"a": {1: "Production", 2: "None", 3: "None"}}, {"a": {"qa": 1}})}
    plan = Plan(SHA, errors=errors)
    result = PassResult(after, snap, plan, ApplyResult(plan),
                        status=tuple(environment_status(after, snap, plan)))
    for _ in range(3):
        feedback.result(result)
    assert [(s.environment, s.state, s.description) for s in port.statuses] == [
        ("production", "failure", "Refused: a v2 not promoted: accuracy 0.8 < 0.9"),
        ("staging", "pending", "Waiting until 2033-05-18 03:33 UTC: a v3 soaked 1h < 24h")]
    assert [(n.event, n.environment) for n in port.notes] == [
        ("refused", "production"), ("waiting", "staging")]


def test_drift_is_notified_once_per_episode() -> None:
    """Drift left alone is told once while it lasts, and again after it ended and returned."""
    state = desired(env("production", "stage:Production", {"a": 1}, self_heal=False),
                    commit=SHA)
    port = Port()
    feedback = Feedback(port)
    feedback.desired_changed(state, state)
    drifted = {"default": live({"a": {1: "Archived", 2: "Production"}})}
    healthy = {"default": live({"a": {1: "Production"}})}
    from mlflow_gitops.core.plan import Drift

    drift_plan = Plan(SHA, drift=(Drift("default", "production", "a", "v1", "v2",
                                        "environments/production.yaml", 10),))

    def run(snap: dict, plan: Plan) -> None:  # type: ignore[type-arg]
        feedback.result(PassResult(state, snap, plan, ApplyResult(plan),
                                   status=tuple(environment_status(state, snap, plan))))

    for snap, plan in ((drifted, drift_plan), (drifted, drift_plan), (healthy, Plan(SHA)),
                       (drifted, drift_plan)):
        run(snap, plan)
    assert [n.event for n in port.notes] == ["drift", "drift"]


def test_an_invalid_commit_fails_the_statuses_of_the_files_at_fault_once() -> None:
    """Each environment file with a diagnostic gets one failure on the bad commit, and one
    invalid_commit notification is sent."""
    from mlflow_gitops.core.diagnostics import Diagnostic

    port = Port()
    feedback = Feedback(port)
    bad = [Diagnostic("environments/production.yaml", 4, "models.churn: version must be a "
                      "positive integer"),
           Diagnostic("environments/production.yaml", 6, "unknown key 'modles'"),
           Diagnostic("environments/staging.yml", 2, "kind must be Environment")]
    feedback.invalid(SHA, bad)
    feedback.invalid(SHA, bad)
    assert [(s.environment, s.state, s.description) for s in port.statuses] == [
        ("production", "failure", "Invalid, not applied: environments/production.yaml:4: "
         "models.churn: version must be a positive integer"),
        ("staging", "failure", "Invalid, not applied: environments/staging.yml:2: kind must "
         "be Environment")]
    assert [n.event for n in port.notes] == ["invalid_commit"]


def test_what_the_commit_changed_is_applied_and_anything_else_is_a_healed_drift() -> None:
    """Whatever the planner calls a change, one to an entry the commit changed is `applied`
    and one to an entry it did not is a `drift` heal."""
    before = desired(env("production", "alias:champion", {"a": 1, "b": 1}), commit="old")
    after = desired(env("production", "alias:champion", {"a": 2, "b": 1}), commit=SHA)
    port = Port()
    feedback = Feedback(port)
    feedback.desired_changed(before, after)
    dones = [Applied(Change("default", "production", m, v, "set_alias", "drift",
                            "environments/production.yaml", 10, alias="champion"), SHA, 0.01)
             for m, v in (("a", 2), ("b", 1))]
    for done in dones:
        feedback.applying(done)
    snap = {"default": live({"a": {2: "None"}, "b": {1: "None"}},
                            {"a": {"champion": 2}, "b": {"champion": 1}})}
    plan = Plan(SHA, tuple(d.change for d in dones))
    feedback.result(PassResult(after, snap, plan, ApplyResult(plan, dones),
                               status=tuple(environment_status(after, snap, Plan(SHA)))))
    assert [(n.event, n.model) for n in port.notes] == [("applied", "a"), ("drift", "b")]
    assert port.statuses[-1].description == "applied: a @champion: unset → v2"
