"""The operator reads a resource's status as its kind's API model (controller/status.py), and reading
never fails: a status written by an older operator, one cut short, or one with fields only a newer
operator knows reads as far as it can, and the status written back keeps what was not understood."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from contentgen.api import KINDS, Phase
from contentgen.controller.decide import World, decide
from contentgen.controller.status import latest_version, likeness, read_status, ready_reason, versions
from tests.harness.controller import NOW, job, resource

WRITTEN = {
    "phase": "Succeeded",
    "observedGeneration": 2,
    "runVersion": 2,
    "jobName": "demo-lt-0b7f1f3e-g2",
    "startedAt": "2026-11-21T12:00:00Z",
    "conditions": [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Succeeded",
            "message": "done",
            "lastTransitionTime": "2026-11-21T12:05:00Z",
            "observedGeneration": 2,
        }
    ],
    "latestVersion": 2,
    "likeness": {"verdict": "poor", "reasons": ["too far"], "chosenStep": 250, "finalStep": 500},
    "cost": {"estimatedUsd": 1.5, "byMonth": {"2026-11": 3}, "countedRequests": ["r1"]},
}


def test_a_status_this_operator_wrote_reads_as_its_model() -> None:
    state = read_status(KINDS["LoraTraining"], WRITTEN)
    assert (state.phase, state.observed_generation, state.run_version) == (Phase.SUCCEEDED, 2, 2)
    assert state.started_at == datetime(2026, 11, 21, 12, tzinfo=UTC)
    assert ready_reason(state) == "Succeeded" and latest_version(state) == 2
    report = likeness(state)
    assert report is not None and (report.verdict, report.chosen_step) == ("poor", 250)
    assert state.cost is not None and state.cost.by_month == {"2026-11": 3.0}


def test_fields_of_a_newer_operator_are_left_out_and_the_rest_is_read() -> None:
    newer = copy.deepcopy(WRITTEN)
    newer["shards"] = [{"id": 1}]
    newer["conditions"][0]["severity"] = "Info"
    newer["likeness"]["calibration"] = 0.3
    before = copy.deepcopy(newer)
    state = read_status(KINDS["LoraTraining"], newer)
    assert ready_reason(state) == "Succeeded"
    report = likeness(state)
    assert report is not None and report.verdict == "poor"
    assert newer == before  # the caller's status is not repaired in place


def test_a_status_cut_short_reads_what_it_has() -> None:
    # a condition without lastTransitionTime, a version without its artifact, a value of a shape
    # this version does not read: each reads as far as it goes, and nothing raises
    partial = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "False", "reason": "Running"}],
        "versions": [{"version": 1, "generation": 1, "createdAt": "2026-11-21T12:00:00Z"}],
        "latestVersion": 1,
        "progress": "most",
        "pool": {"state": "somewhere"},
    }
    state = read_status(KINDS["Transcription"], partial)
    assert state.phase == Phase.RUNNING and ready_reason(state) == "Running"
    assert [(v.version, v.generation) for v in versions(state)] == [(1, 1)]
    assert state.progress == 0
    assert read_status(KINDS["ImageGeneration"], {"pool": {"state": "somewhere"}}).pool is None
    assert read_status(KINDS["LoraTraining"], {}).phase is None


def test_a_status_from_before_versions_reads_its_outputs_as_version_1() -> None:
    older = {
        "phase": "Succeeded",
        "observedGeneration": 1,
        "completedAt": "2026-11-21T12:00:00Z",
        "images": [
            {"uri": "s3://bkt/a.png", "sizeBytes": 1, "sha256": "ab" * 32, "seed": 1, "width": 8, "height": 8}
        ],
    }
    state = read_status(KINDS["ImageGeneration"], older)
    assert latest_version(state) == 1 and [v.version for v in versions(state)] == [1]


def test_what_the_operator_does_not_understand_is_written_back_as_it_was() -> None:
    res = resource(status={**WRITTEN, "phase": "Running", "shards": [{"id": 1}]}, generation=2)
    decision = decide(res, World(now=NOW, jobs=(job(2, version=2, ready=1),)))
    assert decision.status["shards"] == [{"id": 1}]
    assert decision.state.phase == Phase.RUNNING == decision.status["phase"]
