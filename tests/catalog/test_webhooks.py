"""Webhooks' pure part: the Standard Webhooks signature (the specification's own test vector, and
its library verifying ours), the events a record's change emits, matching, the retry schedule."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import standardwebhooks

from contentgen.api import KINDS, GeneratedVideo, ResolvedLora, RunResult, VideoLikeness
from contentgen.catalog import ResourceState, catalog_document, webhooks
from contentgen.controller.decide import Observed, World, decide
from contentgen.controller.observe import JobState

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
# The specification's published example (standard-webhooks' spec and every library's tests).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_matches_the_specifications_vector() -> None:
    key = webhooks.decode_secret(SPEC_SECRET)
    assert webhooks.sign([key], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    # the same without the prefix
    assert webhooks.decode_secret(SPEC_SECRET.removeprefix("whsec_")) == key


def test_the_specifications_library_verifies_our_headers_with_either_of_two_secrets() -> None:
    new, old = base64.b64encode(b"n" * 32).decode(), base64.b64encode(b"o" * 32).decode()
    event = {"id": "evt_1", "specversion": "1.0", "data": {"x": 1}}
    body = webhooks.body_of(event)
    stamp = int(datetime.now(UTC).timestamp())
    sent = webhooks.headers(
        event, [webhooks.decode_secret(f"whsec_{new}"), webhooks.decode_secret(old)], stamp, body
    )
    assert len(sent["webhook-signature"].split(" ")) == 2
    for secret in (new, old):  # a receiver on either secret accepts it: rotation
        assert standardwebhooks.Webhook(f"whsec_{secret}").verify(body, sent) == event
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(base64.b64encode(b"x" * 32).decode()).verify(body, sent)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):  # a changed body
        standardwebhooks.Webhook(new).verify(body.replace(b"1", b"2"), sent)


@pytest.mark.parametrize("bad", ["whsec_not base64!", "whsec_c2hvcnQ=", ""])
def test_secrets_that_are_not_secrets_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="secret"):
        webhooks.decode_secret(bad)


def _doc(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": "uid-1",
        "schema": 2,
        "kind": "LoraTraining",
        "name": "demo",
        "namespace": "team-a",
        "owner": "alice",
        "versions": [],
        "deletedVersions": [],
        "latestRun": {"generation": 1, "version": 1, "phase": "Running", "reason": "Running", "message": ""},
    }
    doc.update(over)
    return doc


def _kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["data"]["event"] for e in events]


def test_a_new_version_succeeds_once_and_a_poor_likeness_says_so() -> None:
    running = _doc()
    version = {
        "version": 1,
        "generation": 1,
        "createdAt": NOW,
        "costUsd": 2.5,
        "likeness": {"verdict": "poor"},
    }
    done = _doc(versions=[version], latestRun={"generation": 1, "version": 1, "phase": "Succeeded"})
    events = webhooks.events_of(running, done, NOW)
    assert _kinds(events) == ["succeeded", "likenessPoor"]
    first = events[0]
    assert first["specversion"] == "1.0" and first["type"] == "io.contentgen.loratraining.succeeded"
    assert first["source"] == "/apis/contentgen.io/v1alpha1/namespaces/team-a/loratrainings/demo"
    assert first["subject"] == "demo" and first["time"] == "2026-11-24T12:00:00Z"
    assert first["data"]["version"] == 1 and first["data"]["owner"] == "alice"
    json.dumps(first)  # JSON as it is
    # the same change seen again (a second write, another replica): the same ids, nothing new after
    assert [e["id"] for e in webhooks.events_of(running, done, NOW)] == [e["id"] for e in events]
    assert webhooks.events_of(done, done, NOW) == []
    # several transitions at once (after a restart): every version once
    two = _doc(versions=[version, {**version, "version": 2, "likeness": {"verdict": "good"}}])
    assert _kinds(webhooks.events_of(running, two, NOW)) == ["succeeded", "likenessPoor", "succeeded"]
    assert _kinds(webhooks.events_of(done, two, NOW)) == ["succeeded"]


def test_failures_and_waits_are_events_of_their_run() -> None:
    failed = _doc(
        latestRun={"generation": 1, "version": 1, "phase": "Failed", "error": {"reason": "ProviderError"}}
    )
    events = webhooks.events_of(_doc(), failed, NOW)
    assert _kinds(events) == ["failed"] and events[0]["data"]["reason"] == "ProviderError"
    assert webhooks.events_of(failed, failed, NOW) == []
    again = _doc(latestRun={"generation": 2, "version": 2, "phase": "Failed"})
    assert _kinds(webhooks.events_of(failed, again, NOW)) == ["failed"]  # another run failed
    budget = _doc(latestRun={"generation": 2, "version": 1, "phase": "Pending", "reason": "BudgetExceeded"})
    assert _kinds(webhooks.events_of(failed, budget, NOW)) == ["budgetReached"]
    assert webhooks.events_of(budget, budget, NOW) == []
    kueue = {"generation": 2, "version": 2, "phase": "Pending", "reason": "Queued"}
    held = _doc(latestRun={**kueue, "jobName": "demo-g2", "message": "Job demo-g2 waits: no quota"})
    assert _kinds(webhooks.events_of(budget, held, NOW)) == ["queued"]
    # the namespace's own Job limit: no Job yet, whatever the message says
    slot = _doc(latestRun={**kueue, "jobName": "", "message": "Job x waits in Kueue queue 'gpus'"})
    assert webhooks.events_of(budget, slot, NOW) == []


# --- from the records the operator writes: its decisions, then the catalog's document ----------

VIDEO_UID = "0b7f1f3e-aaaa-4bbb-8ccc-123456789abc"
LORA_UID = "11111111-2222-4333-8444-555555555555"
SHA = "ab" * 32


def _observed(kind: str, **spec: Any) -> Observed:
    base: dict[str, Any] = {"owner": "alice", "provider": "offline", "prompt": "p"}
    base["model"] = "wan-2.2-t2v" if kind == "VideoGeneration" else "flux-dev"
    return Observed(KINDS[kind], "demo", "team-a", VIDEO_UID, 1, {**base, **spec}, {})


def _record(
    res: Observed, previous: dict[str, Any] | None, results: dict[int, RunResult] | None = None
) -> dict[str, Any]:
    """The catalog record of `res` as the operator writes it (controller/catalog_sync.py)."""
    state = ResourceState(
        kind=res.kind.kind,
        name=res.name,
        namespace=res.namespace,
        uid=res.uid,
        generation=res.generation,
        spec=res.spec,
        status=res.status,
        created_at=NOW,
        results=results or {},
    )
    return catalog_document(state, now=NOW, origin="operator", previous=previous)


def _video_made(likeness: VideoLikeness | None) -> list[dict[str, Any]]:
    """The events of a VideoGeneration's run, from its Job's creation to its video stored."""
    res = _observed("VideoGeneration")
    started = decide(res, World(now=NOW))
    res = replace(res, status=started.status)
    before = _record(res, None)
    made = GeneratedVideo(
        uri=f"s3://bkt/generated-videos/alice/{VIDEO_UID}/v1/video.mp4",
        size_bytes=1000,
        sha256=SHA,
        duration_seconds=5.0625,
        frames=81,
        fps=16,
        width=832,
        height=480,
        likeness=likeness,
    )
    outcome = RunResult(
        kind="VideoGeneration",
        provider="offline",
        generation=1,
        version=1,
        video=made,
        spec=res.spec,
    )
    job = JobState(
        name=started.status["jobName"],
        namespace="team-a",
        uid=VIDEO_UID,
        generation=1,
        version=1,
        complete=True,
        succeeded=1,
    )
    done = decide(res, World(now=NOW, jobs=(job,), outcome=outcome))
    assert done.status["phase"] == "Succeeded"
    after = _record(replace(res, status=done.status), before, {1: outcome})
    stored = after["versions"][-1]["video"].get("likeness") or {}
    assert stored.get("verdict") == (likeness.verdict if likeness else None)
    return webhooks.events_of(before, after, NOW)


def test_a_video_whose_face_drifts_away_is_likeness_poor_as_a_lora_version_is() -> None:
    """A VideoGeneration's likeness is its video's (`video.likeness`, likeness over time), not a
    version's own: a poor one is likenessPoor, with the second the face was lowest and its drift."""
    lora = ResolvedLora(name="avatar", uid=LORA_UID, version=2, uri="s3://bkt/l.safetensors")
    poor = VideoLikeness(
        verdict="poor",
        reasons=["the face drifts from the person: 0.65 in the first third, 0.11 in the last"],
        median=0.4,
        lowest=0.08,
        lowest_at_seconds=4.625,
        drift=0.54,
        threshold=0.31,
        lora=lora,
    )
    events = _video_made(poor)
    assert _kinds(events) == ["succeeded", "likenessPoor"]
    flagged = events[1]
    assert flagged["type"] == "io.contentgen.videogeneration.likenessPoor"
    assert flagged["source"] == "/apis/contentgen.io/v1alpha1/namespaces/team-a/videogenerations/demo"
    assert flagged["data"]["likeness"] == {
        "verdict": "poor",
        "median": 0.4,
        "reasons": poor.reasons,
        "lowest": 0.08,
        "lowestAtSeconds": 4.625,
        "drift": 0.54,
    }
    assert events[0]["data"]["likeness"]["verdict"] == "poor"  # the succeeded event says it too
    assert webhooks.matches({"events": ["likenessPoor"], "kinds": ["VideoGeneration"]}, "team-a", flagged)
    # a clip that stays the person, one without a face, one never measured: succeeded only
    for verdict in ("good", "no-faces", "unmeasured"):
        assert _kinds(_video_made(poor.model_copy(update={"verdict": verdict}))) == ["succeeded"]
    assert _kinds(_video_made(None)) == ["succeeded"]


def test_budget_and_kueue_waits_are_events_of_the_records_the_operator_writes() -> None:
    """budgetReached and queued from the Ready condition's reason as the operator's decisions
    write it, through the catalog's record: not from a message's words."""
    res = _observed("ImageGeneration", provider="cluster")
    over = decide(res, World(now=NOW, over_budget="owner alice is at its monthly budget of 10 USD"))
    budget = _record(replace(res, status=over.status), None)
    assert budget["latestRun"]["reason"] == "BudgetExceeded"
    events = webhooks.events_of(None, budget, NOW)
    assert _kinds(events) == ["budgetReached"]
    assert events[0]["data"]["message"] == "owner alice is at its monthly budget of 10 USD"
    assert webhooks.events_of(budget, _record(replace(res, status=over.status), budget), NOW) == []
    # within the budget again: its Job is created, then held suspended by Kueue
    started = decide(res, World(now=NOW))
    res = replace(res, status=started.status)
    created = _record(res, budget)
    assert webhooks.events_of(budget, created, NOW) == []
    held = JobState(
        name=started.status["jobName"],
        namespace="team-a",
        uid=VIDEO_UID,
        generation=1,
        version=1,
        suspended=True,
        queue="gpus",
        gpus="1 nvidia.com/gpu",
    )
    waits = decide(res, World(now=NOW, jobs=(held,)))
    queued = _record(replace(res, status=waits.status), created)
    events = webhooks.events_of(created, queued, NOW)
    assert _kinds(events) == ["queued"] and events[0]["type"] == "io.contentgen.imagegeneration.queued"
    assert events[0]["data"]["reason"] == "Queued" and "'gpus'" in events[0]["data"]["message"]
    # Kueue's words change as it goes on (no quota, then admitted): the same wait, no new event
    reworded = {**waits.status, "message": f"Job {held.name} waits: admitted, not yet resumed"}
    assert webhooks.events_of(queued, _record(replace(res, status=reworded), queued), NOW) == []
    # evicted and queued again after running: a new wait of the same run, but the same event id,
    # so a receiver that has it already sees nothing new
    running = decide(res, World(now=NOW, jobs=(replace(held, suspended=False, active=1, ready=1),)))
    ran = _record(replace(res, status=running.status), queued)
    assert webhooks.events_of(queued, ran, NOW) == []
    again = webhooks.events_of(ran, _record(replace(res, status=waits.status), ran), NOW)
    assert [e["id"] for e in again] == [e["id"] for e in events]


def test_waiting_for_the_namespaces_job_limit_is_not_queued() -> None:
    """Queued is also the namespace's own limit (maxRunningJobsPerNamespace): no Job exists yet,
    so nothing is held by a queue and no event is sent."""
    res = _observed("ImageGeneration", provider="cluster")
    slot = decide(res, World(now=NOW, may_start=False))
    record = _record(replace(res, status=slot.status), None)
    assert record["latestRun"]["reason"] == "Queued" and not record["latestRun"]["jobName"]
    assert webhooks.events_of(None, record, NOW) == []


def test_matching_is_per_namespace_then_by_filters() -> None:
    event = webhooks.events_of(None, _doc(versions=[{"version": 1, "generation": 1}]), NOW)[0]
    assert webhooks.matches({}, "team-a", event)
    assert not webhooks.matches({}, "team-b", event)
    assert webhooks.matches(
        {"events": ["succeeded"], "kinds": ["LoraTraining"], "owners": ["alice"]}, "team-a", event
    )
    assert not webhooks.matches({"events": ["failed"]}, "team-a", event)
    assert not webhooks.matches({"kinds": ["Transcription"]}, "team-a", event)
    assert not webhooks.matches({"owners": ["bob"]}, "team-a", event)


def test_retries_follow_the_schedule_with_full_jitter_then_stop() -> None:
    assert [webhooks.next_wait(n, lambda: 1.0) for n in range(1, 9)] == [*webhooks.SCHEDULE, None]
    assert webhooks.next_wait(1, lambda: 0.0) == webhooks.MIN_WAIT
    assert 0 < webhooks.next_wait(4, lambda: 0.5) == 3600.0  # type: ignore[operator]
    assert sum(webhooks.SCHEDULE) > 24 * 3600  # over a day of retries
    assert [webhooks.outcome(c) for c in (200, 204, 410, 404, 500, 0, 301)] == [
        "delivered",
        "delivered",
        "disabled",
        "retry",
        "retry",
        "retry",
        "retry",
    ]


def test_an_answers_excerpt_is_bounded_and_printable() -> None:
    assert webhooks.excerpt(b"ok\x00" + b"x" * 5000) == "ok?" + "x" * (webhooks.EXCERPT_BYTES - 3)
