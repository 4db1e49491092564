"""Webhook deliveries kept in the catalog: enqueued once per event id, fanned out once per
Notification, each attempt claimed by one sender (conditional writes), the retry state surviving
a new process (a restart, a handover), replays."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from contentgen.catalog import Catalog, webhooks
from contentgen.catalog.deliveries import CLAIM_SECONDS, Deliveries, Sender

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _notification(uid: str = "n-1", namespace: str = "team-a") -> dict[str, Any]:
    return {"metadata": {"name": "hooks", "namespace": namespace, "uid": uid}, "spec": {}}


def _events(n: int = 2) -> list[dict[str, Any]]:
    doc = {
        "_id": "uid-1",
        "schema": 2,
        "kind": "Transcription",
        "name": "talk",
        "namespace": "team-a",
        "owner": "alice",
        "versions": [{"version": v, "generation": 1} for v in range(1, n + 1)],
        "latestRun": {"generation": 1, "version": n, "phase": "Succeeded"},
    }
    return webhooks.events_of(None, doc, NOW)


def test_events_are_kept_once_and_fanned_out_once(catalog: Catalog) -> None:
    store = Deliveries(catalog, Clock())
    store.ensure_indexes()
    events = _events()
    assert store.enqueue(events) == 2
    assert store.enqueue(events) == 0  # the same change written again: the same events
    assert [e["id"] for e in store.unfanned()] == [e["id"] for e in events]
    for event in store.unfanned():
        assert store.fan_out(event, [_notification()]) == 1
    assert store.unfanned() == []
    assert store.fan_out(events[0], [_notification()]) == 0  # a crash before `fanned`: no second
    assert len(store.due()) == 2


def test_an_attempt_is_claimed_by_one_sender_and_retried_on_the_schedule(catalog: Catalog) -> None:
    clock = Clock()
    store = Deliveries(catalog, clock)
    store.enqueue(_events(1))
    store.fan_out(store.unfanned()[0], [_notification()])
    [due] = store.due()
    mine = store.claim(due, Sender("operator-a", 1))
    assert mine is not None and mine["claim"]["attempt"] == 1
    assert store.claim(due, Sender("operator-b", 2)) is None  # the same attempt: one claim wins
    assert store.claim(store.due()[0], Sender("operator-b", 2)) is None  # the claim holds
    after = store.record(mine, code=503, answer="busy", rand=lambda: 1.0)
    assert after is not None and after["status"] == "retrying"
    assert after["nextAttemptAt"] == clock.now + webhooks.SCHEDULE[0]
    assert after["attempts"][-1] | {"at": 0} == {
        "attempt": 1,
        "at": 0,
        "code": 503,
        "answer": "busy",
        "error": "",
        "by": "operator-a",
    }
    assert store.due() == []
    clock.now += webhooks.SCHEDULE[0]
    # a new process (the operator restarted, or another replica leads): the state is the catalog's
    fresh = Deliveries(catalog, clock)
    [due] = fresh.due()
    claim = fresh.claim(due, Sender("operator-b", 2))
    assert claim is not None and claim["claim"]["attempt"] == 2
    done = fresh.record(claim, code=204)
    assert done is not None and done["status"] == "delivered" and done["attemptCount"] == 2
    assert fresh.due() == []
    [logged] = fresh.log("n-1")
    assert [a["code"] for a in logged["attempts"]] == [503, 204]
    assert fresh.log("n-1", owners=["bob"]) == []


def test_a_claim_left_by_a_crash_expires_and_a_late_record_is_refused(catalog: Catalog) -> None:
    clock = Clock()
    store = Deliveries(catalog, clock)
    store.enqueue(_events(1))
    store.fan_out(store.unfanned()[0], [_notification()])
    old = store.claim(store.due()[0], Sender("operator-a", 1))
    assert old is not None
    assert store.claim(store.due()[0], Sender("operator-b", 2)) is None
    clock.now += CLAIM_SECONDS
    new = store.claim(store.due()[0], Sender("operator-b", 2))
    assert new is not None and new["claim"]["by"] == "operator-b"
    assert store.record(old, code=200) is None  # the former leader's late answer changes nothing
    assert store.record(new, code=200) is not None


def test_410_disables_retries_end_and_replay_sends_again(catalog: Catalog) -> None:
    clock = Clock()
    store = Deliveries(catalog, clock)
    store.enqueue(_events(2))
    for event in store.unfanned():
        store.fan_out(event, [_notification()])
    first, second = store.due()
    gone = store.record(store.claim(first, Sender("a")), code=410)  # type: ignore[arg-type]
    assert gone is not None and gone["status"] == "disabled"
    delivery = second
    for attempt in range(1, webhooks.MAX_ATTEMPTS + 1):
        claim = store.claim(delivery, Sender("a"))
        assert claim is not None, attempt
        delivery = store.record(claim, code=500, rand=lambda: 1.0)  # type: ignore[assignment]
        clock.now += 40_000
    assert delivery["status"] == "failed" and delivery["nextAttemptAt"] is None
    assert store.due() == []
    assert store.replay(_notification(), delivery["eventId"])
    [again] = store.due()
    assert again["eventId"] == delivery["eventId"] and again["replays"] == 1
    assert len(again["attempts"]) == webhooks.MAX_ATTEMPTS  # the log is kept
    # an event to a Notification made after it: a delivery of its own
    assert store.replay(_notification("n-2"), delivery["eventId"])
    assert not store.replay(_notification(), "evt_none")


def test_pruning_before_any_event_leaves_the_collections_writable(catalog: Catalog) -> None:
    """The operator prunes each round, often before its first event: on the embedded catalog
    montydb's delete on a collection never written made an empty SQLite file without its table,
    and every later write (the events of every record's change) failed 'no such table'."""
    clock = Clock()
    store = Deliveries(catalog, clock)
    assert store.prune(older_than=0) == 0
    assert store.due() == []
    assert store.enqueue(_events(1)) == 1
    store.fan_out(store.unfanned()[0], [_notification()])
    assert len(store.due()) == 1
    again = Deliveries(catalog, clock)  # a new process over the same catalog
    assert again.enqueue(_events(2)) == 1
