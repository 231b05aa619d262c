"""What the HTTP server shows of the controller: readiness (`/readyz`) and the `/status`
JSON. Pure: the controller's state and whether it leads in, a value out."""

from __future__ import annotations

from typing import Any

from mlflow_gitops.loop.cycle import ControllerState


def readiness(state: ControllerState, leading: bool) -> tuple[bool, str]:
    if not leading:
        return True, "standby: not the leader"
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
