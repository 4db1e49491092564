"""Lease-based leader election: one leader, takeover after expiry or release, the real API
server's optimistic concurrency deciding races (tests/apiserver.py), and the renew deadline kept
while a Lease request hangs."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pytest

from contentgen.controller.runtime import leader as election
from contentgen.controller.runtime.leader import LeaderElector, Timing, decide
from tests.apiserver import ApiError, admin, fresh_namespace

TIMING = Timing(lease_duration=15, renew_deadline=10, retry_period=2)
WALL = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def lease(holder: str, version: str = "7") -> dict[str, Any]:
    return {
        "metadata": {"name": "contentgen", "namespace": "contentgen", "resourceVersion": version},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "leaseTransitions": 2},
    }


def test_decide() -> None:
    created = decide(None, "a", 100.0, 100.0, TIMING, "contentgen", "contentgen", WALL)
    assert created is not None and created["spec"]["holderIdentity"] == "a"
    # another holder's lease is valid until leaseDuration after we last saw it change
    assert decide(lease("b"), "a", 110.0, 100.0, TIMING, "contentgen", "contentgen", WALL) is None
    taken = decide(lease("b"), "a", 115.5, 100.0, TIMING, "contentgen", "contentgen", WALL)
    assert (
        taken is not None
        and taken["spec"]["holderIdentity"] == "a"
        and taken["spec"]["leaseTransitions"] == 3
    )
    # our own lease is always renewed; a released one (no holder) is taken at once
    assert decide(lease("a"), "a", 101.0, 100.0, TIMING, "contentgen", "contentgen", WALL) is not None
    assert decide(lease(""), "a", 100.0, 100.0, TIMING, "contentgen", "contentgen", WALL) is not None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_lease_carries_wall_clock_times_not_the_monotonic_clock() -> None:
    created = decide(None, "a", 100.0, 100.0, TIMING, "contentgen", "contentgen", WALL)
    assert created is not None
    assert created["spec"]["acquireTime"] == created["spec"]["renewTime"] == "2027-01-15T08:00:00.000000Z"
    taken = decide(lease("b"), "a", 200.0, 100.0, TIMING, "contentgen", "contentgen", WALL + 1.5)
    assert taken is not None and taken["spec"]["acquireTime"] == "2027-01-15T08:00:01.500000Z"


def test_timings_that_would_allow_two_leaders_are_refused() -> None:
    with pytest.raises(ValueError, match="lease_duration"):
        Timing(lease_duration=10, renew_deadline=10)
    with pytest.raises(ValueError, match="request_timeout"):
        Timing(request_timeout=5)


class Memory:
    """A Lease kept in memory, with the API server's conflict rule; `hang` makes reads block."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.writes: list[dict[str, Any]] = []
        self.hang = threading.Event()
        self.unblock = threading.Event()
        self.hanging = threading.Event()  # a read is blocked now

    def read(self) -> dict[str, Any] | None:
        if self.hang.is_set():
            self.hanging.set()
            self.unblock.wait()
            self.hanging.clear()
            raise TimeoutError("read timed out")
        return self.lease

    def write(self, body: dict[str, Any], create: bool) -> dict[str, Any]:
        current = str(self.version) if self.lease is not None else None
        if (body["metadata"].get("resourceVersion") if not create else None) != current:
            raise RuntimeError("409 Conflict")
        self.version += 1
        self.lease = {**body, "metadata": {**body["metadata"], "resourceVersion": str(self.version)}}
        self.writes.append(self.lease)
        return self.lease


def memory_elector(memory: Memory, identity: str, timing: Timing, clock: Any = None) -> LeaderElector:
    kwargs = {"clock": clock} if clock is not None else {}
    return LeaderElector(
        identity,
        memory.read,
        memory.write,
        name="contentgen",
        namespace="contentgen",
        timing=timing,
        wall=lambda: WALL,
        **kwargs,
    )


def test_the_leader_stops_at_its_renew_deadline_while_a_renew_still_hangs() -> None:
    """The old code looked at the deadline only after a renew returned (which took up to 120 s
    with the client's retries): here the renew never returns until the leader has given up."""
    memory = Memory()
    timing = Timing(lease_duration=1.5, renew_deadline=1.0, retry_period=0.2, request_timeout=0.3)
    leader = memory_elector(memory, "a", timing)  # the real monotonic clock
    assert leader.acquire(threading.Event()) and leader.holds()
    lost, stop = threading.Event(), threading.Event()
    keeper = threading.Thread(target=leader.keep, args=(stop, lost.set), daemon=True)
    memory.hang.set()
    keeper.start()
    try:
        assert lost.wait(60), "the leader never gave up"
        assert memory.hanging.is_set(), "the deadline was only enforced after the request returned"
        assert not leader.holds() and not leader.leading.is_set()
        election.current = leader
        assert not election.may_act()  # every write of this process is refused from now on
    finally:
        election.current = None
        memory.unblock.set()
        stop.set()
        keeper.join(30)
    assert not keeper.is_alive()
    assert len(memory.writes) == 1  # a leader that lost the Lease does not release it


def test_the_deadline_counts_from_the_start_of_the_last_successful_renew() -> None:
    memory, clock = Memory(), Clock()
    leader = memory_elector(memory, "a", TIMING, clock)
    assert leader.acquire(threading.Event())
    clock.now += 9.9
    assert leader.holds()
    clock.now += 0.1  # renew_deadline after the acquiring try started
    assert not leader.holds()


def test_a_clean_stop_releases_the_lease_once() -> None:
    memory = Memory()
    timing = Timing(lease_duration=1.5, renew_deadline=1.0, retry_period=0.2, request_timeout=0.3)
    leader = memory_elector(memory, "a", timing)
    assert leader.acquire(threading.Event())
    stop = threading.Event()
    keeper = threading.Thread(target=leader.keep, args=(stop, lambda: None), daemon=True)
    keeper.start()
    stop.set()
    keeper.join(30)
    leader.release()  # what run_operator does after kopf stops: nothing left to release
    releases = [w for w in memory.writes if w["spec"]["holderIdentity"] == ""]
    assert len(releases) == 1 and memory.lease is not None and memory.lease["spec"]["holderIdentity"] == ""


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
