"""Measurements 1 and 2: what one reconcile costs the registry, in-process through the
controller's own adapter. Every run talks to the server directly, is timed, and is counted
from the server's access log; one extra run of each goes through the CountingProxy, whose
counts must agree."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlflow_gitops.adapters.mlflow.registry import MlflowRegistry
from mlflow_gitops.core.model import DesiredState
from mlflow_gitops.loop.reconciler import PassResult, reconcile
from mlflow_gitops.policy import evidence

from bench.calls import ServerCalls, split
from tests.support.counting_proxy import CountingProxy


@dataclass(frozen=True)
class Run:
    seconds: float
    reads: int
    writes: int
    changes: int = 0
    records: int = 0  # the promotion policy's evidence tags written after the changes


def one_pass(registry: MlflowRegistry, desired: DesiredState,
             previous: DesiredState | None) -> tuple[float, PassResult]:
    started = time.perf_counter()
    result = reconcile(desired, {"default": registry}, previous=previous)
    return time.perf_counter() - started, result


def converged(direct: MlflowRegistry, calls: ServerCalls, desired: DesiredState,
              repeats: int) -> list[Run]:
    """A reconcile with nothing to do."""
    runs = []
    for _ in range(repeats):
        calls.mark()
        seconds, result = one_pass(direct, desired, desired)
        _expect_converged(result)
        runs.append(Run(seconds, *split(calls.since_mark())))
    return runs


def changed(direct: MlflowRegistry, calls: ServerCalls, base: DesiredState,
            commit: DesiredState, repeats: int, restore: Callable[[], Any]) -> list[Run]:
    """A reconcile after a commit that changes a few models; the seeded state is restored
    (outside the measurement) before every run and after the last."""
    runs = []
    for _ in range(repeats):
        restore()
        calls.mark()
        seconds, result = one_pass(direct, commit, base)
        runs.append(Run(seconds, *split(calls.since_mark()), changes=_applied(result),
                        records=_records(result)))
    restore()
    return runs


def proxy_check(counted: MlflowRegistry, proxy: CountingProxy, desired: DesiredState,
                previous: DesiredState, restore: Callable[[], Any] | None = None
                ) -> tuple[int, int]:
    """One run through the CountingProxy: (reads, writes) as the proxy counted them. With
    `restore`, the run applies changes and the seeded state is restored around it."""
    if restore is not None:
        restore()
    proxy.reset()
    _, result = one_pass(counted, desired, previous)
    if restore is not None:
        _applied(result)
        restore()
    else:
        _expect_converged(result)
    return proxy.reads(), proxy.writes()


def _applied(result: PassResult) -> int:
    if not result.ok or result.applied is None:
        raise RuntimeError(f"bench: the reconcile failed: {result.plan.errors}")
    return len(result.applied.applied)


def _records(result: PassResult) -> int:
    applied = result.applied.applied if result.applied is not None else []
    return sum(len(evidence.writes_for(a.change, a.commit, 0.0)) for a in applied)


def _expect_converged(result: PassResult) -> None:
    if not result.ok or result.plan.changes:
        raise RuntimeError("bench: the registry is not in the seeded state "
                           f"({len(result.plan.changes)} pending changes); delete .bench/")
