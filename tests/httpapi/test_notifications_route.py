"""GET /api/notifications/deliveries: the webhook delivery log, each owner's only; POST
/api/notifications/deliveries/ID/replay: the Notification's annotation contentgen.io/replay set to
a new value naming the event (a merge patch on the version read, against a fake API server here;
tests/httpapi/test_kube.py against the real one); on a laptop the delivery waits again for the next
run; where there is neither, refused with the kubectl command."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from contentgen.catalog import Catalog, webhooks
from contentgen.catalog.deliveries import Deliveries, Sender
from contentgen.httpapi import ApiSettings, create_app
from contentgen.httpapi.creators import KubeCreator
from contentgen.httpapi.kube import KubeError
from contentgen.httpapi.routes.notifications import replay_value
from contentgen.store import LocalStore
from tests.httpapi.conftest import auth
from tests.httpapi.documented import Answers


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


REPLAY = "/api/notifications/deliveries/{id}/replay"


@pytest.mark.asyncio
async def test_a_replay_without_a_cluster_says_where_notifications_are_delivered(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    alices = _deliver(catalog, "alice", "u-a")
    path = REPLAY.format(id=f"n-1:{alices}")
    refused = await client.post(path, headers=auth("alice"))
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "not_in_cluster" and "\n" not in error["message"]
    assert "delivered by the operator in a cluster" in error["message"]
    assert f"kubectl annotate -n team-a notification/hooks contentgen.io/replay={alices}" in error["message"]
    # another owner's delivery is not there for bob; an id that is no delivery's is not for anyone
    assert (await client.post(path, headers=auth("bob"))).json()["error"]["code"] == "not_found"
    assert (await client.post(REPLAY.format(id="n-2:" + alices), headers=auth("ops"))).status_code == 404
    assert (await client.post(REPLAY.format(id="no-event"), headers=auth("alice"))).status_code == 400
    assert (await client.post(path)).status_code == 401


class FakeKube:
    """The Notification team-a/hooks as the API server keeps it: a merge patch applies only to the
    resourceVersion it names (409 otherwise); `races` patches come after another writer's."""

    def __init__(self, uid: str = "n-1") -> None:
        self.body: dict[str, Any] = {
            "metadata": {"name": "hooks", "namespace": "team-a", "uid": uid, "resourceVersion": "1"},
            "status": {},
        }
        self.races = 0
        self.refuse = False
        self.patches: list[tuple[str, dict[str, Any]]] = []

    def get(self, plural: str, namespace: str, name: str) -> Any:
        assert (plural, namespace, name) == ("notifications", "team-a", "hooks")
        return json.loads(json.dumps(self.body))

    def merge_patch(self, plural: str, namespace: str, name: str, body: Any) -> Any:
        self.patches.append((f"{plural}/{namespace}/{name}", body))
        if self.refuse:
            raise KubeError(403, {"message": 'notifications.contentgen.io "hooks" is forbidden'})
        meta = self.body["metadata"]
        if self.races:
            self.races -= 1
            meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)
        if body["metadata"]["resourceVersion"] != meta["resourceVersion"]:
            raise KubeError(409, {"message": "the object has been modified"})
        meta.setdefault("annotations", {}).update(body["metadata"]["annotations"])
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)
        return self.body


@pytest.mark.asyncio
async def test_a_replay_in_a_cluster_annotates_the_notification_with_a_new_value(
    catalog: Catalog, store: LocalStore, settings: ApiSettings
) -> None:
    alices = _deliver(catalog, "alice", "u-a")
    kube = FakeKube()
    answers = Answers(create_app(settings, catalog=catalog, store=lambda: store, creator=KubeCreator(kube)))  # type: ignore[arg-type]
    path = REPLAY.format(id=f"n-1:{alices}")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=answers), base_url="http://api") as http:
        first = await http.post(path, headers=auth("alice"))
        assert first.status_code == 202, first.text
        assert first.json()["value"] == alices and first.json()["annotation"] == "contentgen.io/replay"
        assert first.json()["notification"] == {"namespace": "team-a", "name": "hooks", "uid": "n-1"}
        assert kube.body["metadata"]["annotations"] == {"contentgen.io/replay": alices}
        kube.races = 1  # another writer came first: read again, patched on the new version
        again = await http.post(path, headers=auth("alice"))
        assert again.status_code == 202 and again.json()["value"] == f"{alices}#2"
        assert [p[1]["metadata"]["resourceVersion"] for p in kube.patches] == ["1", "2", "3"]
        # the operator acted on #5 (its status says), the annotation since names another event
        kube.body["status"]["replayed"] = f"{alices}#5"
        kube.body["metadata"]["annotations"]["contentgen.io/replay"] = "evt_0123"
        assert (await http.post(path, headers=auth("ops"))).json()["value"] == f"{alices}#6"
        assert (await http.post(path, headers=auth("bob"))).status_code == 404
        kube.races = 10
        busy = await http.post(path, headers=auth("alice"))
        assert busy.status_code == 409 and busy.json()["error"]["code"] == "conflict"
        kube.races, kube.refuse = 0, True
        forbidden = await http.post(path, headers=auth("alice"))
        assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "forbidden"
        kube.body["metadata"]["uid"] = "n-other"  # deleted, and made again under the same name
        gone = await http.post(path, headers=auth("alice"))
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "gone"
    assert answers.undocumented() == []


def test_a_replay_value_is_new_each_time() -> None:
    assert replay_value("evt_a") == "evt_a"
    assert replay_value("evt_a", "evt_b", "") == "evt_a"
    assert replay_value("evt_a", "evt_a", "evt_a") == "evt_a#2"
    assert replay_value("evt_a", "evt_a#2", "evt_a") == "evt_a#3"
    assert replay_value("evt_a", "evt_a#again", "") == "evt_a#2"


@pytest.mark.asyncio
async def test_a_replay_on_a_laptop_puts_the_delivery_back_for_its_next_run(
    catalog: Catalog, store: LocalStore, settings: ApiSettings, tmp_path: Any
) -> None:
    """`contentgen api --local`: the delivery of a kept Notification waits again in the local catalog
    (the next `contentgen run`, or `contentgen notifications send`, sends it); one whose Notification
    is no longer kept is gone (404)."""
    from contentgen.catalog.laptop_notifications import KeptNotifications
    from contentgen.pipeline.settings import PipelineSettings
    from tests.harness.creators import HeldCreator

    kept, _ = KeptNotifications(catalog).keep(
        {"apiVersion": "contentgen.io/v1alpha1", "kind": "Notification",
         "metadata": {"namespace": "team-a", "name": "hooks"}, "spec": {"url": "http://127.0.0.1:8000/"}}
    )  # fmt: skip
    doc = {"_id": "u-a", "schema": 2, "kind": "Transcription", "name": "talk", "namespace": "team-a",
           "owner": "alice", "versions": [{"version": 1, "generation": 1}]}  # fmt: skip
    [event] = webhooks.events_of(None, doc, datetime(2026, 11, 24, tzinfo=UTC))
    deliveries = Deliveries(catalog)
    deliveries.enqueue([event])
    deliveries.fan_out(event, [kept])
    [due] = deliveries.due()
    claim = deliveries.claim(due, Sender("contentgen-run"))
    assert claim is not None and deliveries.record(claim, code=503, answer="busy") is not None
    creator = HeldCreator(
        catalog, lambda: store, offline=True, settings=PipelineSettings(work_dir=tmp_path / "w")
    )
    app = Answers(create_app(settings, catalog=catalog, store=lambda: store, creator=creator))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            path = REPLAY.format(id=f"{kept['_id']}:{event['id']}")
            asked = await client.post(path, headers=auth("alice"))
            assert asked.status_code == 202, asked.text
            body = asked.json()
            assert (body["annotation"], body["value"]) == (None, None)
            assert body["message"] == (
                f"{event['id']} waits again for Notification team-a/hooks: the next `contentgen run` on "
                "this machine sends it, or now: contentgen notifications send team-a/hooks."
            )
            [again] = deliveries.find(None, event_id=str(event["id"]))
            assert (again["status"], again["replays"], len(again["attempts"])) == ("pending", 1, 1)
            KeptNotifications(catalog).delete("team-a", "hooks")
            gone = await client.post(path, headers=auth("alice"))
            assert gone.status_code == 404 and gone.json()["error"]["code"] == "gone"
    finally:
        creator.close()
    assert app.undocumented() == []
