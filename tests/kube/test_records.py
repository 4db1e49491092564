"""Issue 17 in the cluster: the real operator (kopf) and workers against the local control plane,
the catalog as the operator writes it, and the HTTP API over that catalog. Nothing a user made is
lost or hidden: re-runs keep earlier versions, a failed run hides none, progress reaches the
catalog and the stream while it happens, and deleted resources do not stay Pending."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from contentgen.catalog import Catalog, Filters, Page, pruning
from tests.harness.kube import image, lora, uid_of
from tests.kube.harness import Cluster, operated, wait_for
from tests.sse import Events, serve_api

pytestmark = pytest.mark.timeout(600)
TOKEN = "alice-token-0123456789"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with operated(tmp_path_factory) as c:
        yield c


@pytest.fixture(scope="module")
def api(env: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`contentgen api` over the catalog the operator writes."""
    folder = tmp_path_factory.mktemp("api")
    with serve_api(env.catalog(), env.store, {"alice": TOKEN}, folder) as url:
        yield url


def catalog(c: Cluster) -> Catalog:
    return c.catalog()


def get(api: str, path: str) -> Any:
    response = httpx.get(f"{api}{path}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def record(c: Cluster, kind: str, ns: str, name: str, **want: Any) -> dict[str, Any]:
    """The record once its latest run has the fields `want` (phase, version, ...)."""
    uid = uid_of(c, kind, ns, name)

    def check() -> dict[str, Any] | None:
        doc = catalog(c).record(uid)
        run = (doc or {}).get("latestRun") or {}
        return doc if doc and all(run.get(k) == v for k, v in want.items()) else None

    return wait_for(check, 120, f"{kind} {ns}/{name}'s record with {want}")


def test_an_image_rerun_with_a_new_seed_keeps_both_images(env: Cluster, api: str) -> None:
    c, ns = env, "rerun"
    c.apply(image("fox", seed=1, numImages=2), ns)
    first = c.wait_phase("ImageGeneration", ns, "fox", "Succeeded")
    c.patch("ImageGeneration", ns, "fox", {"spec": {"seed": 2}})
    status = wait_for(
        lambda: (
            (s := c.status("ImageGeneration", ns, "fox")).get("latestVersion") == 2
            and s.get("phase") == "Succeeded"
            and s
        ),
        what="version 2",
    )
    assert [v["version"] for v in status["versions"]] == [1, 2]
    assert [{i["seed"] for i in v["images"]} for v in status["versions"]] == [{1}, {2}]
    uris = [i["uri"] for v in status["versions"] for i in v["images"]]
    assert len(set(uris)) == 4 and all(c.object_at(u) for u in uris)  # both stored, nothing written over
    assert first["images"][0]["uri"] == status["versions"][0]["images"][0]["uri"]
    doc = record(c, "ImageGeneration", ns, "fox", version=2, phase="Succeeded")
    assert [v["version"] for v in doc["versions"]] == [1, 2]
    assert [v["spec"]["seed"] for v in doc["versions"]] == [1, 2]
    # listed: the gallery's list has both versions' images
    gallery = [i for i in get(api, "/api/assets/images?limit=500")["items"] if i["id"] == doc["_id"]]
    assert [len(v["images"]) for v in gallery[0]["versions"]] == [2, 2]


def test_a_failed_rerun_leaves_the_earlier_version_in_the_gallery(env: Cluster, api: str) -> None:
    """An ImageGeneration made with a LoRA version that is then deleted: its re-run fails (the
    weights are gone); its first images stay usable, listed, in ?status=Succeeded, in the stats."""
    c, ns = env, "failed-rerun"
    c.apply(lora("style", c.media), ns)
    c.wait_phase("LoraTraining", ns, "style", "Succeeded")
    c.apply(image("styled", model="flux-lora", loras=[{"loraRef": {"name": "style"}}]), ns)
    c.wait_phase("ImageGeneration", ns, "styled", "Succeeded")
    lora_record = record(c, "LoraTraining", ns, "style", phase="Succeeded")
    plan = pruning.plan_versions(catalog(c), c.store, lora_record, [1])  # `assets delete --version 1`
    assert pruning.erase(c.store, plan) > 0
    c.patch("ImageGeneration", ns, "styled", {"spec": {"seed": 9}})
    failed = c.wait_phase("ImageGeneration", ns, "styled", "Failed")
    assert "does not exist" in failed["message"]
    assert [v["version"] for v in failed["versions"]] == [1] and failed["images"]
    doc = record(c, "ImageGeneration", ns, "styled", phase="Failed", version=2)
    assert doc["status"] == "Succeeded" and [v["version"] for v in doc["versions"]] == [1]
    assert doc["latestRun"]["error"]["reason"] == "InvalidInput"
    succeeded = get(api, "/api/jobs?status=Succeeded&type=image-generation&limit=500")["items"]
    assert doc["_id"] in [r["id"] for r in succeeded]
    row = next(r for r in succeeded if r["id"] == doc["_id"])
    assert row["status"] == "Succeeded" and row["latestRun"]["phase"] == "Failed"  # what the filter matched
    gallery = [i for i in get(api, "/api/assets/images?limit=500")["items"] if i["id"] == doc["_id"]]
    assert gallery and gallery[0]["images"] and gallery[0]["versions"][0]["images"]
    assert doc["_id"] in [r["id"] for r in get(api, "/api/jobs?run=Failed&limit=500")["items"]]


def test_progress_reaches_the_catalog_and_the_stream_while_the_dataset_stage_runs(
    env: Cluster, api: str
) -> None:
    c, ns = env, "live"
    stream = Events(f"{api}/api/stream/jobs", TOKEN)
    wait_for(lambda: stream.events, 30, "the stream to be ready")
    seen: list[tuple[str, str, int]] = []  # (phase, stage, progress) of the record, as polled
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            with c.guard:
                docs = list(c.mongo.find({"name": "watched", "namespace": ns}))
            for doc in docs:
                run = doc.get("latestRun") or {}
                state = (run.get("phase", ""), run.get("stage", ""), run.get("progress", 0))
                if not seen or seen[-1] != state:
                    seen.append(state)
            time.sleep(0.05)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        c.apply(lora("watched", c.media, source="sample.mp4", dataset={"maxFrames": 12, "minFrames": 4}), ns)
        c.wait_phase("LoraTraining", ns, "watched", "Succeeded")
        record(c, "LoraTraining", ns, "watched", phase="Succeeded")
        wait_for(lambda: ("Succeeded", "done", 100) in seen, 30, "the final state in the catalog")

        wait_for(lambda: stream.runs("watched")[-1:] == [("Succeeded", "done", 100)], 30, "the stream's end")
    finally:
        done.set()
        stream.stop.set()
    dataset = [s for s in seen if s[1] == "dataset"]
    assert dataset and all(phase == "Running" and 8 <= p <= 45 for phase, _, p in dataset), seen
    assert seen[-1] == ("Succeeded", "done", 100)
    streamed = stream.runs("watched")
    assert any(stage == "dataset" and 8 <= p <= 45 for _, stage, p in streamed), streamed
    assert streamed[-1] == ("Succeeded", "done", 100)
    assert streamed[0][0] == "Pending"  # a job created after the stream opened is announced


def test_deleted_resources_do_not_stay_pending_or_running(env: Cluster) -> None:
    """Eight ImageGenerations waiting (their loraRef does not exist) and one whose Job runs, all
    deleted with the default deletionPolicy Retain: every record says so, and none stays Pending
    or Running."""
    c, ns = env, "deleted-waiting"
    names = [f"waiting-{n}" for n in range(8)]
    for name in names:
        c.apply(image(name, model="flux-lora", loras=[{"loraRef": {"name": "nowhere"}}]), ns)
    uids = {name: uid_of(c, "ImageGeneration", ns, name) for name in names}
    for name in names:
        record(c, "ImageGeneration", ns, name, phase="Pending")
    c.hold()  # the local node starts no process: the Job's pod stays waiting
    try:
        c.apply(image("running"), ns)
        uids["running"] = uid_of(c, "ImageGeneration", ns, "running")
        wait_for(lambda: c.jobs(ns), what="its Job")
        for name in [*names, "running"]:
            c.delete("ImageGeneration", ns, name)
        wait_for(lambda: all(c.resource("ImageGeneration", ns, n) is None for n in uids), what="deletion")
    finally:
        c.release()

    def marked() -> list[dict[str, Any]] | None:
        docs = [catalog(c).record(uid) for uid in uids.values()]
        return docs if all(d and d.get("deleted") for d in docs) else None

    docs = wait_for(marked, 60, "every record marked deleted")
    for doc in docs:
        assert doc["latestRun"]["phase"] == "Cancelled" and doc["status"] == "Deleted"
        assert doc["deleted"]["policy"] == "Retain" and doc["deleted"]["outputsKept"] is True
        assert "deletionPolicy Retain" in doc["latestRun"]["message"]
    waiting = catalog(c).find(Filters(run="Pending"), page=Page(500)).docs
    assert not [d for d in waiting if d["namespace"] == ns]


def test_the_safety_net_marks_records_whose_resources_went_while_it_was_away(env: Cluster) -> None:
    """A record the operator wrote for a resource that was deleted while it was down (as 0.1 left
    such records: Pending): two looks of the safety net (every resync) later, it is marked."""
    c = env
    uid = "5d2e1f0a-1111-4222-8333-444455556666"  # a Kubernetes uid
    record = {
        "_id": uid, "jobId": uid, "type": "image-generation", "kind": "ImageGeneration", "name": "gone-away",
        "namespace": "away", "owner": "alice", "status": "Pending", "progress": 0, "stage": "",
        "message": "waiting for a free slot", "spec": {"owner": "alice", "prompt": "p"}, "images": [],
        "artifacts": [], "totalBytes": 0,
    }  # fmt: skip
    with c.guard:
        c.mongo.insert_one(record)
    doc = wait_for(lambda: (d := catalog(c).record(uid)) and d.get("deleted") and d, 60, "the mark")
    assert doc["latestRun"]["phase"] == "Cancelled" and doc["status"] == "Deleted"
    assert doc["deleted"]["by"] == "operator" and doc["deleted"]["policy"] == "Retain"
