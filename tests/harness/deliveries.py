"""Webhook deliveries made and attempted through the delivery log's own API
(contentgen.catalog.deliveries), as the operator's notifier makes them, on a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from contentgen.catalog import webhooks
from contentgen.catalog.deliveries import Deliveries, Sender

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def events(
    owner: str, uid: str, name: str, kind: str = "Transcription", versions: int = 1
) -> list[dict[str, Any]]:
    doc = {
        "_id": uid,
        "schema": 2,
        "kind": kind,
        "name": name,
        "namespace": "team-a",
        "owner": owner,
        "versions": [{"version": v, "generation": 1} for v in range(1, versions + 1)],
    }
    return webhooks.events_of(None, doc, datetime(2026, 11, 24, tzinfo=UTC))


def notification(namespace: str, name: str) -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name, "uid": f"uid-{namespace}-{name}"}}


def deliver(
    store: Deliveries,
    clock: Clock,
    event: dict[str, Any],
    to: dict[str, Any],
    answers: list[tuple[int, str, str]],
) -> None:
    """`event` fanned out to the Notification `to`, then attempted once per answer (code, body,
    error), each a minute after the last, through the log's own claim and record."""
    store.enqueue([event])
    store.fan_out(event, [to])
    for code, answer, error in answers:
        [due] = [d for d in store.due(of=[to["metadata"]["uid"]]) if d["eventId"] == event["id"]]
        claim = store.claim(due, Sender("operator-0", 1))
        assert claim is not None
        assert store.record(claim, code=code, answer=answer, error=error, rand=lambda: 0.5) is not None
        clock.now += 60 * 60 * 24  # past any wait: the next attempt is due
    clock.now += 60
