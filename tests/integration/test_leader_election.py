"""Leader election with the real `kubernetes` client over HTTP against the in-process Lease
store (tests/support/lease_store.py), because no real API server can run on this machine.
Durations are short (lease 2 s, renew deadline 1 s, retry 0.2 s) so each test takes seconds."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timezone

import pytest
from mlflow_gitops.adapters.kube import EventRecorder, KubeLeaseStore, ObjectRef, api_client
from mlflow_gitops.loop.leader import (
    ElectionConfig,
    LeaderElector,
    LeaseConflict,
    LeaseNotFound,
    LeaseRecord,
)

from tests.support.lease_store import LeaseStoreServer

NS, NAME = "mlflow-gitops", "mlflow-gitops"
LEASE, RENEW, RETRY = 2, 1.0, 0.2


@pytest.fixture()
def api() -> Iterator[LeaseStoreServer]:
    with LeaseStoreServer() as server:
        yield server


@pytest.fixture()
def elector(api: LeaseStoreServer) -> Iterator[Callable[[str], LeaderElector]]:
    started: list[LeaderElector] = []

    def make(identity: str) -> LeaderElector:
        store = KubeLeaseStore(api_client(host=api.url), NS, NAME, request_timeout=1.0)
        config = ElectionConfig(identity, lease_duration=LEASE, renew_deadline=RENEW,
                                retry_period=RETRY)
        candidate = LeaderElector(store, config)
        candidate.start()
        started.append(candidate)
        return candidate

    yield make
    for candidate in started:
        candidate.stop(release=False, timeout=5)


def wait_for(condition: Callable[[], bool], timeout: float) -> float:
    """Seconds until `condition()` held; fails the test after `timeout`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(0.02)
    return time.monotonic() - start


def record(identity: str) -> LeaseRecord:
    now = datetime.now(timezone.utc)
    return LeaseRecord(identity, LEASE, now, now)


def holder(api: LeaseStoreServer) -> str:
    return str(api.store.get(NS, NAME)["spec"].get("holderIdentity", ""))


def test_first_candidate_acquires_by_creating_the_lease(api, elector) -> None:
    """A lone candidate creates the Lease and leads, holding it for its own identity."""
    a = elector("pod-a")
    wait_for(lambda: a.is_leader, 3)
    assert holder(api) == "pod-a"
    assert ("POST", f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases", 201) in api.requests
    assert api.store.get(NS, NAME)["spec"]["leaseDurationSeconds"] == LEASE


def test_second_candidate_stays_standby_while_the_leader_renews(api, elector) -> None:
    """While the leader keeps renewing, a second candidate never leads."""
    a = elector("pod-a")
    wait_for(lambda: a.is_leader, 3)
    b = elector("pod-b")
    deadline = time.monotonic() + 2.5 * LEASE
    while time.monotonic() < deadline:
        assert a.is_leader and not b.is_leader
        time.sleep(0.05)
    assert holder(api) == "pod-a" and b.leader == "pod-a"


def test_renewals_bump_the_resource_version(api, elector) -> None:
    """The leader renews by replace, so renewTime moves and every write is a new version."""
    a = elector("pod-a")
    wait_for(lambda: a.is_leader, 3)
    first = api.store.get(NS, NAME)
    time.sleep(3 * RETRY)
    later = api.store.get(NS, NAME)
    assert later["spec"]["renewTime"] > first["spec"]["renewTime"]
    assert int(later["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    assert later["spec"]["acquireTime"] == first["spec"]["acquireTime"]


def test_release_lets_the_standby_take_over_at_once(api, elector) -> None:
    """A leader that stops with release hands over well within one lease duration."""
    a = elector("pod-a")
    wait_for(lambda: a.is_leader, 3)
    b = elector("pod-b")
    wait_for(lambda: b.leader == "pod-a", 3)
    a.stop(release=True, timeout=5)
    assert not a.is_leader
    took = wait_for(lambda: b.is_leader, LEASE)
    assert took < LEASE / 2  # one acquire retry (jittered), not a lease expiry
    assert holder(api) == "pod-b"
    assert api.store.get(NS, NAME)["spec"]["leaseTransitions"] == 1


def test_a_killed_leader_is_taken_over_only_after_the_lease_expires(api, elector) -> None:
    """A holder that stops renewing without release (SIGKILL) is replaced only after expiry."""
    a = elector("pod-a")
    wait_for(lambda: a.is_leader, 3)
    b = elector("pod-b")
    wait_for(lambda: b.leader == "pod-a", 3)
    a.stop(release=False, timeout=5)
    killed = time.monotonic()
    took = wait_for(lambda: b.is_leader, 3 * LEASE)
    # The last renewal was at most one retry period before the kill.
    assert took >= LEASE - RETRY - 0.05
    assert took <= LEASE + 1.0
    assert time.monotonic() - killed >= LEASE - RETRY - 0.05
    assert holder(api) == "pod-b"


def test_a_leader_that_cannot_renew_stops_leading_by_the_renew_deadline(api, elector) -> None:
    """When the API server is unreachable, the leader stops leading within the renew deadline."""
    a = elector("pod-a")
    wait_for(lambda: a.is_leader, 3)
    api.outage = True
    took = wait_for(lambda: not a.is_leader, 2 * RENEW)
    assert took <= RENEW + 0.1
    api.outage = False
    wait_for(lambda: a.is_leader, 2 * LEASE)  # nobody else took it: it re-acquires


def test_replace_with_a_stale_resource_version_is_a_conflict(api) -> None:
    """Replace guarded by an old resourceVersion gets 409 and leaves the Lease unchanged."""
    store = KubeLeaseStore(api_client(host=api.url), NS, NAME)
    with pytest.raises(LeaseNotFound):
        store.read()
    first = store.create(record("pod-a"))
    second = store.replace(replace(first, holder="pod-b"))
    assert int(second.resource_version or 0) > int(first.resource_version or 0)
    with pytest.raises(LeaseConflict):
        store.replace(replace(first, holder="pod-c"))
    with pytest.raises(LeaseConflict):
        store.create(record("pod-d"))
    assert store.read().holder == "pod-b"
    assert api.requests[-3][2] == 409 and api.requests[-2][2] == 409


def test_an_event_lands_on_the_named_object(api) -> None:
    """emit_event creates a core/v1 Event on the given object in the controller's namespace."""
    recorder = EventRecorder(api_client(host=api.url), NS, instance="pod-a")
    recorder.emit_event(ObjectRef("Pod", "pod-a", NS), "Promoted",
                        "churn-model v3 -> production", event_type="Normal")
    [event] = api.store.events
    assert event["involvedObject"] == {"apiVersion": "v1", "kind": "Pod", "name": "pod-a",
                                       "namespace": NS}
    assert event["reason"] == "Promoted" and event["type"] == "Normal"
    assert event["source"] == {"component": "mlflow-gitops"}



def test_lease_remaining_is_what_the_leader_may_still_use(
        elector: Callable[[str], LeaderElector]) -> None:
    """The leader reports at most the lease duration left, renewed as it goes; a standby and
    a stopped leader report none, so no write starts there."""
    a = elector("a")
    wait_for(lambda: a.is_leader, 3)
    b = elector("b")
    for _ in range(10):
        assert LEASE - 2 * RETRY - 0.3 < a.lease_remaining() <= LEASE
        time.sleep(RETRY / 2)
    assert b.lease_remaining() == 0.0
    a.stop(release=True, timeout=5)
    assert a.lease_remaining() == 0.0
