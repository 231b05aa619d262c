"""What the HTTP server shows of the controller: readiness (`/readyz`) and the `/status`
JSON. Pure: the controller's state and whether it leads in, a value out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
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


DEFAULT_LIMIT = 500  # entries per /status page unless ?limit= says otherwise
MAX_LIMIT = 5000
MAX_DIAGNOSTICS = 100  # of an invalid commit, shown in /status (the count says how many)


@dataclass(frozen=True)
class StatusQuery:
    """Which entries `/status` lists: filters (exact matches) and one page of the result.
    A file listing 100,000 models makes 100,000 entries; only the page becomes JSON."""

    environment: str | None = None
    model: str | None = None
    state: str | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0


def status_view(state: ControllerState, leading: bool,
                query: StatusQuery = StatusQuery()) -> dict[str, Any]:
    s = state
    result = s.last_result
    rows = result.status if result else []
    by_state: Counter[str] = Counter()
    by_env: dict[str, Counter[str]] = {}
    for row in rows:
        by_state[row.sync] += 1
        by_env.setdefault(row.environment, Counter())[row.sync] += 1
    matched = [row for row in rows
               if (query.environment is None or row.environment == query.environment)
               and (query.model is None or row.model == query.model)
               and (query.state is None or row.sync.lower() == query.state.lower())]
    page = matched[query.offset:query.offset + query.limit]
    end = query.offset + len(page)
    diagnostics = s.invalid_diagnostics
    return {
        "leader": leading,
        "last_seen_commit": s.last_seen_commit,
        "last_applied_commit": s.last_applied_commit,
        "last_pass": {"at": s.last_pass_at, "outcome": s.last_pass_outcome,
                      "passes": s.passes},
        "invalid_commit": None if s.invalid_commit is None else {
            "commit": s.invalid_commit,
            "diagnostics": [d.to_dict() for d in diagnostics[:MAX_DIAGNOSTICS]],
            "diagnostics_total": len(diagnostics)},
        "last_error": s.last_error,
        "summary": {"entries": len(rows), "by_state": dict(sorted(by_state.items())),
                    "by_environment": {env: dict(sorted(c.items()))
                                       for env, c in sorted(by_env.items())}},
        "page": {"offset": query.offset, "limit": query.limit, "matched": len(matched),
                 "returned": len(page), "next_offset": end if end < len(matched) else None},
        "environments": [row.to_dict() for row in page],
        "registry_errors": result.registry_errors if result else {},
    }


def page_view(state: ControllerState, leading: bool, recent: Sequence[ApplyRecord] = ()
              ) -> PageData:
    """The web page's view: one consistent read of the state, with the plan
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
