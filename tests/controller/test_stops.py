"""A person's stop in a cluster (controller/stops.py, docs/cluster-training.md#stopping-early): the
annotation contentgen.io/stop, which the worker follows; the operator refuses another value (an
Event and status.stopProblem, as a bad promoted-checkpoints), removes the annotation once no run
goes (saying so where there was nothing to stop), and says a version that stopped early."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from contentgen.api.lora import STOP_ANNOTATION, TrainingStop
from contentgen.controller.decide import World, decide
from tests.harness.controller import NOW, apply, job, lora_result, resource


def running() -> Any:
    res = resource()
    return apply(res, decide(res, World(now=NOW)))


def succeeded(stopped: TrainingStop | None) -> Any:
    res = running()
    made = lora_result(1, 1)
    assert made.lora is not None
    made.lora.stopped = stopped
    return res, decide(res, World(now=NOW, jobs=(job(complete=True),), outcome=made))


ASKED = TrainingStop(
    how="asked", step=520, planned_steps=1000, why="alice asked it to stop", by="alice", steps_saved=480
)


def test_a_stop_while_the_run_goes_is_left_to_the_worker_and_removed_once_it_ended() -> None:
    res = replace(running(), annotations={STOP_ANNOTATION: "keep-best"})
    going = decide(res, World(now=NOW, jobs=(job(),)))
    assert going.remove_annotation == "" and going.events == []  # the worker follows it
    res, ended = succeeded(ASKED)
    ended = decide(replace(apply(res, ended), annotations={STOP_ANNOTATION: "keep-best"}), World(now=NOW))
    assert ended.remove_annotation == STOP_ANNOTATION and ended.events == []  # followed: said already


def test_the_version_that_stopped_early_is_said_with_what_it_saved() -> None:
    why = "the likeness has not bettered step 400's"
    stop = ASKED.model_copy(
        update={"how": "plateau", "why": why, "gpu_seconds_saved": 960.0, "saved_usd": 0.53}
    )
    _, ended = succeeded(stop)
    [said] = [e for e in ended.events if e.reason == "TrainingStopped"]
    assert said.type == "Normal"
    assert said.message.startswith("version 1 stopped after step 520 of 1000 (plateau: the likeness has not")
    assert said.message.endswith("saved 480 steps not run, 960 GPU-seconds, $0.53")
    _, whole = succeeded(None)
    assert not [e for e in whole.events if e.reason == "TrainingStopped"]


def test_a_stop_with_nothing_to_stop_is_removed_and_said() -> None:
    res, ended = succeeded(None)
    stale = decide(replace(apply(res, ended), annotations={STOP_ANNOTATION: "keep-best"}), World(now=NOW))
    assert stale.remove_annotation == STOP_ANNOTATION
    [said] = stale.events
    assert (said.type, said.reason) == ("Warning", "StopRefused")
    assert "no run was going to stop (the latest ended Succeeded)" in said.message


def test_another_value_is_refused_in_the_status_and_an_event_once() -> None:
    res = replace(running(), annotations={STOP_ANNOTATION: "now"})
    d = decide(res, World(now=NOW, jobs=(job(),)))
    assert "'now' is not a stop this operator knows: write keep-best" in d.status["stopProblem"]
    assert [(e.type, e.reason) for e in d.events] == [("Warning", "StopRefused")] and not d.remove_annotation
    res = apply(res, d)
    assert decide(res, World(now=NOW, jobs=(job(),))).events == []  # said once
    fixed = decide(replace(res, annotations={}), World(now=NOW, jobs=(job(),)))
    assert "stopProblem" not in fixed.status
