"""The Job index lags the operator's own writes: a Job it created is kept as a placeholder until
the Job's watch shows it (reconciler._jobs). The placeholder must be the Job as it was made (a spec
change decides by what the Job runs), and the watch's sight of the Job, deleted or not, retires
it."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

from contentgen.controller.decide import World, decide
from contentgen.controller.handlers import job_changed
from contentgen.controller.job_admission import Backoff, NamespaceQueue
from contentgen.controller.kube import Kube
from contentgen.controller.observe import JobState, job_state
from contentgen.controller.reconciler import _jobs, _start_job
from contentgen.controller.runtime.informer import Store
from contentgen.controller.settings import OperatorSettings
from contentgen.controller.state import Operator
from tests.harness.controller import NOW, apply, resource


class Jobs:
    """The API server's Job creates, all accepted."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    async def create_job(self, manifest: dict[str, Any]) -> bool:
        self.created.append(manifest)
        return True


def operator() -> Operator:
    op = Operator(
        settings=OperatorSettings(manage_worker_access=False),
        kube=Kube.__new__(Kube),
        queue=NamespaceQueue(2),
        backoff=Backoff(1.0),
    )
    op.kube = Jobs()  # type: ignore[assignment]
    op.indexes["jobs_by_owner"] = Store[JobState](lambda j: (j.namespace, j.uid))
    return op


def started(op: Operator) -> Any:
    """An offline ImageGeneration whose generation 1 has just had its Job created."""
    res = resource("ImageGeneration", prompt="a red fox")
    decision = decide(res, World(now=NOW))
    assert decision.job is not None
    asyncio.run(_start_job(op, decision.job))
    return apply(res, decision)


def test_a_spec_change_before_the_watch_shows_the_job_supersedes_it() -> None:
    op = operator()
    res = started(op)
    (placeholder,) = _jobs(op, "ns", res.uid)  # the watch has not shown it yet
    assert placeholder == job_state(op.kube.created[0])  # type: ignore[attr-defined]
    assert placeholder.inputs and placeholder.provider == "offline"

    changed = replace(res, generation=2, spec={**res.spec, "prompt": "a lighthouse"})
    decision = decide(changed, World(now=NOW, jobs=(placeholder,), cancellable=frozenset({"offline"})))
    assert decision.stop_job == placeholder  # not: generation 2 waits for a run nobody wants


def test_a_job_created_and_deleted_between_two_looks_is_not_taken_for_a_running_one() -> None:
    op = operator()
    res = started(op)
    made = op.kube.created[0]  # type: ignore[attr-defined]
    labels = made["metadata"]["labels"]
    job = job_state({**made, "status": {"active": 1}})
    assert job is not None
    store = op.indexes["jobs_by_owner"]
    # the watch's events, all before the resource is looked at again: ADDED, then DELETED
    job_changed(op, store.put(job), job, labels)
    store.pop(job.namespace, job.name)
    job_changed(op, job, None, labels)
    assert _jobs(op, "ns", res.uid) == ()
    assert not op.created_jobs


def test_a_finished_job_frees_its_slot_for_the_queue_at_once() -> None:
    """Issue 48: a namespace's queued runs start as soon as a Job finishes, whatever its owner's
    decision makes of it (even one that cannot be recorded yet: its result unreadable)."""
    from contentgen.api import KINDS
    from contentgen.controller.state import Kept

    op = operator()
    op.queue = NamespaceQueue(1)
    res = started(op)
    made = op.kube.created[0]  # type: ignore[attr-defined]
    labels = made["metadata"]["labels"]
    store = op.indexes["jobs_by_owner"]
    running = job_state({**made, "status": {"active": 1, "ready": 1}})
    assert running is not None
    job_changed(op, store.put(running), running, labels)
    waiting_uid = "1c8e2f4d-bbbb-4ccc-8ddd-223456789abc"
    kind = KINDS["ImageGeneration"]
    body = json.dumps({"metadata": {"namespace": "ns", "uid": waiting_uid}})
    op.indexes[f"{kind.plural}_by_uid"] = {("ns", waiting_uid): [Kept(body, None)]}  # type: ignore[arg-type]
    op.queue.wait("ns", waiting_uid, "2026-11-21T12:00:01Z")
    op.queue.seen("ns", [res.uid])
    asyncio.run(asyncio.sleep(0))
    key = ("ImageGeneration", "ns", waiting_uid)
    assert key not in op.work._queued  # the slot is taken: nobody woke it

    failed = replace(running, active=0, failed=1, failed_reason="BackoffLimitExceeded", finished_at="t")
    job_changed(op, store.put(failed), failed, labels)
    assert key in op.work._queued  # woken by the Job's end, before its owner is recorded
