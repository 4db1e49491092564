"""The operator reads a resource's status as its kind's API model (controller/status.py), and reading
never fails: a status written by an older operator, one cut short, or one with fields only a newer
operator knows reads as far as it can, and the status written back keeps what was not understood."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

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


def test_a_reference_reads_the_fields_of_a_lora_trainings_status_under_their_own_names_and_types() -> None:
    """observe.ReferencedLora, the part of a LoraTraining's status a loraRef reads on every event,
    is LoraTrainingStatus's fields: a field renamed or retyped there is renamed or retyped here."""
    from contentgen.api.lora import LoraTrainingStatus, LoraVersion
    from contentgen.controller.observe import ReferencedLora, ReferencedVersion

    for part, whole in ((ReferencedLora, LoraTrainingStatus), (ReferencedVersion, LoraVersion)):
        for name, field in part.model_fields.items():
            if name == "versions":
                continue
            assert name in whole.model_fields, f"{part.__name__}.{name} is not a field of {whole.__name__}"
            theirs = whole.model_fields[name]
            assert (field.annotation, field.is_required(), field.alias) == (
                theirs.annotation,
                theirs.is_required(),
                theirs.alias,
            ), name
            assert [repr(m) for m in field.metadata] == [repr(m) for m in theirs.metadata], name


def _as_the_whole_status_reads(body: dict[str, Any]) -> tuple[Any, ...]:
    """What lora_state gave when it read the whole status (before ReferencedLora)."""
    from contentgen.controller.status import read_status

    status = read_status(KINDS["LoraTraining"], body.get("status") or {})
    usable = tuple(
        (v.version, v.model_uri, v.provider, v.trigger_word, v.dataset_uri)
        for v in status.versions  # type: ignore[attr-defined]
        if v.model_uri
    )
    return (
        str(status.phase or ""),
        status.latest_version,  # type: ignore[attr-defined]
        ready_reason(status),
        status.message,
        status.older_versions,
        usable,
    )


def test_a_loras_state_read_from_its_part_of_the_status_is_what_the_whole_status_gives() -> None:
    """Long, damaged, legacy and promoted statuses: the narrow read drops and keeps the same versions."""
    from contentgen.api.lora import PROMOTED_ANNOTATION
    from contentgen.controller.observe import lora_state
    from tests.harness.grown_status import grown_status

    grown, _ = grown_status("LoraTraining", 40)
    damaged = copy.deepcopy(grown)
    versions = damaged["versions"]
    del versions[0]["sha256"]  # a required field missing: read as its zero, the version kept
    versions[1]["sizeBytes"] = "many"  # a required field unreadable: the version goes
    versions[2]["modelUri"] = ""  # no model: not usable
    versions[3]["likeness"] = {"checkpoints": "garbled"}  # what a reference does not read
    versions[4]["triggerWord"] = 7
    legacy = {"phase": "Succeeded", "outputs": {"modelUri": "s3://b/m.safetensors", "triggerWord": "x"}}
    for status in (grown, damaged, legacy, {}, {**WRITTEN, "versions": grown["versions"][:3]}):
        body: dict[str, Any] = {"metadata": {"name": "style", "uid": "u"}, "spec": {}, "status": status}
        state = lora_state(body)
        read = (
            state.phase,
            state.latest_version,
            state.reason,
            state.message,
            state.older_versions,
            tuple((v.number, v.model_uri, v.provider, v.trigger_word, v.dataset_uri) for v in state.usable),
        )
        assert read == _as_the_whole_status_reads(body)
    last = grown["versions"][-1]
    step = last["likeness"]["checkpoints"][0]
    promoted = {
        "metadata": {
            "name": "style",
            "uid": "u",
            "annotations": {PROMOTED_ANNOTATION: json.dumps({str(last["version"]): step["step"]})},
        },
        "status": grown,
    }
    chosen = dict(lora_state(promoted).model_uris)[last["version"]]
    assert chosen == step["modelUri"] != last["modelUri"]
