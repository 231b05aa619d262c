"""What the HTTP server shows of the controller: readiness (`/readyz`) and the `/status`
JSON. Pure: the controller's state and whether it leads in, a value out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlflow_gitops.core.plan import Plan
from mlflow_gitops.loop.cycle import ControllerState
from mlflow_gitops.planning.overview import PageData
from mlflow_gitops.planning.timeline import ApplyRecord


def readiness(state: ControllerState, leading: bool) -> tuple[bool, str]:
    if not leading:
        return True, "standby: not the leader"
    if state.source_error is not None:
        return False, "git source unreadable: " + state.source_error
    if not state.synced_once:
        return False, "not synced yet: " + (state.last_error or "first pass pending")
    if not state.registry_reachable:
        return False, "registry unreachable: " + (state.last_error or "")
    return True, f"synced {state.last_applied_commit or ''}"


def status_view(state: ControllerState, leading: bool) -> dict[str, Any]:
    s = state
    result = s.last_result
    return {
        "leader": leading,
        "last_seen_commit": s.last_seen_commit,
        "last_applied_commit": s.last_applied_commit,
        "last_pass": {"at": s.last_pass_at, "outcome": s.last_pass_outcome,
                      "passes": s.passes},
        "invalid_commit": None if s.invalid_commit is None else {
            "commit": s.invalid_commit,
            "diagnostics": [d.to_dict() for d in s.invalid_diagnostics]},
        "last_error": s.last_error,
        "environments": [row.to_dict() for row in result.status] if result else [],
        "registry_errors": result.registry_errors if result else {},
    }


def page_view(state: ControllerState, leading: bool, recent: Sequence[ApplyRecord] = ()
              ) -> PageData:
    """The web page's view (SPEC §6a): one consistent read of the state, with the plan
    reduced to what is still to do (the plan less what was applied) and its errors."""
    s = state
    result = s.last_result
    outstanding = None
    if result is not None:
        done = {id(a.change) for a in result.applied.applied} if result.applied else set()
        errors = result.applied.errors if result.applied else list(result.plan.errors)
        outstanding = Plan(result.plan.commit, tuple(
            c for c in result.plan.changes if id(c) not in done), tuple(errors),
            result.plan.drift)
    return PageData(
        rows=tuple(result.status) if result else (),
        desired=result.desired if result else None,
        snapshots=dict(result.snapshots) if result else {},
        plan=outstanding,
        last_seen_commit=s.last_seen_commit, last_applied_commit=s.last_applied_commit,
        invalid_commit=s.invalid_commit, last_pass_at=s.last_pass_at,
        last_pass_outcome=s.last_pass_outcome, last_error=s.last_error,
        leader=leading, recent=tuple(recent))
