"""The operator's decisions, as a table of observed states → actions (no cluster needed)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from contentgen.api import (
    GeneratedImage,
    Likeness,
    RunFailure,
    RunResult,
    TranscriptOutput,
)
from contentgen.controller.decide import World, decide
from contentgen.controller.observe import LoraState, job_state
from tests.harness.controller import (
    JOB,
    LABELS,
    LORA_REF,
    NOW,
    SHA,
    UID,
    apply,
    cond,
    job,
    lora_result,
    reason,
    resource,
)


def test_new_resource_gets_a_job() -> None:
    d = decide(resource(), World(now=NOW))
    assert d.job is not None and d.job.version == 1 and d.job.generation == 1
    assert d.status["phase"] == "Pending" and d.status["jobName"] == f"{JOB}-g1"
    assert d.status["observedGeneration"] == 1 and d.status["startedAt"] == "2026-11-21T12:00:00Z"
    assert (
        reason(d.status),
        cond(d.status, "Ready"),
        cond(d.status, "Reconciling"),
        cond(d.status, "Stalled"),
    ) == (
        "JobCreated",
        "False",
        "True",
        "False",
    )
    assert [e.reason for e in d.events] == ["JobCreated"]


def test_a_pod_that_cannot_start_is_named() -> None:
    res = apply(resource(), decide(resource(), World(now=NOW)))
    problem = 'CreateContainerConfigError: secret "fal" not found'
    d = decide(res, World(now=NOW, jobs=(job(active=1),), pod_problem=problem))
    assert (
        d.status["phase"] == "Pending"
        and reason(d.status) == "PodNotStarting"
        and problem in d.status["message"]
    )
    assert [(e.type, e.reason) for e in d.events] == [("Warning", "PodNotStarting")]
    fixed = decide(apply(res, d), World(now=NOW, jobs=(job(active=1, ready=1),)))
    assert fixed.status["phase"] == "Running" and reason(fixed.status) == "Running"


def test_stable_once_applied() -> None:
    """Level-triggered: deciding again on what was decided changes nothing and creates nothing."""
    res = resource()
    first = decide(res, World(now=NOW))
    res = apply(res, first)
    again = decide(res, World(now=NOW + timedelta(seconds=5), jobs=(job(),)))
    assert again.job is None and again.events == [] and again.status == res.status


def test_pending_until_ready_then_running_keeps_worker_progress() -> None:
    res = apply(resource(), decide(resource(), World(now=NOW)))
    pending = decide(res, World(now=NOW, jobs=(job(active=1),)))
    assert pending.status["phase"] == "Pending" and pending.events == []
    res = replace(res, status={**res.status, "progress": 37, "stage": "dataset"})
    running = decide(res, World(now=NOW, jobs=(job(active=1, ready=1),)))
    assert running.status["phase"] == "Running" and reason(running.status) == "Running"
    assert running.status["progress"] == 37 and running.status["stage"] == "dataset"
    assert [e.reason for e in running.events] == ["Running"]


def test_finished_job_needs_its_outcome_then_succeeds() -> None:
    res = apply(resource(), decide(resource(), World(now=NOW)))
    done = job(complete=True, succeeded=1, completion_time="2026-11-21T12:10:00Z")
    first = decide(res, World(now=NOW, jobs=(done,)))
    assert first.needs_outcome == done and first.job is None and first.status == res.status
    d = decide(res, World(now=NOW, jobs=(done,), outcome=lora_result(1, 1)))
    s = d.status
    assert s["phase"] == "Succeeded" and s["progress"] == 100 and s["completedAt"] == "2026-11-21T12:10:00Z"
    assert s["latestVersion"] == 1 and s["versions"][0]["modelUri"].endswith("v1/model.safetensors")
    assert cond(s, "Ready") == "True" and cond(s, "Stalled") == "False" and cond(s, "Reconciling") == "False"
    assert "placeholder" in s["message"]
    assert [e.type for e in d.events] == ["Normal"] and d.outcome_recorded is not None
    # Recorded: nothing more to do, even after the Job is gone (TTL).
    after = decide(apply(res, d), World(now=NOW))
    assert after.job is None and after.needs_outcome is None and after.events == []


def test_a_version_that_does_not_look_like_the_person_succeeds_with_a_warning() -> None:
    res = apply(resource(), decide(resource(), World(now=NOW)))
    poor = lora_result(1, 1)
    assert poor.lora is not None
    reason = "the generated faces' median similarity 0.10 is under the threshold 0.31"
    poor.lora.likeness = Likeness(verdict="poor", reasons=[reason], median=0.1)
    d = decide(res, World(now=NOW, jobs=(job(complete=True),), outcome=poor))
    assert d.status["phase"] == "Succeeded" and d.status["likeness"]["verdict"] == "poor"
    assert [(e.type, e.reason) for e in d.events] == [("Normal", "Succeeded"), ("Warning", "LikenessPoor")]
    assert d.events[1].message == f"version 1 is kept and usable, but {reason}"
    good = lora_result(1, 1)
    assert good.lora is not None
    good.lora.likeness = Likeness(verdict="good", median=0.7)
    d = decide(res, World(now=NOW, jobs=(job(complete=True),), outcome=good))
    assert [e.reason for e in d.events] == ["Succeeded"]


def test_a_version_whose_model_is_an_earlier_checkpoint_says_so_in_an_event() -> None:
    res = apply(resource(), decide(resource(), World(now=NOW)))
    why = "step 500 scored best of 4 checkpoints (good, median 0.55; the last step, 1000: poor, median 0.41)"
    earlier = lora_result(1, 1)
    assert earlier.lora is not None
    earlier.lora.likeness = Likeness(
        verdict="good", median=0.55, chosen_step=500, final_step=1000, choice=why
    )
    d = decide(res, World(now=NOW, jobs=(job(complete=True),), outcome=earlier))
    assert d.status["likeness"]["chosenStep"] == 500
    assert [(e.type, e.reason) for e in d.events] == [("Normal", "Succeeded"), ("Normal", "CheckpointChosen")]
    assert d.events[1].message == (
        "version 1: its model is the LoRA of step 500, not of the last step 1000 (kept as "
        f"finalModelUri): {why}"
    )
    assert decide(apply(res, d), World(now=NOW)).events == []  # once, on the transition
    last = lora_result(1, 1)
    assert last.lora is not None
    last.lora.likeness = Likeness(verdict="good", median=0.6, chosen_step=1000, final_step=1000, choice="...")
    d = decide(res, World(now=NOW, jobs=(job(complete=True),), outcome=last))
    assert [e.reason for e in d.events] == ["Succeeded"]


def likeness_of(status: dict[str, Any]) -> tuple[str, str, str]:
    found = next(c for c in status["conditions"] if c["type"] == "LikenessPoor")
    return found["status"], found["reason"], found["message"]


def test_the_likeness_poor_condition_says_why_and_ready_stays_true() -> None:
    res = apply(resource(), decide(resource(), World(now=NOW)))
    assert all(c["type"] != "LikenessPoor" for c in res.status["conditions"])  # nothing measured yet
    why = "the generated faces' median similarity 0.10 is under the threshold 0.31"
    poor = lora_result(1, 1)
    assert poor.lora is not None
    poor.lora.likeness = Likeness(verdict="poor", reasons=[why], median=0.1)
    d = decide(res, World(now=NOW, jobs=(job(complete=True),), outcome=poor))
    assert likeness_of(d.status) == ("True", "LikenessPoor", f"version 1 is kept and usable, but {why}")
    assert cond(d.status, "Ready") == "True" and cond(d.status, "Stalled") == "False"
    stable = apply(res, d)
    assert (
        decide(stable, World(now=NOW + timedelta(hours=1))).status["conditions"]
        == stable.status["conditions"]
    )
    # a new version that looks like the person turns it False; one not measured, Unknown
    v2 = apply(
        resource(generation=2, status=stable.status),
        decide(resource(generation=2, status=stable.status), World(now=NOW)),
    )
    good = lora_result(2, 2)
    assert good.lora is not None
    good.lora.likeness = Likeness(verdict="good", median=0.7)
    d2 = decide(v2, World(now=NOW, jobs=(job(2, version=2, complete=True),), outcome=good))
    assert likeness_of(d2.status) == ("False", "LikenessGood", "version 2 looks like the person")
    skipped = lora_result(2, 2)
    assert skipped.lora is not None
    skipped.lora.likeness = Likeness(verdict="skipped", reasons=["budget: ..."])
    d3 = decide(v2, World(now=NOW, jobs=(job(2, version=2, complete=True),), outcome=skipped))
    assert likeness_of(d3.status) == (
        "Unknown",
        "LikenessUnmeasured",
        "version 2: likeness skipped (budget: ...)",
    )


def evaluated_of(status: dict[str, Any]) -> tuple[str, str, int]:
    found = next(c for c in status["conditions"] if c["type"] == "LikenessEvaluated")
    return found["status"], found["reason"], found["observedGeneration"]


@pytest.mark.parametrize(
    ("verdict", "expected"),
    [
        ("good", "LikenessGood"),
        ("poor", "LikenessPoor"),
        ("no-faces", "LikenessUnmeasured"),
        ("unmeasured", "LikenessUnmeasured"),
        ("skipped", "LikenessSkipped"),
    ],
)
def test_the_likeness_gate_resolves_whatever_the_verdict(verdict: str, expected: str) -> None:
    """`kubectl wait --for=condition=LikenessEvaluated` returns once the run ends, on every
    verdict; its reason says which (docs/likeness.md#gates)."""
    res = apply(resource(), decide(resource(), World(now=NOW)))
    assert evaluated_of(res.status) == ("Unknown", "LikenessPending", 1)
    made = lora_result(1, 1)
    assert made.lora is not None
    made.lora.likeness = Likeness(verdict=verdict, reasons=["why"])  # type: ignore[arg-type]
    d = decide(res, World(now=NOW, jobs=(job(complete=True),), outcome=made))
    assert evaluated_of(d.status) == ("True", expected, 1)
    found = next(c for c in d.status["conditions"] if c["type"] == "LikenessEvaluated")
    assert found["message"] == f"version 1: likeness {verdict} (why)"


def test_the_likeness_gate_waits_for_the_new_generation_and_resolves_on_failure() -> None:
    """After a spec change the gate is Unknown again (the old version's verdict is not the new
    one's), LikenessPoor describes the version's own generation, and a failed run resolves it
    too (LikenessNotEvaluated) instead of leaving a wait to run out its timeout."""
    res = apply(resource(), decide(resource(), World(now=NOW)))
    good = lora_result(1, 1)
    assert good.lora is not None
    good.lora.likeness = Likeness(verdict="good", median=0.7)
    res = apply(res, decide(res, World(now=NOW, jobs=(job(complete=True),), outcome=good)))
    assert evaluated_of(res.status) == ("True", "LikenessGood", 1)
    res = replace(res, generation=2)
    res = apply(res, decide(res, World(now=NOW, jobs=(job(complete=True),))))
    assert evaluated_of(res.status) == ("Unknown", "LikenessPending", 2)
    poor_of_v1 = next(c for c in res.status["conditions"] if c["type"] == "LikenessPoor")
    assert poor_of_v1["observedGeneration"] == 1  # kubectl wait skips it for generation 2
    failed = decide(
        res,
        World(
            now=NOW,
            jobs=(job(complete=True), job(2, version=2, failed_reason="PodFailurePolicy")),
            outcome=RunFailure(reason="InvalidInput", message="source.url: no such object"),
        ),
    )
    assert failed.status["phase"] == "Failed"
    assert evaluated_of(failed.status) == ("True", "LikenessNotEvaluated", 2)
    found = next(c for c in failed.status["conditions"] if c["type"] == "LikenessEvaluated")
    assert "no such object" in found["message"]


def test_kinds_without_likeness_have_no_gate() -> None:
    res = apply(resource("ImageGeneration"), decide(resource("ImageGeneration"), World(now=NOW)))
    assert all(c["type"] != "LikenessEvaluated" for c in res.status["conditions"])


def test_spec_change_trains_a_new_version_and_keeps_the_old() -> None:
    res = apply(resource(), decide(resource(), World(now=NOW)))
    v1 = decide(res, World(now=NOW, jobs=(job(complete=True),), outcome=lora_result(1, 1)))
    res = replace(apply(res, v1), generation=2)
    d = decide(res, World(now=NOW, jobs=(job(complete=True),)))
    assert d.job is not None and d.job.version == 2 and d.job.generation == 2
    assert d.status["phase"] == "Pending" and d.status["observedGeneration"] == 2 and d.status["versions"]
    res = apply(res, d)
    v2 = decide(
        res,
        World(
            now=NOW, jobs=(job(complete=True), job(2, version=2, complete=True)), outcome=lora_result(2, 2)
        ),
    )
    assert [v["version"] for v in v2.status["versions"]] == [1, 2] and v2.status["latestVersion"] == 2


def test_a_new_run_does_not_show_the_last_runs_dataset() -> None:
    dataset = {"scenes": 3, "candidates": 3, "faces": 2, "kept": 2, "minFrames": 10, "dropped": {}}
    res = replace(
        resource(),
        generation=2,
        status={"phase": "Failed", "observedGeneration": 1, "jobName": f"{JOB}-g1", "dataset": dataset},
    )
    d = decide(res, World(now=NOW, jobs=(job(failed_reason="BackoffLimitExceeded"),)))
    assert d.job is not None and d.job.generation == 2
    assert "dataset" not in d.status


def test_change_while_running_waits_then_records_and_reruns() -> None:
    res = apply(resource(), decide(resource(), World(now=NOW)))
    res = replace(res, generation=2)
    running = decide(res, World(now=NOW, jobs=(job(active=1, ready=1),)))
    assert running.job is None and reason(running.status) == "SpecChanged"
    assert running.status["observedGeneration"] == 1 and cond(running.status, "Reconciling") == "True"
    res = apply(res, running)
    finished = job(complete=True)
    d = decide(res, World(now=NOW, jobs=(finished,), outcome=lora_result(1, 1)))
    # v1 is recorded and generation 2 starts, in one step.
    assert d.status["versions"][0]["version"] == 1
    assert d.job is not None and d.job.generation == 2 and d.job.version == 2
    assert d.status["phase"] == "Pending" and d.status["observedGeneration"] == 2
    assert d.outcome_recorded is not None


def test_worker_failure_reason_wins() -> None:
    res = apply(resource(), decide(resource(), World(now=NOW)))
    failed = job(failed_reason="PodFailurePolicy", failed=1)
    d = decide(
        res,
        World(now=NOW, jobs=(failed,), outcome=RunFailure(reason="SourceRefused", message="internal host")),
    )
    assert d.status["phase"] == "Failed" and reason(d.status) == "SourceRefused"
    assert cond(d.status, "Stalled") == "True" and reason(d.status, "Stalled") == "SourceRefused"
    assert d.status["message"] == "SourceRefused: internal host"
    assert [(e.type, e.reason) for e in d.events] == [("Warning", "SourceRefused")]
    # Failed is final for this generation; a spec change runs again.
    res = apply(res, d)
    assert decide(res, World(now=NOW)).job is None
    assert decide(replace(res, generation=2), World(now=NOW)).job is not None


def test_job_condition_explains_when_the_worker_could_not() -> None:
    res = apply(resource(), decide(resource(), World(now=NOW)))
    failed = job(failed_reason="DeadlineExceeded")
    d = decide(
        res, World(now=NOW, jobs=(failed,), outcome=RunFailure(reason="DeadlineExceeded", message="x"))
    )
    assert reason(d.status) == "DeadlineExceeded"
    d = decide(res, World(now=NOW, jobs=(job(complete=True),), outcome=lora_result(1, 7)))  # a stale result
    assert d.status["phase"] == "Failed" and reason(d.status) == "ResultMissing"


def test_a_job_named_by_an_earlier_operator_is_found_by_its_labels() -> None:
    """After an upgrade, a run in flight keeps its Job of the old name (`{name}-g{n}`, before
    names carried the kind and uid): it is this resource's by its uid label, so no second Job is
    made, and the status keeps naming it (the worker's progress patches test that name)."""
    before = {**decide(resource(), World(now=NOW)).status, "jobName": "demo-g1"}
    res = resource(status=before)
    old = replace(job(active=1), name="demo-g1")
    pending = decide(res, World(now=NOW, jobs=(old,)))
    assert pending.job is None and pending.status["jobName"] == "demo-g1"
    res = replace(res, status={**pending.status, "stage": "dataset", "progress": 40})
    running = decide(res, World(now=NOW, jobs=(replace(old, ready=1),)))
    assert running.job is None and running.status["phase"] == "Running"
    assert running.status["jobName"] == "demo-g1" and running.status["progress"] == 40
    res = apply(res, running)
    done = replace(old, active=0, succeeded=1, complete=True)
    ok = decide(res, World(now=NOW, jobs=(done,), outcome=lora_result(1, 1)))
    assert ok.job is None and ok.status["phase"] == "Succeeded" and ok.status["jobName"] == "demo-g1"
    parsed = job_state({"metadata": {"name": "demo-g1", "namespace": "ns", "labels": LABELS}})
    assert parsed is not None and (parsed.name, parsed.uid, parsed.generation) == ("demo-g1", UID, 1)


def test_lost_job_is_read_from_the_store_not_rerun() -> None:
    res = apply(resource(), decide(resource(), World(now=NOW)))
    res = replace(res, status={**res.status, "phase": "Running"})
    d = decide(res, World(now=NOW))  # no Job: deleted by its TTL while the operator was down
    assert d.needs_outcome is not None and d.needs_outcome.name == f"lost:{JOB}-g1" and d.job is None
    ok = decide(res, World(now=NOW, outcome=lora_result(1, 1)))
    assert ok.status["phase"] == "Succeeded" and ok.status["jobName"] == f"{JOB}-g1" and ok.job is None
    gone = decide(res, World(now=NOW, outcome=RunFailure(reason="JobLost", message="no result")))
    assert gone.status["phase"] == "Failed" and reason(gone.status) == "JobLost" and gone.job is None


def image_result(version: int, generation: int, seed: int) -> RunResult:
    image = GeneratedImage(
        uri=f"s3://bkt/generated-images/alice/{UID}/v{version}/image_1.png",
        width=1024,
        height=768,
        size_bytes=5,
        sha256=SHA,
        seed=seed,
    )
    return RunResult(
        kind="ImageGeneration", provider="fal", generation=generation, version=version, images=[image]
    )


def test_every_kind_keeps_its_versions() -> None:
    """A re-run for a new spec generation writes a new version; the earlier one stays (issue 17)."""
    img = resource("ImageGeneration", seed=1)
    first = decide(img, World(now=NOW))
    assert first.job is not None and first.job.version == 1 and first.status["runVersion"] == 1
    res = apply(img, first)
    d = decide(res, World(now=NOW, jobs=(job(complete=True),), outcome=image_result(1, 1, seed=1)))
    assert d.status["images"][0]["seed"] == 1 and d.status["provider"] == "fal"
    assert d.status["latestVersion"] == 1 and d.status["versions"][0]["startedAt"] == "2026-11-21T12:00:00Z"
    res = replace(apply(res, d), generation=2, spec={**res.spec, "seed": 2})
    rerun = decide(res, World(now=NOW, jobs=(job(complete=True),)))
    assert rerun.job is not None and rerun.job.version == 2 and rerun.job.spec["seed"] == 2
    res = apply(res, rerun)
    jobs = (job(complete=True), job(2, version=2, complete=True))
    done = decide(res, World(now=NOW, jobs=jobs, outcome=image_result(2, 2, seed=2)))
    assert [v["version"] for v in done.status["versions"]] == [1, 2]
    assert [v["images"][0]["seed"] for v in done.status["versions"]] == [1, 2]
    assert done.status["images"][0]["seed"] == 2 and done.status["latestVersion"] == 2

    tr = resource("Transcription")
    res = apply(tr, decide(tr, World(now=NOW)))
    transcript = TranscriptOutput(
        json_uri="s3://b/t.json", text_uri="s3://b/t.txt", word_count=42, duration_seconds=12.5, speakers=2
    )
    d = decide(
        res,
        World(
            now=NOW,
            jobs=(job(complete=True),),
            outcome=RunResult(
                kind="Transcription", provider="assemblyai", generation=1, version=1, transcript=transcript
            ),
        ),
    )
    assert d.status["transcript"]["wordCount"] == 42 and "42 words" in d.status["message"]
    assert d.status["versions"][0]["transcript"] == d.status["transcript"]


def test_a_failed_run_keeps_the_versions_and_its_number_is_never_reused() -> None:
    res = apply(resource("ImageGeneration"), decide(resource("ImageGeneration"), World(now=NOW)))
    res = apply(res, decide(res, World(now=NOW, jobs=(job(complete=True),), outcome=image_result(1, 1, 1))))
    res = replace(res, generation=2)
    res = apply(res, decide(res, World(now=NOW, jobs=(job(complete=True),))))
    assert res.status["runVersion"] == 2
    failed = decide(
        res,
        World(
            now=NOW,
            jobs=(job(complete=True), job(2, version=2, failed_reason="PodFailurePolicy")),
            outcome=RunFailure(reason="InvalidInput", message="bad"),
        ),
    )
    assert failed.status["phase"] == "Failed" and [v["version"] for v in failed.status["versions"]] == [1]
    assert failed.status["images"][0]["uri"].endswith("/v1/image_1.png")  # still shown
    res = replace(apply(res, failed), generation=3)
    third = decide(res, World(now=NOW, jobs=(job(complete=True), job(2, version=2, failed_reason="x"))))
    assert third.job is not None and third.job.version == 3  # v2's objects, if any, stay v2's


def test_statuses_from_before_versions_become_version_1() -> None:
    """An ImageGeneration status of 0.1 (images, no versions): those images are version 1, and the
    next run is version 2 (also above what the store holds)."""
    legacy = {
        "phase": "Succeeded",
        "observedGeneration": 1,
        "jobName": "demo-g1",
        "provider": "fal",
        "completedAt": "2026-11-20T10:00:00Z",
        "images": [{"uri": f"s3://bkt/generated-images/alice/{UID}/image_1.png", "width": 1, "height": 1,
                    "sizeBytes": 1, "sha256": SHA}],
    }  # fmt: skip
    res = resource("ImageGeneration", generation=2, status=legacy)
    legacy_job = replace(job(version=0, complete=True), name="demo-g1")  # named as 0.1 named Jobs
    d = decide(res, World(now=NOW, jobs=(legacy_job,)))
    assert d.job is not None and d.job.version == 2
    (v1,) = d.status["versions"]
    assert (
        v1["version"] == 1 and v1["images"] == legacy["images"] and v1["createdAt"] == "2026-11-20T10:00:00Z"
    )
    beyond = decide(res, World(now=NOW, jobs=(legacy_job,), stored_version=4))
    assert beyond.job is not None and beyond.job.version == 5


def test_lora_ref_missing_is_stalled_and_resolves_by_itself() -> None:
    res = resource("ImageGeneration", model="flux-lora", loras=LORA_REF)
    d = decide(res, World(now=NOW, loras={"style": None}))
    assert d.job is None and d.waiting == "LoraNotFound" and reason(d.status, "Stalled") == "LoraNotFound"
    assert [(e.type, e.reason) for e in d.events] == [("Warning", "LoraNotFound")]
    res = apply(res, d)
    not_ready = LoraState("style", "alice", "Running", 0, "")
    d = decide(res, World(now=NOW, loras={"style": not_ready}))
    assert d.job is None and d.waiting == "LoraNotReady" and d.status["phase"] == "Pending"
    assert cond(d.status, "Stalled") == "False" and cond(d.status, "Reconciling") == "True"
    res = apply(res, d)
    ready = LoraState("style", "alice", "Succeeded", 3, "s3://bkt/loras/alice/u/v3/model.safetensors")
    d = decide(res, World(now=NOW, loras={"style": ready}))
    assert d.job is not None and d.job.loras[0].uri == ready.latest_model_uri and d.job.loras[0].scale == 0.7
    assert d.job.loras[0].version == 3


def test_lora_of_another_owner_is_refused() -> None:
    res = resource("ImageGeneration", model="flux-lora", loras=LORA_REF)
    other = LoraState("style", "mallory", "Succeeded", 1, "s3://bkt/loras/mallory/u/v1/model.safetensors")
    d = decide(res, World(now=NOW, loras={"style": other}))
    assert d.job is None and reason(d.status) == "LoraOwnerMismatch"


def test_lora_urls_pass_through() -> None:
    res = resource(
        "ImageGeneration", model="flux-lora", loras=[{"url": "https://h/x.safetensors", "scale": 1.5}]
    )
    d = decide(res, World(now=NOW))
    assert d.job is not None and d.job.loras[0].uri == "https://h/x.safetensors"


def test_queued_when_the_namespace_is_full() -> None:
    d = decide(resource(), World(now=NOW, may_start=False))
    assert (
        d.job is None
        and d.waiting == "Queued"
        and d.status["phase"] == "Pending"
        and reason(d.status) == "Queued"
    )
    d = decide(apply(resource(), d), World(now=NOW))
    assert d.job is not None and reason(d.status) == "JobCreated"


def test_missing_credentials_hold_the_resource() -> None:
    d = decide(resource(provider="fal"), World(now=NOW, missing_credentials="FAL_KEY"))
    assert (
        d.job is None
        and reason(d.status, "Stalled") == "MissingCredentials"
        and "FAL_KEY" in d.status["message"]
    )
    assert "offline" in d.status["message"]


WAITS = {  # a reason to wait, and the world that gives it
    "MissingCredentials": {"missing_credentials": "FAL_KEY"},
    "Queued": {"may_start": False},
    "BudgetExceeded": {"over_budget": "owner alice is at its monthly budget"},
    "OwnerNotAllowed": {"owner_problem": "owner alice is not allowed in namespace ns"},
}


@pytest.mark.parametrize("waits", WAITS)
def test_a_spec_change_that_must_wait_is_not_taken_for_a_lost_job(waits: str) -> None:
    """Generation 1 succeeded; generation 2 must wait (no key, no slot, no budget, no owner). The
    status said Pending with generation 1's jobName kept: the next look took generation 2 for a
    Job that no longer exists and failed it as JobLost (seen on the real control plane)."""
    res = apply(resource("ImageGeneration"), decide(resource("ImageGeneration"), World(now=NOW)))
    done = job(complete=True, succeeded=1)
    image = RunResult(
        kind="ImageGeneration",
        provider="offline",
        generation=1,
        placeholder=True,
        version=1,
        images=[
            GeneratedImage(
                uri=f"s3://bkt/generated-images/alice/{UID}/v1/image_1.png",
                sha256=SHA,
                width=8,
                height=8,
                size_bytes=1,
            )
        ],
    )
    first = decide(res, World(now=NOW, jobs=(done,), outcome=image))
    assert first.status["phase"] == "Succeeded"
    res = replace(apply(res, first), generation=2)
    world = World(now=NOW, jobs=(done,), **WAITS[waits])  # type: ignore[arg-type]
    for look in range(3):  # and again, on every later event: it keeps waiting
        d = decide(res, world)
        assert (d.job, reason(d.status), d.status["phase"]) == (None, waits, "Pending"), look
        assert "jobName" not in d.status and d.status["observedGeneration"] == 2
        assert d.status["versions"][0]["version"] == 1  # generation 1's images stay
        res = apply(res, d)
        world = replace(world, jobs=()) if look else world  # its Job may be gone (TTL) by now
    started = decide(res, World(now=NOW))  # the key set, a slot free, ...
    assert started.job is not None and started.job.generation == 2 and started.job.version == 2


def test_condition_times_move_only_on_change() -> None:
    res = apply(resource(), decide(resource(), World(now=NOW)))
    later = NOW + timedelta(minutes=5)
    d = decide(res, World(now=later, jobs=(job(ready=1, active=1),)))
    times = {c["type"]: c["lastTransitionTime"] for c in d.status["conditions"]}
    assert times["Ready"] == "2026-11-21T12:00:00Z"  # still False
    assert times["Reconciling"] == "2026-11-21T12:00:00Z"
    d2 = decide(apply(res, d), World(now=later, jobs=(job(complete=True),), outcome=lora_result(1, 1)))
    times = {c["type"]: c["lastTransitionTime"] for c in d2.status["conditions"]}
    assert times["Ready"] == "2026-11-21T12:05:00Z"


def test_a_condition_without_a_time_is_given_one() -> None:
    """One written without lastTransitionTime (by hand, or emptied) would be kept so, and the
    CRD refuses the status write (a date-time is required); it is given the decision's time."""
    res = apply(resource(), decide(resource(), World(now=NOW)))
    by_type = {c["type"]: c for c in res.status["conditions"]}
    del by_type["Ready"]["lastTransitionTime"]
    by_type["Reconciling"]["lastTransitionTime"] = ""
    later = NOW + timedelta(minutes=5)
    d = decide(res, World(now=later, jobs=(job(ready=1, active=1),)))
    times = {c["type"]: c["lastTransitionTime"] for c in d.status["conditions"]}
    assert times["Ready"] == times["Reconciling"] == "2026-11-21T12:05:00Z"
    assert times["Stalled"] == "2026-11-21T12:00:00Z"  # unchanged, and its time kept


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"active": 1, "ready": 1}, {"finished": False, "ready": 1}),
        (
            {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]},
            {"finished": True, "complete": True},
        ),
        (
            {
                "failed": 3,
                "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}],
            },
            {"finished": True, "failed_reason": "BackoffLimitExceeded"},
        ),
        ({"conditions": [{"type": "Failed", "status": "False"}]}, {"finished": False}),
    ],
)
def test_job_state_parsing(status: dict[str, Any], expected: dict[str, Any]) -> None:
    body = {
        "metadata": {
            "name": "j",
            "namespace": "ns",
            "labels": {"contentgen.io/uid": UID, "contentgen.io/generation": "2"},
        },
        "status": status,
    }
    state = job_state(body)
    assert state is not None and state.generation == 2
    for key, value in expected.items():
        assert getattr(state, key) == value
    assert job_state({"metadata": {"name": "other"}}) is None


FAILED_LORA = LoraState(
    "style", "alice", "Failed", 0, "", uid="lora-uid", reason="InvalidInput", message="InvalidInput: no face"
)
TRAINED = "s3://bkt/loras/alice/lora-uid/v2/model.safetensors"


@pytest.mark.parametrize(
    ("lora", "waiting", "stalled", "runs"),
    [
        # the LoraTraining as observed → what the ImageGeneration does
        (None, "LoraNotFound", "True", False),
        (LoraState("style", "alice", "", 0, ""), "LoraNotReady", "False", False),
        (LoraState("style", "alice", "Running", 0, ""), "LoraNotReady", "False", False),
        (FAILED_LORA, "LoraFailed", "True", False),
        # its newest run failed, but an earlier version is there to use
        (replace(FAILED_LORA, latest_version=2, latest_model_uri=TRAINED), "", "False", True),
        (LoraState("style", "alice", "Succeeded", 2, TRAINED, uid="lora-uid"), "", "False", True),
        (LoraState("style", "mallory", "Failed", 0, ""), "LoraOwnerMismatch", "True", False),
    ],
)
def test_lora_ref_decision_table(lora: LoraState | None, waiting: str, stalled: str, runs: bool) -> None:
    res = resource("ImageGeneration", model="flux-lora", loras=LORA_REF)
    d = decide(res, World(now=NOW, loras={"style": lora}))
    assert d.waiting == waiting
    assert cond(d.status, "Stalled") == stalled
    assert (d.job is not None) == runs
    if runs:
        assert d.job is not None and d.job.loras[0].uid == "lora-uid" and d.job.loras[0].version == 2


def test_lora_failed_names_the_reason_and_recovers_by_itself() -> None:
    res = resource("ImageGeneration", model="flux-lora", loras=LORA_REF)
    d = decide(res, World(now=NOW, loras={"style": FAILED_LORA}))
    assert d.status["phase"] == "Pending" and reason(d.status, "Stalled") == "LoraFailed"
    assert cond(d.status, "Reconciling") == "False" and cond(d.status, "Ready") == "False"
    assert "failed" in d.status["message"] and "InvalidInput: no face" in d.status["message"]
    assert [(e.type, e.reason) for e in d.events] == [("Warning", "LoraFailed")]
    res = apply(res, d)
    # Looked at again while the LoRA retrains: waiting, no longer stalled.
    d = decide(res, World(now=NOW, loras={"style": replace(FAILED_LORA, phase="Running")}))
    assert d.waiting == "LoraNotReady" and cond(d.status, "Stalled") == "False"
    res = apply(res, d)
    d = decide(res, World(now=NOW, loras={"style": LoraState("style", "alice", "Succeeded", 1, TRAINED)}))
    assert d.job is not None and reason(d.status) == "JobCreated"


def test_lora_urls_of_our_store_keep_their_lineage() -> None:
    res = resource("ImageGeneration", model="flux-lora", loras=[{"url": TRAINED, "scale": 0.5}])
    d = decide(res, World(now=NOW))
    assert d.job is not None
    assert (d.job.loras[0].uid, d.job.loras[0].version, d.job.loras[0].name) == ("lora-uid", 2, "")


def test_lora_state_reads_the_failure() -> None:
    from contentgen.controller.observe import lora_state

    body = {
        "metadata": {"name": "style", "uid": "lora-uid"},
        "spec": {"owner": "alice"},
        "status": {
            "phase": "Failed",
            "message": "InvalidInput: no face",
            "conditions": [{"type": "Ready", "status": "False", "reason": "InvalidInput"}],
        },
    }
    assert lora_state(body) == FAILED_LORA and lora_state(body).failed


# --- spend and budgets (issue 12) --------------------------------------------------------------------


def test_over_budget_it_stays_pending_and_stalled_and_starts_no_job() -> None:
    from contentgen.pricing import PriceTable

    res = resource("ImageGeneration", provider="fal", numImages=2)
    decision = decide(
        res, World(now=NOW, prices=PriceTable(), over_budget="the monthly budget of namespace ns is $1")
    )
    assert decision.job is None and decision.waiting == "BudgetExceeded"
    status = decision.status
    assert status["phase"] == "Pending" and reason(status) == "BudgetExceeded"
    assert (
        cond(status, "Stalled") == "True" and status["message"] == "the monthly budget of namespace ns is $1"
    )
    assert [(e.type, e.reason) for e in decision.events] == [("Warning", "BudgetExceeded")]
    # within the budget again: it starts, with its estimate in status.cost
    started = decide(apply(res, decision), World(now=NOW, prices=PriceTable()))
    assert started.job is not None and reason(started.status) == "JobCreated"
    assert started.status["cost"]["estimatedUsd"] == pytest.approx(0.05)
    assert started.status["cost"]["pricesAsOf"] == "2026-11-22" and "actualUsd" not in started.status["cost"]


def test_each_version_records_what_its_run_cost() -> None:
    from contentgen.api import UsageLine
    from contentgen.pricing import PriceTable

    res = resource("ImageGeneration")
    world = World(now=NOW, prices=PriceTable())
    res = apply(res, decide(res, world))
    usage = [UsageLine(provider="fal", item="fal-ai/flux/dev", unit="megapixel", quantity=1.0, request="r1")]
    result = image_result(1, 1, 1).model_copy(update={"usage": usage})
    d = decide(res, replace(world, jobs=(job(complete=True),), outcome=result))
    assert d.status["versions"][0]["costUsd"] == d.status["cost"]["actualUsd"] == 0.025


def test_the_recorded_outcome_settles_the_cost_into_its_month() -> None:
    from contentgen.api import UsageLine
    from contentgen.pricing import PriceTable

    prices = PriceTable()
    res = resource("ImageGeneration", provider="fal", numImages=2)
    started = apply(res, decide(res, World(now=NOW, prices=prices)))
    usage = [UsageLine(provider="fal", item="fal-ai/flux/dev", unit="megapixel", quantity=2, request="req-1")]
    result = RunResult(kind="ImageGeneration", provider="fal", generation=1, images=[], usage=usage)
    finished = job(complete=True, succeeded=1, completion_time="2026-11-21T12:05:00Z")
    done = decide(started, World(now=NOW, jobs=(finished,), outcome=result, prices=prices))
    cost = done.status["cost"]
    assert cost["actualUsd"] == pytest.approx(0.05) and cost["byMonth"] == {"2026-11": pytest.approx(0.05)}
    # a failure whose bill cannot be known counts the estimate
    failed = decide(
        started,
        World(
            now=NOW,
            jobs=(job(failed_reason="PodFailurePolicy"),),
            outcome=RunFailure(reason="ProviderOutcomeUnknown", message="m", usage=None),
            prices=prices,
        ),
    )
    assert failed.status["cost"]["byMonth"] == {"2026-11": pytest.approx(0.05)}
    assert "actual unknown" in failed.status["cost"]["detail"]


@pytest.mark.parametrize("offline", [False, True])
def test_a_job_whose_start_was_never_written_gets_its_estimate_and_its_cost_settled(offline: bool) -> None:
    """Issue 48: the API server went away between the Job's creation and the status write after it.
    The next look finds the Job running with a status that never named it: it gets what the start
    would have written (its version, its estimate) so that its cost is settled when it ends."""
    from contentgen.api import UsageLine
    from contentgen.controller.jobs import render_job
    from contentgen.controller.settings import OperatorSettings
    from contentgen.pricing import PriceTable

    prices = PriceTable()
    res = resource("ImageGeneration", provider="fal", numImages=2)
    start = decide(res, World(now=NOW, prices=prices))
    assert start.job is not None
    manifest = render_job(start.job, OperatorSettings(prices=prices, offline=offline))
    created = job_state({**manifest, "status": {"startTime": "2026-11-21T12:00:01Z", "active": 1}})
    assert created is not None
    later = NOW + timedelta(minutes=1)
    seen = decide(res, World(now=later, jobs=(created,), prices=prices))  # res: the status never written
    assert seen.job is None and seen.status["jobName"] == created.name
    if offline:  # the Job runs the offline provider: its estimate is what that run costs
        assert seen.status["cost"]["estimatedUsd"] == 0
        return
    assert seen.status["cost"] == start.status["cost"] and seen.status["cost"][
        "estimatedUsd"
    ] == pytest.approx(0.05)
    assert seen.status["runVersion"] == start.status["runVersion"]
    assert seen.status["startedAt"] == "2026-11-21T12:00:01Z"
    usage = [UsageLine(provider="fal", item="fal-ai/flux/dev", unit="megapixel", quantity=2, request="req-1")]
    result = RunResult(kind="ImageGeneration", provider="fal", generation=1, images=[], usage=usage)
    finished = replace(created, active=0, complete=True, succeeded=1, completion_time="2026-11-21T12:05:00Z")
    drawing = apply(res, seen)  # a worker killed in its last attempt leaves where the pool had it
    drawing.status["pool"] = {"state": "warm", "position": 0}
    done = decide(drawing, World(now=later, jobs=(finished,), outcome=result, prices=prices))
    assert done.status["phase"] == "Succeeded" and "pool" not in done.status
    assert done.status["cost"]["actualUsd"] == pytest.approx(0.05)
    assert done.status["cost"]["byMonth"] == {"2026-11": pytest.approx(0.05)}
    # and a run that finished before anyone looked again is settled all the same
    unseen = decide(res, World(now=later, jobs=(finished,), outcome=result, prices=prices))
    assert unseen.status["cost"]["actualUsd"] == pytest.approx(0.05)
    assert unseen.status["cost"]["estimatedUsd"] == pytest.approx(0.05)


def test_a_budget_that_covers_only_the_training_starts_it_without_its_evaluation() -> None:
    """Issue 30: the evaluation is skipped with a reason instead of holding the training."""
    from contentgen.pricing import PriceTable

    res = resource(provider="fal")
    why = "budget: the monthly budget of namespace ns is $2.00 (operator settings); ..."
    d = decide(res, World(now=NOW, prices=PriceTable(), skip_evaluation=why))
    assert d.job is not None and d.job.skip_evaluation == why and reason(d.status) == "JobCreated"
    assert "evaluation" not in d.job.spec  # the user's spec is kept as written
    assert d.status["cost"]["estimatedUsd"] == pytest.approx(2.0)  # the training alone
    assert ("Warning", "LikenessSkipped", why) in [(e.type, e.reason, e.message) for e in d.events]
    full = decide(res, World(now=NOW, prices=PriceTable()))
    assert full.job is not None and full.job.skip_evaluation == ""
    assert full.status["cost"]["estimatedUsd"] == pytest.approx(2.84)
    assert all(e.reason != "LikenessSkipped" for e in full.events)


def test_the_job_carries_what_the_monthly_budgets_leave_its_run() -> None:
    """Issue 67: a training that trains live stops within what the budgets left it (keeping what it
    has), so the snapshot says how much that is and whose budget; without budgets, nothing."""
    from contentgen.pricing import PriceTable

    res = resource(provider="cluster")
    left = decide(res, World(now=NOW, prices=PriceTable(), budget_left=(3.5, "namespace ns")))
    assert left.job is not None and left.job.budget is not None
    assert (left.job.budget.usd, left.job.budget.whose) == (3.5, "namespace ns")
    free = decide(res, World(now=NOW, prices=PriceTable()))
    assert free.job is not None and free.job.budget is None
