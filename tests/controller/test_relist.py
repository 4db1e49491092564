"""kopf listing a custom resource again (controller/relist.py), against a scripted API server and
kopf's own index class: a resource the operator's listing lacks is forgotten everywhere, unless
it is newer than the listing; a resource delivered again at the version already handled changed
nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from kopf._core.engines.indexing import OperatorIndexer

from contentgen.api import KINDS
from contentgen.controller import relist
from contentgen.controller.budget import spender
from contentgen.controller.job_admission import Backoff, NamespaceQueue
from contentgen.controller.kube import Kube
from contentgen.controller.settings import OperatorSettings
from contentgen.controller.state import Kept, Operator

IMAGES = KINDS["ImageGeneration"]


def body(name: str, uid: str, rv: str = "1") -> dict[str, Any]:
    return {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "ImageGeneration",
        "metadata": {
            "name": name,
            "namespace": "n",
            "uid": uid,
            "resourceVersion": rv,
            "creationTimestamp": "2026-11-23T00:00:00Z",
        },
        "spec": {"owner": "alice", "provider": "offline", "prompt": "a lighthouse", "numImages": 1},
        "status": {},
    }


class Server:
    """The API server's answers: `listed` for the listing of the kind, `now` for a listing by name
    (what exists now, which may be newer than the listing)."""

    def __init__(self, listed: list[str], now: dict[str, str]) -> None:
        self.listed, self.now = listed, now
        self.requests: list[tuple[str, dict[str, str], str]] = []

    async def request(self, method: str, path: str, *, params: dict[str, str], accept: str) -> Any:
        self.requests.append((path, dict(params), accept))
        selector = params.get("fieldSelector", "")
        if selector:
            name = selector.removeprefix("metadata.name=")
            uid = self.now.get(name)
            return {"items": [{"metadata": {"name": name, "uid": uid}}] if uid else []}
        return {"items": [{"metadata": {"uid": uid}} for uid in self.listed], "metadata": {}}


def operator(server: Server, *bodies: dict[str, Any]) -> tuple[Operator, OperatorIndexer]:
    op = Operator(
        settings=OperatorSettings(),
        kube=Kube.__new__(Kube),
        queue=NamespaceQueue(2),
        backoff=Backoff(1.0),
    )
    op.kube = server  # type: ignore[assignment]
    indexer = OperatorIndexer()
    for b in bodies:
        meta = b["metadata"]
        kept = Kept(json.dumps(b), spender(b))
        indexer.replace((meta["namespace"], meta["name"], meta["uid"]), {("n", meta["uid"]): kept})
        op.versions[meta["uid"]] = meta["resourceVersion"]
    op.indexes["imagegenerations_by_uid"] = indexer.index
    return op, indexer


def test_a_resource_the_listing_lacks_is_forgotten_everywhere() -> None:
    server = Server(listed=["u-kept"], now={"kept": "u-kept"})
    op, indexer = operator(server, body("kept", "u-kept"), body("gone", "u-gone"))
    op.queue.wait("n", "u-gone", "2026-11-23T00:00:00Z")  # Queued when it was deleted

    async def go() -> int:
        return await relist.prune(op, IMAGES)

    assert asyncio.run(go()) == 1
    assert ("n", "u-gone") not in indexer.index and ("n", "u-kept") in indexer.index
    assert "u-gone" not in op.queue.waiting.get("n", {})  # no longer first in line
    assert "u-gone" not in op.versions
    # the listing asked for metadata only, and the missing one was looked up by name
    assert all("PartialObjectMetadataList" in accept for _, _, accept in server.requests)
    assert server.requests[-1][1] == {"fieldSelector": "metadata.name=gone"}


def test_a_resource_newer_than_the_listing_stays() -> None:
    server = Server(listed=[], now={"new": "u-new"})
    op, indexer = operator(server, body("new", "u-new"))
    assert asyncio.run(relist.prune(op, IMAGES)) == 0
    assert ("n", "u-new") in indexer.index


def test_a_new_resource_under_a_deleted_ones_name_does_not_keep_the_old_one() -> None:
    server = Server(listed=["u-second"], now={"same": "u-second"})
    op, indexer = operator(server, body("same", "u-first"))
    assert asyncio.run(relist.prune(op, IMAGES)) == 1
    assert ("n", "u-first") not in indexer.index


def test_a_relisted_resource_at_the_version_handled_changed_nothing() -> None:
    op, _ = operator(Server([], {}))

    async def go() -> list[bool]:
        meta = body("r", "u-r", rv="7")["metadata"]
        seen = [relist.unchanged(op, IMAGES, meta, listing=True)]  # the first listing: new
        seen.append(relist.unchanged(op, IMAGES, meta, listing=True))  # listed again, unchanged
        seen.append(relist.unchanged(op, IMAGES, {**meta, "resourceVersion": "9"}, listing=True))
        seen.append(relist.unchanged(op, IMAGES, {**meta, "resourceVersion": "9"}, listing=False))
        for task in list(op.tasks):
            task.cancel()
        return seen

    # A watch event at the version handled is not a relist's: only listings are skipped.
    assert asyncio.run(go()) == [False, True, False, False]
    assert "ImageGeneration" in op.relisting  # the second listing was taken for kopf's relist


def test_a_resource_deleted_while_its_decision_read_the_namespace_takes_no_place_in_the_queue(
    monkeypatch: Any,
) -> None:
    """Found in CI (tests/kube/test_watches.py): a Queued resource's reconcile was reading its
    namespace when a relist found it deleted and forgot it; the reconcile then put it back in the
    queue, before the resource behind it, which never started. Now a decision whose resource left
    the index meanwhile takes no place and decides nothing."""
    from contentgen.controller import reconciler
    from contentgen.controller.decide import Observed

    server = Server(listed=["u-first"], now={"first": "u-first"})
    first, gone = body("first", "u-first"), body("gone", "u-gone")
    op, indexer = operator(server, first, gone)
    for name in ("loras_by_name", "jobs_by_owner", "pods_by_job"):
        op.indexes[name] = OperatorIndexer().index
    op.store = None
    reading, read = asyncio.Event(), asyncio.Event()

    async def namespace(op: Operator, namespace: str) -> Any:
        reading.set()
        await read.wait()  # the relist runs meanwhile
        return {}, {}

    monkeypatch.setattr(reconciler, "_namespace_metadata", namespace)
    observed = Observed(IMAGES, "gone", "n", "u-gone", 1, gone["spec"], {})

    async def go() -> Any:
        op.queue.start("n", "u-a")  # both slots held: gone would be Queued
        op.queue.start("n", "u-b")
        deciding = asyncio.ensure_future(reconciler._decide(op, observed, "2026-11-23T00:00:00Z"))
        await asyncio.wait_for(reading.wait(), 10)
        assert await relist.prune(op, IMAGES) == 1  # forgotten while its decision was reading
        read.set()
        return await deciding

    monkeypatch.setattr(reconciler, "running_uids", lambda op, namespace: {"u-a", "u-b"})
    assert asyncio.run(go()) is None
    assert "u-gone" not in op.queue.waiting.get("n", {})
    assert ("n", "u-gone") not in indexer.index
