"""The work queue's promises: one entry per key however often it is added, never two workers on
one key, and a key added while being reconciled is reconciled again afterwards."""

import asyncio

import pytest

from contentgen.controller.events import MAX_MESSAGE, event_body, event_name, transition_key
from contentgen.controller.runtime.workqueue import WorkQueue


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_a_key_added_many_times_waits_once() -> None:
    async def go() -> list[object]:
        q = WorkQueue()
        for _ in range(5):
            q.add("a")
        q.add("b")
        assert len(q) == 2
        return [await q.get(), await q.get()]

    assert run(go()) == ["a", "b"]


def test_a_key_in_progress_is_not_handed_out_again_until_done() -> None:
    async def go() -> None:
        q = WorkQueue()
        q.add("a")
        assert await q.get() == "a"
        q.add("a")  # an event arrives while "a" is reconciled
        assert len(q) == 0 and q.processing == 1
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(q.get(), 0.05)
        q.done("a")  # the change that came in between is reconciled next
        assert await asyncio.wait_for(q.get(), 1) == "a"
        q.done("a")
        assert len(q) == 0 and q.processing == 0

    run(go())


def test_done_without_new_events_does_not_requeue() -> None:
    async def go() -> None:
        q = WorkQueue()
        q.add("a")
        await q.get()
        q.done("a")
        assert len(q) == 0
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(q.get(), 0.05)

    run(go())


def test_event_names_its_object_and_cuts_long_messages() -> None:
    resource = {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "ImageGeneration",
        "metadata": {"name": "cat", "namespace": "team", "uid": "u1", "resourceVersion": "7"},
    }
    body = event_body(resource, "Warning", "Failed", "x" * 5000)
    assert body["involvedObject"] == {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "ImageGeneration",
        "name": "cat",
        "namespace": "team",
        "uid": "u1",
        "resourceVersion": "7",
    }
    assert body["metadata"]["name"].startswith("cat.")
    assert len(body["message"]) <= MAX_MESSAGE and "..." in body["message"]
    assert body["count"] == 1 and body["firstTimestamp"] == body["lastTimestamp"]


def test_an_event_of_a_transition_has_one_name_whoever_posts_it() -> None:
    """Two replicas deciding the same transition (reaching the same state of the same run) post
    one Event name: the second create is a 409, not a second Event."""
    resource = {"metadata": {"name": "cat", "namespace": "team", "uid": "u1", "resourceVersion": "7"}}
    running = transition_key({"observedGeneration": 1, "runVersion": 1, "phase": "Running", "progress": 5})
    assert running == transition_key({"observedGeneration": 1, "runVersion": 1, "phase": "Running"})
    first = event_name(resource, "Running", running)
    assert first == event_name({**resource, "status": {"progress": 9}}, "Running", running)
    assert first.startswith("cat.")
    rerun = transition_key({"observedGeneration": 2, "runVersion": 2, "phase": "Running"})
    assert first != event_name(resource, "Running", rerun)  # the next run's transition
    assert first != event_name(resource, "Stalled", running)
    other = {"metadata": {**resource["metadata"], "uid": "u2"}}  # another resource of that name
    assert first != event_name(other, "Running", running)
