"""Lease-based leader election: one leader, takeover after expiry or release, and the API
server's optimistic concurrency deciding races (through the control plane's pipeline)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from contentgen.cluster.errors import ApiError
from contentgen.controller.leader import LeaderElector, Timing, decide
from tests.cluster.api_fixtures import Api, control_plane

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


def elector(api: Api, identity: str, clock: Clock) -> LeaderElector:
    def read() -> dict[str, Any] | None:
        try:
            return api.get("coordination.k8s.io", "leases", "contentgen", "contentgen")
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def write(body: dict[str, Any], create: bool) -> dict[str, Any]:
        if create:
            return api.create("coordination.k8s.io", "leases", body, "contentgen")
        return api.call("update", "coordination.k8s.io", "leases", "contentgen", "contentgen", body).body  # type: ignore[no-any-return]

    return LeaderElector(
        identity, read, write, name="contentgen", namespace="contentgen", timing=TIMING, clock=clock
    )


@pytest.fixture
def api(tmp_path: Path) -> Api:
    return Api(control_plane(tmp_path).plane)


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
    held = api.get("coordination.k8s.io", "leases", "contentgen", "contentgen")["spec"]
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
    stale = api.get("coordination.k8s.io", "leases", "contentgen", "contentgen")
    assert b.try_acquire_or_renew()
    # a writes from what it read before b took over: the server refuses the stale update
    with pytest.raises(ApiError) as info:
        api.call("update", "coordination.k8s.io", "leases", "contentgen", "contentgen", stale)
    assert info.value.code == 409


def test_keep_gives_up_when_renewing_fails(api: Api) -> None:
    clock = Clock()
    a = elector(api, "a", clock)
    assert a.acquire(threading.Event())
    lost = threading.Event()

    def failing_read() -> dict[str, Any] | None:
        clock.now += 6
        raise ApiError(500, "InternalError", "down")

    a.read = failing_read  # type: ignore[method-assign]
    a.timing = Timing(lease_duration=15, renew_deadline=10, retry_period=0.01)
    a.keep(threading.Event(), lost.set)
    assert lost.is_set() and not a.leading.is_set()
