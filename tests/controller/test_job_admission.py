"""The namespace queue: first come first served by (creationTimestamp, uid), never deadlocked."""

from __future__ import annotations

import random

import pytest

from contentgen.controller.job_admission import NamespaceQueue

SAME_SECOND = "2026-11-22T10:00:00Z"


def drain(queue: NamespaceQueue, created: dict[str, str], seed: int) -> list[str]:
    """Reconcile the waiting resources in a random order until all have run, as the operator
    does: a resource that may not start waits; a running one finishes at some point. Returns
    the order in which they started; fails if no progress is possible (a deadlock)."""
    rng = random.Random(seed)
    pending, running, started = set(created), set[str](), list[str]()
    while pending or running:
        progressed = False
        for uid in rng.sample(sorted(pending), len(pending)):
            if queue.may_start("ns", uid, created[uid], running):
                queue.start("ns", uid)
                pending.discard(uid)
                running.add(uid)
                started.append(uid)
                progressed = True
            else:
                queue.wait("ns", uid, created[uid])
        assert progressed or running, f"deadlock: {sorted(pending)} wait with nothing running"
        if running and (not progressed or rng.random() < 0.5):
            done = rng.choice(sorted(running))
            running.discard(done)
            queue.seen("ns", running)
            queue.forget("ns", done)
    return started


@pytest.mark.parametrize("seed", range(20))
def test_resources_created_in_the_same_second_all_run(seed: int) -> None:
    """`kubectl apply -f dir/`: 8 resources in one second, 2 slots: every one runs."""
    created = {f"uid-{i}": SAME_SECOND for i in range(8)}
    started = drain(NamespaceQueue(limit=2), created, seed)
    assert sorted(started) == sorted(created)


@pytest.mark.parametrize("seed", range(10))
def test_older_resources_start_first(seed: int) -> None:
    created = {f"uid-{i}": f"2026-11-22T10:00:{i:02d}Z" for i in range(6)}
    queue = NamespaceQueue(limit=1)
    for uid, ts in created.items():  # all seen waiting before the first slot frees
        queue.wait("ns", uid, ts)
    assert drain(queue, created, seed) == sorted(created, key=created.__getitem__)


def test_ties_are_broken_by_uid_on_both_sides() -> None:
    queue = NamespaceQueue(limit=1)
    for uid in ("b", "a", "c"):
        queue.wait("ns", uid, SAME_SECOND)
    assert [u for u in "abc" if queue.may_start("ns", u, SAME_SECOND, set())] == ["a"]


def test_a_started_job_the_index_does_not_show_yet_holds_its_slot() -> None:
    queue = NamespaceQueue(limit=1)
    queue.start("ns", "a")  # created; its Job's event has not come yet
    assert queue.free("ns", set()) == 0 and not queue.may_start("ns", "b", SAME_SECOND, set())
    assert queue.may_start("ns", "a", SAME_SECOND, set())  # its own Job is not counted against it
    queue.seen("ns", {"a"})  # the index shows it: counted once, not twice
    assert queue.free("ns", {"a"}) == 0 and queue.started["ns"] == set()
    queue.seen("ns", set())
    assert queue.free("ns", set()) == 1


def test_the_first_waiting_are_woken_in_order() -> None:
    queue = NamespaceQueue(limit=3)
    for uid, ts in (("c", "2026-11-22T10:00:02Z"), ("b", SAME_SECOND), ("a", SAME_SECOND)):
        queue.wait("ns", uid, ts)
    assert queue.first_waiting("ns", 2) == ["a", "b"]
    assert queue.first_waiting("ns", 0) == [] and queue.first_waiting("ns", -1) == []
    assert queue.first_waiting("other", 5) == []
