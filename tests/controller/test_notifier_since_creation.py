"""A Notification is sent the events that happened once it existed (issue 70), in a cluster as on a
laptop (catalog/deliveries.py `wants`): events kept from before its creationTimestamp (an operator
that was away while both happened) are handed to no one; earlier ones are sent on a replay."""

from __future__ import annotations

from pathlib import Path

import pytest

from contentgen.catalog.deliveries import Deliveries, wants
from contentgen.catalog.embedded import EmbeddedCatalog
from contentgen.controller import notifier
from tests.controller.test_notifier import Clock, FakeKube, Receiver, _operator, _record, _resource, receiver  # noqa: F401 (a fixture)

EVENT = {"id": "evt_1", "time": "2026-11-21T12:05:00Z", "data": {"namespace": "team-a", "event": "succeeded"}}


def _notification(created: str | None) -> dict[str, object]:
    meta = {"namespace": "team-a", "name": "hooks", "uid": "n-1"}
    return {"metadata": {**meta, **({"creationTimestamp": created} if created else {})}, "spec": {}}


def test_wants_the_events_from_its_creation_on() -> None:
    assert wants(_notification("2026-11-21T12:05:00Z"), EVENT)  # the same second
    assert wants(_notification("2026-11-21T12:00:00Z"), EVENT)
    assert not wants(_notification("2026-11-21T12:05:01Z"), EVENT)
    assert wants(_notification(None), EVENT)  # no creation time: not judged by time
    assert wants(_notification("2026-11-21T12:05:01Z"), {**EVENT, "time": None})
    assert not wants(_notification(None), {**EVENT, "data": {"namespace": "team-b"}})  # and its filters


@pytest.mark.asyncio
async def test_the_operator_hands_a_notification_only_what_happened_after_it_was_made(
    tmp_path: Path,
    receiver: tuple[str, Receiver],  # noqa: F811 (test_notifier's fixture)
) -> None:
    url, got = receiver
    kube = FakeKube(url)
    kube.notification["metadata"]["creationTimestamp"] = "2026-11-21T12:10:00Z"  # after the resources' events
    catalog = EmbeddedCatalog(tmp_path / "catalog")
    try:
        op = _operator(catalog, kube)
        events = await _record(op, _resource("talk", "u-1", "Succeeded"), _resource("call", "u-2", "Failed"))
        assert len(events) == 2
        deliveries = Deliveries(catalog, Clock())
        await notifier.Notifier(op, deliveries).round()
        assert got.seen == [] and deliveries.unfanned() == []  # handed out, to no one
        assert deliveries.log("n-1") == []
        # a replay (the annotation) sends an earlier one all the same
        kube.notification["metadata"]["annotations"]["contentgen.io/replay"] = events[0]
        await notifier.Notifier(op, deliveries).round()
        assert got.accepted == [events[0]]
    finally:
        catalog.close()
