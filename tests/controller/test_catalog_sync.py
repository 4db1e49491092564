"""The operator's catalog writes (controller/catalog_sync.py) on virtual time: a resource's record
follows its status at most once per interval, the latest state is always written, deletions are
marked with their policy, and the safety net marks records whose resources are gone."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import mongomock
import pytest

from contentgen.catalog.mongo import MongoCatalog
from contentgen.controller import catalog_sync
from contentgen.controller.job_admission import Backoff, NamespaceQueue
from contentgen.controller.settings import OperatorSettings
from contentgen.controller.state import Kept, Operator

UID = "0b7f1f3e-aaaa-4bbb-8ccc-123456789abc"  # a Kubernetes (v4) uid
SPEC = {
    "owner": "alice",
    "provider": "offline",
    "source": {"url": "https://e.com/v.mp4"},
    "triggerWord": "tw",
}


class Clock:
    """Virtual time: sleepers wake when the test moves the clock past their time."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.now + seconds, woken))
        await woken

    async def advance(self, seconds: float) -> None:
        self.now += seconds
        for due, woken in [s for s in self.sleepers if s[0] <= self.now]:
            self.sleepers.remove((due, woken))
            woken.set_result(None)
        await settle()


class CountingCatalog(MongoCatalog):
    def __init__(self, clock: Clock) -> None:
        super().__init__(mongomock.MongoClient(), "contentgen")
        self.clock, self.writes = clock, []  # type: list[tuple[float, str, int]]

    def modify(self, uid: str, change: Any) -> Any:
        written = super().modify(uid, change)
        if written is not None:
            run = written["latestRun"]
            self.writes.append((self.clock(), run["stage"], run["progress"]))
        return written


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    virtual = Clock()
    monkeypatch.setattr(catalog_sync, "clock", virtual)
    monkeypatch.setattr(catalog_sync, "sleep", virtual.sleep)

    async def inline(function: Any, *args: Any, **kwargs: Any) -> Any:  # the catalog calls, in order
        return function(*args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", inline)
    return virtual


def operator(catalog: Any) -> Operator:
    return Operator(
        settings=OperatorSettings(catalog_write_interval_seconds=1.0),
        kube=None,  # type: ignore[arg-type]
        queue=NamespaceQueue(2),
        backoff=Backoff(1.0),
        catalog=catalog,
    )


def body(stage: str, progress: int, phase: str = "Running", **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "LoraTraining",
        "metadata": {"name": "avatar", "namespace": "ns", "uid": UID, "generation": 1,
                     "creationTimestamp": "2026-11-21T12:00:00Z"},
        "spec": SPEC,
        "status": {"phase": phase, "stage": stage, "progress": progress, "observedGeneration": 1,
                   "runVersion": 1, "jobName": "avatar-g1", "startedAt": "2026-11-21T12:00:00Z", **status},
    }  # fmt: skip


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_progress_is_mirrored_at_most_once_a_second_and_the_last_state_always(clock: Clock) -> None:
    catalog = CountingCatalog(clock)
    op = operator(catalog)
    current = {"body": body("fetch", 0)}

    async def note(stage: str, progress: int, phase: str = "Running", after: float = 0.1) -> None:
        await clock.advance(after)
        current["body"] = body(stage, progress, phase)
        catalog_sync.note_change(op, UID, lambda: current["body"])
        await settle()

    await note("fetch", 0, after=0)
    for percent in (8, 12, 18, 24, 29, 33, 39):  # the dataset stage, every 0.1 s
        await note("dataset", percent)
    await note("train", 50)
    await clock.advance(2.0)  # the delayed write fires
    await note("train", 77, after=3.0)
    await note("store-model", 95, after=0.2)
    await clock.advance(2.0)
    times = [t for t, *_ in catalog.writes]
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(times)), catalog.writes
    assert [(stage, progress) for _, stage, progress in catalog.writes] == [
        ("fetch", 0),  # at once
        ("train", 50),  # a second later: what the resource showed then (the 0.1 s steps in between)
        ("train", 77),  # at once: more than a second after the last
        ("store-model", 95),  # the last state, after waiting its turn
    ]
    doc = catalog.record(UID)
    assert doc is not None and doc["latestRun"]["stage"] == "store-model" and doc["status"] == "Running"
    assert op.catalog_pending == {}


@pytest.mark.asyncio
async def test_nothing_new_is_no_write_and_a_deleted_resource_is_not_written_back(clock: Clock) -> None:
    catalog = CountingCatalog(clock)
    op = operator(catalog)
    same = body("dataset", 20)
    catalog_sync.note_change(op, UID, lambda: same)
    await settle()
    await clock.advance(5)
    catalog_sync.note_change(op, UID, lambda: json.loads(json.dumps(same)))  # the same state again
    await settle()
    assert len(catalog.writes) == 1
    catalog_sync.note_change(op, UID, lambda: body("dataset", 30))
    await settle()
    assert len(catalog.writes) == 2
    catalog_sync.note_change(op, UID, lambda: body("dataset", 40))  # waits its turn...
    await catalog_sync.mark_gone(op, body("dataset", 40))  # ...and the resource is deleted meanwhile
    doc = catalog.record(UID)
    assert doc is not None and doc["latestRun"]["phase"] == "Cancelled"
    assert doc["deleted"]["policy"] == "Retain" and doc["deleted"]["outputsKept"] is True
    op.forget("ns", UID)  # what the DELETED event does: the waiting write is cancelled
    await clock.advance(2.0)
    assert catalog.record(UID)["latestRun"]["phase"] == "Cancelled"  # type: ignore[index]
    assert len(catalog.writes) == 3  # the mark; nothing after it


@pytest.mark.asyncio
async def test_deletion_with_policy_delete_keeps_the_finalizers_mark(clock: Clock) -> None:
    catalog = CountingCatalog(clock)
    op = operator(catalog)
    await catalog_sync.sync_catalog(
        op, body("done", 100, "Succeeded"), body("done", 100, "Succeeded")["status"], None
    )
    catalog.mark_deleted(UID, catalog_sync.now(), policy="Delete", outputs_kept=False, by="operator")
    gone = body("done", 100, "Succeeded")
    gone["spec"] = {**SPEC, "deletionPolicy": "Delete"}
    await catalog_sync.mark_gone(op, gone)
    doc = catalog.record(UID)
    assert doc is not None and doc["status"] == "Deleted" and doc["deleted"]["outputsKept"] is False


@pytest.mark.asyncio
async def test_the_safety_net_marks_records_whose_resources_are_gone(clock: Clock) -> None:
    """Two looks in a row without the resource: marked deleted (outputs kept: nothing removed
    them). Records of live resources, of local runs (name-derived uids, origin local) and of
    other namespaces are left alone."""
    catalog = CountingCatalog(clock)
    op = operator(catalog)
    op.settings = OperatorSettings(watch_namespaces=["ns"])
    await catalog_sync.sync_catalog(
        op, body("fetch", 0, "Pending"), body("fetch", 0, "Pending")["status"], None
    )
    live = json.loads(json.dumps(body("train", 60)))
    live["metadata"]["uid"] = "1b7f1f3e-aaaa-4bbb-8ccc-123456789abc"
    await catalog_sync.sync_catalog(op, live, live["status"], None)
    legacy_local = {
        "_id": "8bb9b342-a0a8-51c0-a6da-06e6ad40c942",
        "kind": "LoraTraining",
        "namespace": "ns",
        "name": "x",
        "owner": "alice",
        "status": "Running",
        "type": "lora-training",
    }  # a uuid5
    elsewhere = {**legacy_local, "_id": "2b7f1f3e-aaaa-4bbb-8ccc-123456789abc", "namespace": "other"}
    catalog.upsert(legacy_local)
    catalog.upsert(elsewhere)
    index = {("ns", live["metadata"]["uid"]): [Kept("{}", None)]}  # type: ignore[arg-type]
    op.indexes["loratrainings_by_uid"] = index
    assert await catalog_sync.sweep_gone(op) == 0  # the first look only remembers
    assert await catalog_sync.sweep_gone(op) == 1
    doc = catalog.record(UID)
    assert doc is not None and doc["deleted"]["by"] == "operator" and doc["latestRun"]["phase"] == "Cancelled"
    assert doc["status"] == "Deleted"  # it never made a version
    assert catalog.record(live["metadata"]["uid"])["deleted"] is None  # type: ignore[index]
    assert catalog.get(legacy_local["_id"])["status"] == "Running"  # type: ignore[index]
    assert catalog.get(elsewhere["_id"])["status"] == "Running"  # type: ignore[index]
    assert await catalog_sync.sweep_gone(op) == 0  # marked once


@pytest.mark.asyncio
async def test_a_late_write_never_moves_the_record_backwards(clock: Clock) -> None:
    """A write decided on an older state (a former leader's, delayed) after the record shows the
    run finished: the record stays Succeeded. A newer generation's run is written over it."""
    catalog = CountingCatalog(clock)
    op = operator(catalog)
    finished = body("", 100, "Succeeded", completedAt="2026-11-21T12:05:00Z")
    await catalog_sync.sync_catalog(op, finished, finished["status"], None)
    late = body("train", 60)
    await catalog_sync.sync_catalog(op, late, late["status"], None)
    doc = catalog.record(UID)
    assert doc is not None and doc["latestRun"]["phase"] == "Succeeded" and doc["rev"] == 1  # not written
    older_run = body("train", 60, "Succeeded", runVersion=0)
    assert catalog_sync.goes_back(doc, 1, older_run["status"])
    newer = body("fetch", 0, "Pending", observedGeneration=2, runVersion=2)
    newer["metadata"]["generation"] = 2
    await catalog_sync.sync_catalog(op, newer, newer["status"], None)
    doc = catalog.record(UID)
    assert doc is not None and doc["latestRun"]["phase"] == "Pending" and doc["latestRun"]["version"] == 2


@pytest.mark.asyncio
async def test_a_replica_that_cannot_prove_its_lease_writes_no_catalog_record(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = CountingCatalog(clock)
    op = operator(catalog)
    monkeypatch.setattr(catalog_sync, "may_act", lambda: False)
    state = body("train", 60)
    await catalog_sync.sync_catalog(op, state, state["status"], None)
    await catalog_sync.mark_gone(op, state)
    assert catalog.writes == [] and catalog.record(UID) is None


class AwayCatalog(CountingCatalog):
    """MongoDB away while `down`: every write fails as the catalog's guard says it (one line)."""

    down = True

    def modify(self, uid: str, change: Any) -> Any:
        if self.down:
            from contentgen.catalog import CatalogUnavailable

            raise CatalogUnavailable("the catalog cannot be reached (ServerSelectionTimeoutError)")
        return super().modify(uid, change)


@pytest.mark.asyncio
async def test_a_deletion_the_catalog_missed_is_written_when_it_is_back(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 48: a resource deleted while the catalog was down stayed live in the catalog until
    the safety net's two looks (20 minutes); its mark is now written again as soon as the catalog
    takes writes, and said in one line meanwhile."""
    catalog = AwayCatalog(clock)
    catalog.down = False
    op = operator(catalog)
    await catalog_sync.sync_catalog(op, body("dataset", 40), body("dataset", 40)["status"], None)
    catalog.down = True
    with caplog.at_level("WARNING", "contentgen.operator"):
        await catalog_sync.mark_gone(op, body("dataset", 40))
        assert await catalog_sync.mark_gone_again(op) == 0  # still away: kept for later
    assert list(op.deletions_behind) == [UID]
    assert catalog.record(UID)["latestRun"]["phase"] == "Running"  # type: ignore[index]
    said = [r for r in caplog.records if "deleted in the catalog" in r.getMessage()]
    assert said and all(r.exc_info is None and "the catalog is away" in r.getMessage() for r in said)
    catalog.down = False
    assert await catalog_sync.mark_gone_again(op) == 1
    doc = catalog.record(UID)
    assert (
        doc is not None and doc["latestRun"]["phase"] == "Cancelled" and doc["deleted"]["policy"] == "Retain"
    )
    assert op.deletions_behind == {} and await catalog_sync.mark_gone_again(op) == 0


def test_a_new_leader_looks_for_gone_records_at_once_and_confirms_soon() -> None:
    """The safety net's looks (reconciler.sweep_due): a standby takes none and counts none, so the
    replica that takes over looks within a step of leading and confirms SWEEP_CONFIRM_SECONDS
    later, not a resync interval after it started (found on the real node: a deletion the former
    leader could not write while the catalog was down waited 6 minutes for its mark)."""
    from contentgen.controller.reconciler import SWEEP_CONFIRM_SECONDS, sweep_due

    resync = 300.0
    assert not sweep_due(10_000.0, resync, confirming=False, leading=False)  # a standby never looks
    assert sweep_due(resync, resync, confirming=False, leading=True)  # its first look as the leader
    assert not sweep_due(SWEEP_CONFIRM_SECONDS - 1, resync, confirming=True, leading=True)
    assert sweep_due(SWEEP_CONFIRM_SECONDS, resync, confirming=True, leading=True)  # the second look
    assert not sweep_due(SWEEP_CONFIRM_SECONDS, resync, confirming=False, leading=True)
