"""Webhooks' pure part: the Standard Webhooks signature (the specification's own test vector, and
its library verifying ours), the events a record's change emits, matching, the retry schedule."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import standardwebhooks

from contentgen.catalog import webhooks

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
    held = _doc(latestRun={**kueue, "message": "Job x waits in Kueue queue 'gpus': no quota"})
    assert _kinds(webhooks.events_of(budget, held, NOW)) == ["queued"]
    slot = _doc(latestRun={**kueue, "message": "waiting for a free slot: namespace a runs its maximum"})
    assert webhooks.events_of(budget, slot, NOW) == []  # the namespace's own queue is not Kueue's


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
