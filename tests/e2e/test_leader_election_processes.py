"""Two and then three `mlflow-gitops run --leader-elect` processes against one Lease, one
MLflow server and one git remote: only the Lease holder reconciles, SIGTERM hands over at
once, SIGKILL only after the lease expired, and no two replicas ever write in overlapping
windows.

The Lease lives in `tests/support/lease_store.py`, an in-process stand-in for the Kubernetes
API server that implements the Lease semantics (409 on a conflicting create or a stale
`resourceVersion`) over HTTP for the real `kubernetes` client: this machine has no
kube-apiserver, k3s, kind or envtest binary and no container runtime, so a real API server
is out of reach. Every write the store accepts is recorded with its wall-clock time, which
gives each replica's tenure on the Lease as the API server saw it; the controllers' own
"applied" log lines (same machine, same clock) must fall inside their writer's tenure.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from mlflow_gitops.loop.leader import JITTER
from prometheus_client.parser import text_string_to_metric_families

from tests.support.controller_proc import ControllerProcess, wait_until
from tests.support.envfiles import env_files
from tests.support.gitrepos import bare_remote, commit_all, git
from tests.support.lease_store import LeaseStore, LeaseStoreServer
from tests.support.registry_helpers import make_model, stages_of

pytestmark = pytest.mark.slow

NAMESPACE, LEASE = "mlops", "mlflow-gitops"
LEASE_DURATION, RENEW_DEADLINE, RETRY = 3, 2.0, 0.5
# The longest a candidate sleeps between two looks at the Lease (client-go's jittered wait).
MAX_POLL = RETRY * (1 + JITTER)
STANDBY = "standby: another replica holds the lease"


class Replica(ControllerProcess):
    def __init__(self, identity: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.identity = identity


@dataclass(frozen=True)
class Write:
    at: float  # time.time() when the store accepted it
    holder: str


def record_writes(store: LeaseStore) -> list[Write]:
    """Wrap the store so every accepted Lease write is noted, in order, with its time."""
    writes: list[Write] = []
    original = store._store

    def recording(ns: str, name: str, body: dict[str, Any], created: Any) -> dict[str, Any]:
        lease = original(ns, name, body, created)  # raises before storing on invalid input
        writes.append(Write(time.time(), lease["spec"].get("holderIdentity") or ""))
        return lease

    store._store = recording  # type: ignore[method-assign]
    return writes


def tenures(writes: list[Write]) -> list[tuple[str, float, float]]:
    """(holder, from, until) for each uninterrupted holding of the Lease; `until` is the
    first write by anyone else (a release, a takeover), or infinity."""
    out: list[tuple[str, float, float]] = []
    for w in writes:
        if out and out[-1][0] == w.holder:
            continue
        if out:
            out[-1] = (out[-1][0], out[-1][1], w.at)
        out.append((w.holder, w.at, float("inf")))
    return [t for t in out if t[0]]


def first_write(writes: list[Write], holder: str, after: float = 0.0) -> float:
    return next(w.at for w in writes if w.holder == holder and w.at >= after)


def holder(api: LeaseStoreServer) -> str:
    lease = api.store.leases.get((NAMESPACE, LEASE))
    return (lease or {}).get("spec", {}).get("holderIdentity") or ""


def leader_gauge(proc: ControllerProcess) -> float | None:
    for family in text_string_to_metric_families(proc.metrics()):
        for sample in family.samples:
            if sample.name == "mlflow_gitops_leader":
                return sample.value
    return None


def applied(proc: ControllerProcess) -> list[dict[str, Any]]:
    return [r for r in proc.log_records() if r.get("message", "").startswith("applied")]


def messages(proc: ControllerProcess) -> list[str]:
    return [r.get("message", "") for r in proc.log_records()]


def epoch(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(record["time"]).timestamp()


def push(work: Path, files: dict[str, str], message: str) -> str:
    for rel, text in files.items():
        (work / rel).write_text(text)
    sha = commit_all(work, message)
    git(work, "push", "-q", "origin", "HEAD:main")
    return sha


def test_only_the_lease_holder_writes_and_handover_follows_the_lease(
        tmp_path: Path, mlflow_server: Any, mlflow_client: Any, unique: str,
        controllers: list[Replica]) -> None:
    """Exactly one of two replicas reconciles; SIGTERM hands the Lease over within one renew
    period, SIGKILL only once the lease duration has run out; writes never overlap."""
    model = f"lease-{unique}"
    make_model(mlflow_client, model, 3)
    bare, work = bare_remote(tmp_path, env_files(model, production=1, staging=2))
    timings: dict[str, float] = {}

    with LeaseStoreServer() as api:
        writes = record_writes(api.store)

        def replica(identity: str) -> Replica:
            proc = Replica(
                identity, tmp_path, f"file://{bare}", mlflow_server.uri, "--leader-elect",
                "--lease-name", LEASE, "--lease-namespace", NAMESPACE,
                "--lease-duration", str(LEASE_DURATION), "--renew-deadline",
                str(RENEW_DEADLINE), "--retry-period", str(RETRY), "--identity", identity,
                "--kube-api-server", api.url, "--events", interval=0.5)
            controllers.append(proc)
            return proc

        # 1. Two replicas started together: exactly one reconciles.
        a, b = replica("replica-a"), replica("replica-b")
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(Replica.start, (a, b)))
        wait_until(lambda: stages_of(mlflow_client, model) == {
            1: "Production", 2: "Staging", 3: "None"}, message="first sync by the leader")
        first, standby = (a, b) if holder(api) == "replica-a" else (b, a)
        wait_until(lambda: leader_gauge(first) == 1 and leader_gauge(standby) == 0,
                   message="leader gauges 1 / 0")
        assert first.status()["leader"] is True
        assert standby.status()["leader"] is False
        assert standby.status()["last_pass"]["passes"] == 0
        # The replica that lost the create race learns the holder on its next look.
        wait_until(lambda: STANDBY in messages(standby), message="the standby says so")
        assert "became leader" not in messages(standby)
        # The "applied" lines are logged when the pass reports, after its ledger records.
        wait_until(lambda: len(applied(first)) == 2, message="the leader logs its changes")
        assert len(applied(first)) == 2 and applied(standby) == []
        assert {(r["model"], r["to"]) for r in applied(first)} == {
            (model, "Production"), (model, "Staging")}

        # 2. SIGTERM: the leader finishes, releases the Lease, and the standby takes over.
        signalled_at = time.time()
        assert first.terminate() == 0
        exited_at = time.time()
        wait_until(lambda: holder(api) == standby.identity, timeout=5, every=0.02,
                   message="the standby takes the released lease")
        releases = [w.at for w in writes if w.holder == ""]
        assert releases, "SIGTERM released the lease (empty holder)"
        released_at = releases[-1]
        took_at = first_write(writes, standby.identity)
        timings["sigterm_release_to_takeover"] = took_at - released_at
        timings["sigterm_to_takeover"] = took_at - signalled_at
        assert signalled_at < released_at <= exited_at, "released on the way out"
        assert "released lease" in messages(first)
        # The standby notices the empty holder at its next look (at most MAX_POLL away) and
        # takes over at once: well within one renew deadline of the signal.
        assert took_at - released_at <= MAX_POLL + 0.3
        assert took_at - signalled_at <= RENEW_DEADLINE
        wait_until(lambda: standby.status()["leader"] is True and leader_gauge(standby) == 1,
                   timeout=3, message="the new leader reports leader 1")
        second = standby
        sha2 = push(work, env_files(model, production=2, staging=3), "promote v2")
        wait_until(lambda: stages_of(mlflow_client, model) == {
            1: "Archived", 2: "Production", 3: "Staging"}, message="v2 applied by new leader")
        wait_until(lambda: second.status()["last_applied_commit"] == sha2, message="status")
        assert {r["commit"] for r in applied(second)} == {sha2}

        # 3. A third replica stands by; SIGKILL the leader: no release, so the third one
        #    waits out the lease duration from the last renewal it saw.
        third = replica("replica-c")
        third.start()
        wait_until(lambda: STANDBY in messages(third) and leader_gauge(third) == 0,
                   message="the third replica stands by")
        time.sleep(MAX_POLL)  # let it look at the Lease at least once while it is renewed
        assert third.status()["leader"] is False and applied(third) == []
        killed_at = time.time()
        second.kill()
        wait_until(lambda: holder(api) == "replica-c",
                   timeout=LEASE_DURATION + 2 * MAX_POLL + 3, every=0.02,
                   message="the third replica takes the expired lease")
        took_at = first_write(writes, "replica-c")
        last_renewal = max(w.at for w in writes if w.holder == second.identity)
        timings["sigkill_to_takeover"] = took_at - killed_at
        timings["last_renewal_to_takeover"] = took_at - last_renewal
        # Never before the lease, as last renewed, has run its full duration ...
        assert took_at - last_renewal >= LEASE_DURATION
        assert took_at - killed_at >= LEASE_DURATION - RETRY - 0.2
        # ... and within it plus the time to notice the last renewal and then the expiry.
        assert took_at - killed_at <= LEASE_DURATION + 2 * MAX_POLL + 0.5
        wait_until(lambda: third.status()["leader"] is True and leader_gauge(third) == 1,
                   timeout=3, message="the third replica reports leader 1")
        sha3 = push(work, env_files(model, production=3, staging=2), "promote v3")
        wait_until(lambda: stages_of(mlflow_client, model) == {
            1: "Archived", 2: "Staging", 3: "Production"}, message="v3 applied by the third")
        wait_until(lambda: third.status()["last_applied_commit"] == sha3, message="status")
        assert third.terminate() == 0

        # 4. Every write lies inside its writer's tenure on the Lease; tenures are disjoint,
        #    so no two replicas wrote in overlapping windows.
        held = tenures(writes)
        assert [h for h, _, _ in held] == [first.identity, second.identity, "replica-c"]
        for (_, _, until), (_, since, _) in zip(held, held[1:], strict=False):
            assert until <= since
        by_identity = {p.identity: applied(p) for p in (a, b, third)}
        for identity, records in by_identity.items():
            for record in records:
                done = epoch(record) + 0.001  # log times are truncated to milliseconds
                began = done - 0.001 - float(record["duration_seconds"])
                assert any(h == identity and since <= began and done <= until
                           for h, since, until in held), (identity, record, held)
        spans = [(min(map(epoch, r)), max(map(epoch, r)))
                 for r in (by_identity[first.identity], by_identity[second.identity],
                           by_identity["replica-c"])]
        assert all(r for r in by_identity.values())
        assert spans[0][1] < spans[1][0] and spans[1][1] < spans[2][0]

        # Events: one per applied change, on the Pod of the replica that applied it.
        events = [e for e in api.store.events if e["source"]["component"] == "mlflow-gitops"]
        for identity, records in by_identity.items():
            mine = [e for e in events if e["involvedObject"]["name"] == identity]
            assert len(mine) == len(records), (identity, mine)
            assert all(e["involvedObject"]["kind"] == "Pod" and e["type"] == "Normal"
                       and e["involvedObject"]["namespace"] == NAMESPACE
                       and e["reportingInstance"] == identity for e in mine)
        promoted = [e for e in events if e["reason"] == "Promoted"]
        assert {e["involvedObject"]["name"] for e in promoted} == set(by_identity)

    print("\nleader election timings (s):", {k: round(v, 3) for k, v in timings.items()})
