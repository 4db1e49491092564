"""A spec change while a run is in flight: the policy (supersede.py) and the decisions around it
(decide.decide), from the stop of the old Job to the start of the new generation."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from contentgen.api import SpecSnapshot
from contentgen.controller.decide import Observed, World, decide
from contentgen.controller.jobs import render_job
from contentgen.controller.observe import JobState, job_state
from contentgen.controller.settings import OperatorSettings
from contentgen.controller.supersede import Superseded, inputs_digest, spent, superseding
from contentgen.pricing import PriceTable
from contentgen.providers.cancel import (
    BILLED_IF_SUCCEEDED,
    MAY_BE_BILLED,
    NOT_BILLED,
    Cancelled,
    Pending,
)
from tests.harness.controller import NOW, apply, cond, reason, resource

FAL = frozenset({"fal", "offline"})
APP = "fal-ai/flux/dev"


def image(generation: int = 1, status: dict[str, Any] | None = None, **spec: Any) -> Observed:
    base = {"provider": "fal", "prompt": "a red fox", "numImages": 2, "imageSize": "landscape_4_3"}
    return resource("ImageGeneration", generation, status, **{**base, **spec})


def running_job(res: Observed, generation: int = 1, **state: Any) -> JobState:
    return JobState(
        name=f"demo-g{generation}",
        namespace="ns",
        uid=res.uid,
        generation=generation,
        version=0,
        active=1,
        ready=1,
        inputs=inputs_digest(res.spec),
        provider=str(res.spec["provider"]),
        **state,
    )


def cancelled(billing: str, request: str = "req-1") -> Cancelled:
    return Cancelled(Pending("fal", APP, request), billing, "cancelled in the queue")


def started() -> tuple[Observed, JobState]:
    """An ImageGeneration whose generation 1 runs, priced with the table."""
    res = image()
    res = apply(res, decide(res, World(now=NOW, prices=PriceTable())))
    return res, running_job(res)


# --- the policy -----------------------------------------------------------------------------------


def test_what_a_run_makes_is_its_spec_without_the_bookkeeping() -> None:
    spec = {"owner": "a", "prompt": "p", "tags": ["x"], "description": "d", "deletionPolicy": "Retain"}
    same = {"deletionPolicy": "Delete", "description": "other", "tags": [], "prompt": "p", "owner": "a"}
    assert inputs_digest(spec) == inputs_digest(same)
    assert inputs_digest(spec) != inputs_digest({**spec, "prompt": "q"})
    assert inputs_digest(spec) != inputs_digest({**spec, "seed": 1})


def test_the_new_generation_supersedes_only_a_run_that_makes_something_else_and_can_be_stopped() -> None:
    res, job = started()
    changed = {**res.spec, "prompt": "a blue fox"}
    assert superseding(job, changed, FAL)
    assert not superseding(job, {**res.spec, "tags": ["new"], "description": "x"}, FAL)  # same output
    assert not superseding(job, changed, frozenset({"offline"}))  # the operator has no FAL_KEY
    assert not superseding(replace(job, provider="assemblyai"), changed, FAL)  # AssemblyAI cannot cancel
    assert not superseding(replace(job, inputs=""), changed, FAL)  # an older operator's Job
    assert superseding(replace(job, provider="offline"), changed, frozenset({"offline"}))  # free


def test_what_the_stopped_run_cost() -> None:
    assert spent([cancelled(NOT_BILLED)], ["old-1"], ["old-1"]) == []
    assert spent([], [], []) == []
    assert spent([cancelled(NOT_BILLED), cancelled(MAY_BE_BILLED, "r2")], [], []) is None
    assert spent([cancelled(BILLED_IF_SUCCEEDED)], [], []) is None
    assert spent([cancelled(NOT_BILLED)], ["caption-1"], []) is None  # a paid caption, not yet counted


# --- the decisions ----------------------------------------------------------------------------------


def test_a_change_of_what_is_made_stops_the_run_cancels_its_requests_and_runs_the_new_generation() -> None:
    res, job = started()
    estimate = res.status["cost"]["estimatedUsd"]
    res = replace(res, generation=2, spec={**res.spec, "prompt": "a blue fox"})
    world = World(now=NOW, jobs=(job,), cancellable=FAL, prices=PriceTable())

    stopping = decide(res, world)
    assert stopping.stop_job == job and stopping.job is None
    s = stopping.status
    assert s["phase"] == "Pending" and reason(s) == "Superseding" and cond(s, "Reconciling") == "True"
    assert s["observedGeneration"] == 1 and s["jobName"] == "demo-g1"
    assert [e.reason for e in stopping.events] == ["Superseding"] and "demo-g1" in s["message"]

    res = apply(res, stopping)
    deleting = decide(res, replace(world, jobs=(replace(job, deleting=True),)))
    assert deleting.stop_job is None and deleting.job is None and reason(deleting.status) == "Superseding"
    assert deleting.events == []

    gone = decide(res, replace(world, jobs=()))  # its pod and Job are gone: nothing was lost
    assert gone.needs_cancel and gone.job is None and gone.status == res.status

    stopped = Superseded(outcomes=(cancelled(NOT_BILLED),))
    d = decide(res, replace(world, jobs=(), superseded=stopped))
    assert d.job is not None and d.job.generation == 2 and d.job.spec["prompt"] == "a blue fox"
    assert d.status["jobName"] == "demo-ig-0b7f1f3e-g2" and d.status["observedGeneration"] == 2
    assert [e.reason for e in d.events] == ["Superseded", "JobCreated"]
    event = d.events[0]
    assert event.type == "Normal" and "req-1" in event.message and "nothing was billed" in event.message
    assert sum(d.status["cost"]["byMonth"].values()) == 0  # the cancelled request cost nothing
    assert d.status["cost"]["estimatedUsd"] == pytest.approx(estimate)  # the new run's estimate


def test_a_request_that_may_have_been_billed_counts_its_estimate() -> None:
    res, job = started()
    estimate = res.status["cost"]["estimatedUsd"]
    res = replace(res, generation=2, spec={**res.spec, "prompt": "a blue fox"})
    world = World(now=NOW, jobs=(), cancellable=FAL, prices=PriceTable())
    res = apply(res, decide(res, replace(world, jobs=(job,))))
    d = decide(res, replace(world, superseded=Superseded(outcomes=(cancelled(MAY_BE_BILLED),))))
    assert d.events[0].type == "Warning" and "may be billed" in d.events[0].message
    assert sum(d.status["cost"]["byMonth"].values()) == pytest.approx(estimate)
    assert d.job is not None and d.job.generation == 2
    unseen = decide(res, replace(world, superseded=Superseded(seen=False)))  # no store to look in
    assert unseen.events[0].type == "Warning" and "unknown" in unseen.events[0].message
    assert sum(unseen.status["cost"]["byMonth"].values()) == pytest.approx(estimate)


def test_bookkeeping_changes_and_runs_that_cannot_be_stopped_finish_first() -> None:
    res, job = started()
    for spec, cancellable in (
        ({**res.spec, "tags": ["x"], "description": "new"}, FAL),
        ({**res.spec, "prompt": "a blue fox"}, frozenset({"offline"})),
    ):
        changed = replace(res, generation=2, spec=spec)
        d = decide(changed, World(now=NOW, jobs=(job,), cancellable=cancellable))
        assert d.stop_job is None and d.job is None and reason(d.status) == "SpecChanged"


def test_once_stopping_it_goes_on_even_if_the_spec_goes_back() -> None:
    res, job = started()
    changed = replace(res, generation=2, spec={**res.spec, "prompt": "a blue fox"})
    res = apply(changed, decide(changed, World(now=NOW, jobs=(job,), cancellable=FAL)))
    back = replace(res, generation=3, spec=image().spec)  # the same as generation 1 again
    d = decide(back, World(now=NOW, jobs=(replace(job, deleting=True),), cancellable=FAL))
    assert reason(d.status) == "Superseding" and d.job is None


def test_a_run_that_finished_before_it_was_stopped_is_recorded() -> None:
    from contentgen.api import RunResult

    res, job = started()
    changed = replace(res, generation=2, spec={**res.spec, "prompt": "a blue fox"})
    res = apply(changed, decide(changed, World(now=NOW, jobs=(job,), cancellable=FAL)))
    done = replace(job, deleting=True, active=0, complete=True, succeeded=1)
    result = RunResult(kind="ImageGeneration", provider="fal", generation=1, images=[], usage=[])
    first = decide(res, World(now=NOW, jobs=(done,), cancellable=FAL))
    assert first.needs_outcome == done and not first.needs_cancel
    d = decide(res, World(now=NOW, jobs=(done,), cancellable=FAL, outcome=result, prices=PriceTable()))
    assert d.outcome_recorded is not None and d.job is not None and d.job.generation == 2


def test_an_older_recorded_job_is_not_recorded_again_after_a_supersede() -> None:
    res, job = started()
    old = replace(job, name="demo-g0", generation=0, active=0, ready=0, complete=True)
    changed = replace(res, generation=2, spec={**res.spec, "prompt": "a blue fox"})
    res = apply(changed, decide(changed, World(now=NOW, jobs=(old, job), cancellable=FAL)))
    d = decide(res, World(now=NOW, jobs=(old,), cancellable=FAL))  # g1 gone; g0's Job kept by its TTL
    assert d.needs_cancel and d.needs_outcome is None


# --- what the Job records of itself ----------------------------------------------------------------


def test_the_job_says_what_it_runs_and_on_which_provider() -> None:
    spec = {"owner": "a", "provider": "fal", "prompt": "p", "tags": ["t"]}
    snap = SpecSnapshot(kind="ImageGeneration", name="x", namespace="ns", uid="u-1", generation=1, spec=spec)
    job = render_job(snap, OperatorSettings())
    state = job_state(job)
    assert state is not None and state.inputs == inputs_digest(spec) and state.provider == "fal"
    offline = job_state(render_job(snap, OperatorSettings(offline=True)))
    # what the resource asked for, run on the offline provider
    assert offline is not None and offline.inputs == inputs_digest(spec) and offline.provider == "offline"
