"""Lease-based leader election: one leader, takeover after expiry or release, and the real API
server's optimistic concurrency deciding races (tests/apiserver.py)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pytest

from contentgen.controller.leader import LeaderElector, Timing, decide
from tests.apiserver import ApiError, admin, fresh_namespace

TIMING = Timing(lease_duration=15, renew_deadline=10, retry_period=2)


def lease(holder: str, version: str = "7") -> dict[str, Any]:
    return {
        "metadata": {"name": "contentgen", "namespace": "contentgen", "resourceVersion": version},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "leaseTransitions": 2},
    }


def test_decide() -> None:
    created = decide(None, "a", 100.0, 100.0, TIMING, "contentgen", "contentgen")
    assert created is not None and created["spec"]["holderIdentity"] == "a"
    # another holder's lease is valid until leaseDuration after we last saw it change
    assert decide(lease("b"), "a", 110.0, 100.0, TIMING, "contentgen", "contentgen") is None
    taken = decide(lease("b"), "a", 115.5, 100.0, TIMING, "contentgen", "contentgen")
    assert (
        taken is not None
        and taken["spec"]["holderIdentity"] == "a"
        and taken["spec"]["leaseTransitions"] == 3
    )
    # our own lease is always renewed; a released one (no holder) is taken at once
    assert decide(lease("a"), "a", 101.0, 100.0, TIMING, "contentgen", "contentgen") is not None
    assert decide(lease(""), "a", 100.0, 100.0, TIMING, "contentgen", "contentgen") is not None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Api:
    """The Lease "contentgen" in a namespace of this test's own, on the real API server."""

    namespace: str

    @property
    def leases(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"

    def get(self) -> dict[str, Any]:
        return admin().get(f"{self.leases}/contentgen")  # type: ignore[no-any-return]

    def update(self, body: dict[str, Any]) -> dict[str, Any]:
        return admin().request("PUT", f"{self.leases}/contentgen", body=body)  # type: ignore[no-any-return]


def elector(api: Api, identity: str, clock: Clock) -> LeaderElector:
    def read() -> dict[str, Any] | None:
        return admin().get_or_none(f"{api.leases}/contentgen")  # type: ignore[no-any-return]

    def write(body: dict[str, Any], create: bool) -> dict[str, Any]:
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", **body}
        body["metadata"] = {**body["metadata"], "namespace": api.namespace}
        return admin().create(api.leases, body) if create else api.update(body)  # type: ignore[no-any-return]

    return LeaderElector(
        identity, read, write, name="contentgen", namespace=api.namespace, timing=TIMING, clock=clock
    )


@pytest.fixture
def api() -> Api:
    return Api(fresh_namespace("leader"))


def test_one_leader_then_takeover_after_expiry(api: Api) -> None:
    clock = Clock()
    a, b = elector(api, "a", clock), elector(api, "b", clock)
    assert a.try_acquire_or_renew() and not b.try_acquire_or_renew()
    clock.now += 10
    assert a.try_acquire_or_renew() and not b.try_acquire_or_renew()  # renewed: b saw it change
    clock.now += 14
    assert not b.try_acquire_or_renew()
    clock.now += 2  # a stopped renewing 16 s ago
    assert b.try_acquire_or_renew()
    held = api.get()["spec"]
    assert held["holderIdentity"] == "b" and held["leaseTransitions"] == 1


def test_a_released_lease_is_taken_at_once(api: Api) -> None:
    clock = Clock()
    a, b = elector(api, "a", clock), elector(api, "b", clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    a.release()
    assert b.try_acquire_or_renew()


def test_a_restarted_replica_takes_its_own_lease_back_at_once(api: Api) -> None:
    clock = Clock()
    assert elector(api, "pod-1", clock).try_acquire_or_renew()
    assert elector(api, "pod-1", clock).try_acquire_or_renew()  # the same pod after a crash


def test_a_lost_race_is_a_conflict_not_two_leaders(api: Api) -> None:
    clock = Clock()
    a, b = elector(api, "a", clock), elector(api, "b", clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()  # b must have seen the lease unchanged for its duration
    clock.now += 20
    stale = api.get()
    assert b.try_acquire_or_renew()
    # a writes from what it read before b took over: the server refuses the stale update
    with pytest.raises(ApiError) as info:
        api.update(stale)
    assert info.value.code == 409


def test_keep_gives_up_when_renewing_fails(api: Api) -> None:
    clock = Clock()
    a = elector(api, "a", clock)
    assert a.acquire(threading.Event())
    lost = threading.Event()

    def failing_read() -> dict[str, Any] | None:
        clock.now += 6
        raise ApiError(500, {"reason": "InternalError", "message": "down"})

    a.read = failing_read  # type: ignore[method-assign]
    a.timing = Timing(lease_duration=15, renew_deadline=10, retry_period=0.01)
    a.keep(threading.Event(), lost.set)
    assert lost.is_set() and not a.leading.is_set()
