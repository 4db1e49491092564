"""The Job index lags the operator's own writes: a Job it created is kept as a placeholder until
the Job's watch shows it (reconciler._jobs). The placeholder must be the Job as it was made (a spec
change decides by what the Job runs), and the watch's sight of the Job, deleted or not, retires
it."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from contentgen.controller.handlers import job_changed
from contentgen.controller.informer import Store
from contentgen.controller.kube import Kube
from contentgen.controller.observe import JobState, job_state
from contentgen.controller.queue import Backoff, NamespaceQueue
from contentgen.controller.reconcile import World, decide
from contentgen.controller.reconciler import _jobs, _start_job
from contentgen.controller.settings import OperatorSettings
from contentgen.controller.state import Operator

from .test_reconcile import NOW, apply, resource


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
