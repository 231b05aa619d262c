"""Trust at apply inside the plan: guarded environments only, one fact read per entry and
pass, rollbacks read without approvals, and `plan`/`diff` (no port) say what apply checks."""

from __future__ import annotations

from mlflow_gitops.core.facts import PassFacts
from mlflow_gitops.core.model import Environment
from mlflow_gitops.core.plan import Plan
from mlflow_gitops.core.trust import Approvals, EntryTrust, Signature, TrustRules
from mlflow_gitops.planning.planner import plan
from mlflow_gitops.policy.evidence import applied_tag
from mlflow_gitops.policy.trustgate import guarded

from tests.support.builders import desired, env, live

RULES = TrustRules(frozenset({"production"}), signed_commits=True, reviews=2)
SHA = "1a2b3c4" + "0" * 33


class Port:
    """Answers `unsigned` or `signed and approved`; records every read."""

    def __init__(self, signed: bool) -> None:
        self.signed = signed
        self.reads: list[tuple[str, str, int, bool]] = []

    def entry_trust(self, environment: Environment, key: str, version: int, commit: str,
                    approvals: bool = True) -> EntryTrust:
        self.reads.append((environment.name, key, version, approvals))
        signature = Signature(SHA, "G", "k", "alice", "ssh", True) if self.signed \
            else Signature(SHA, "N")
        return EntryTrust(SHA, SHA, (signature,),
                          Approvals("#1", "ada", ("bob", "cyd")) if approvals else None)


def _plan(port: Port | None, tags: dict[tuple[str, int], dict[str, str]] | None = None
          ) -> Plan:
    state = desired(env("production", "alias:champion", {"m": 2}),
                    env("staging", "alias:challenger", {"m": 2}))
    snapshot = live({"m": {1: "None", 2: "None"}}, aliases={"m": {"champion": 1}},
                    tags=tags)
    factory = guarded(None, RULES, port)
    check = factory(state, PassFacts({"default": snapshot}))
    return plan(state, {"default": snapshot}, check=check)


def test_only_guarded_environments_are_checked_and_refusals_name_the_reason() -> None:
    """Production is refused for an unsigned commit; staging, unguarded, still moves."""
    port = Port(signed=False)
    result = _plan(port)
    assert [(c.environment, c.version) for c in result.changes] == [("staging", 2)]
    (error,) = result.errors
    assert (error.environment, error.kind) == ("production", "gate")
    assert error.message == "m v2 not promoted: unsigned commit 1a2b3c4"
    assert port.reads == [("production", "m", 2, True)]


def test_a_rollback_is_read_without_approvals() -> None:
    """A version production served before is judged on its signature alone."""
    port = Port(signed=True)
    served = {("m", 2): {applied_tag("production"): '{"commit": "c0ffee", "at": 1.0}'}}
    result = _plan(port, served)
    assert {c.environment for c in result.changes} == {"production", "staging"}
    assert port.reads == [("production", "m", 2, False)]


def test_without_a_port_plan_says_what_the_controller_will_check() -> None:
    """`plan`/`diff` let the change through with a note naming both rules."""
    result = _plan(None)
    (prod,) = [c for c in result.changes if c.environment == "production"]
    assert prod.note == ("at apply the controller checks a signature by an allowed key on "
                         "the commit and its merge and 2 approving reviews by people other "
                         "than the author")
