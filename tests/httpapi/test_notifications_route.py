"""GET /api/notifications/deliveries: the webhook delivery log, each owner's only."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from contentgen.catalog import Catalog, webhooks
from contentgen.catalog.deliveries import Deliveries, Sender
from tests.httpapi.conftest import auth


def _deliver(catalog: Catalog, owner: str, uid: str) -> str:
    doc = {"_id": uid, "schema": 2, "kind": "Transcription", "name": uid, "namespace": "team-a",
           "owner": owner, "versions": [{"version": 1, "generation": 1}]}  # fmt: skip
    [event] = webhooks.events_of(None, doc, datetime(2026, 11, 24, tzinfo=UTC))
    store = Deliveries(catalog)
    store.enqueue([event])
    store.fan_out(event, [{"metadata": {"namespace": "team-a", "name": "hooks", "uid": "n-1"}}])
    [due] = [d for d in store.due() if d["eventId"] == event["id"]]
    claim = store.claim(due, Sender("operator"))
    assert claim is not None
    store.record(claim, code=503, answer="busy")
    return str(event["id"])


@pytest.mark.asyncio
async def test_each_owner_sees_the_deliveries_of_their_resources_only(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    alices, bobs = _deliver(catalog, "alice", "u-a"), _deliver(catalog, "bob", "u-b")
    answer = await client.get("/api/notifications/deliveries", headers=auth("alice"))
    assert answer.status_code == 200
    [item] = answer.json()["items"]
    assert item["eventId"] == alices and item["status"] == "retrying" and item["attemptCount"] == 1
    assert item["attempts"][0]["code"] == 503 and item["attempts"][0]["answer"] == "busy"
    assert item["notification"]["name"] == "hooks" and item["nextAttemptAt"] is not None
    assert "claim" not in item and "event" not in item
    everyone = await client.get("/api/notifications/deliveries", headers=auth("ops"))
    assert {i["eventId"] for i in everyone.json()["items"]} == {alices, bobs}
    none = await client.get(
        "/api/notifications/deliveries", params={"event": bobs, "namespace": "team-a"}, headers=auth("alice")
    )
    assert none.json() == {"items": []}
    bad = await client.get("/api/notifications/deliveries", params={"limit": 0}, headers=auth("alice"))
    assert bad.status_code == 400
    assert (await client.get("/api/notifications/deliveries")).status_code == 401
