"""Creating on a laptop (`contentgen api --local`): no tokens file, one local owner, and every create
a local run in this process, exactly as `contentgen run` makes it (offline provider here: every
local stage runs for real). Idempotent by name, validate's messages naming the field, the seeds'
routes, re-run with a new seed, cancel (a queued run; a finished one is refused) and delete. Every
status the server answered is one the OpenAPI document lists for that route (documented.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from contentgen.catalog import Catalog
from contentgen.httpapi import create_app
from contentgen.httpapi.creators import LocalCreator
from contentgen.store import LocalStore
from tests.harness.creators import LOCAL, finished_run, laptop_settings
from tests.httpapi.documented import Answers


class HeldCreator(LocalCreator):
    """A LocalCreator whose first run waits for `release` before it starts: the runs after it stay
    queued meanwhile, so cancelling one is not a race with the worker thread."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        self.release = threading.Event()
        self._held = False
        super().__init__(*args, **kw)

    def _run(self, run: Any) -> None:
        if not self._held:
            self._held = True
            assert self.release.wait(60), "the test did not release the first run"
        super()._run(run)


@pytest.fixture
def creator(catalog: Catalog, store: LocalStore, tmp_path: Path) -> HeldCreator:
    from contentgen.pipeline.settings import PipelineSettings

    settings = PipelineSettings(work_dir=tmp_path / "work")
    return HeldCreator(catalog, lambda: store, offline=True, settings=settings)


@pytest_asyncio.fixture
async def http(
    catalog: Catalog, store: LocalStore, creator: HeldCreator
) -> AsyncIterator[tuple[httpx.AsyncClient, Answers]]:
    settings = laptop_settings(store)
    answers = Answers(create_app(settings, catalog=catalog, store=lambda: store, creator=creator))
    transport = httpx.ASGITransport(app=answers, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8080", headers=LOCAL) as c:
        yield c, answers
    creator.release.set()
    creator.close()
    assert answers.undocumented() == []


def _image(name: str | None, prompt: str = "a lighthouse at dusk", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "ImageGeneration", "spec": {"prompt": prompt, **spec}}
    if name:
        body["metadata"] = {"name": name}
    return body


@pytest.mark.asyncio
async def test_a_laptop_creates_as_local_runs(
    http: tuple[httpx.AsyncClient, Answers], creator: HeldCreator, catalog: Catalog
) -> None:
    client, answers = http
    made = await client.post("/api/resources", json=_image("fox", seed=11))
    assert made.status_code == 201, made.text
    fox = made.json()
    assert (fox["kind"], fox["name"], fox["namespace"], fox["owner"], fox["created"]) == (
        "ImageGeneration", "fox", "default", "demo-user", True,
    )  # fmt: skip
    # The record is there before the run starts, waiting, and says why.
    queued = (await client.get(f"/api/jobs/{fox['jobId']}")).json()
    assert queued["latestRun"]["phase"] == "Pending" and queued["owner"] == "demo-user"
    # Asked again with the same spec (defaults spelled out or not): the same one.
    again = await client.post("/api/resources", json=_image("fox", seed=11, numImages=1))
    assert again.status_code == 200, again.text
    assert again.json()["jobId"] == fox["jobId"] and not again.json()["created"]
    other = await client.post("/api/resources", json=_image("fox", "a harbour", seed=11))
    assert other.status_code == 409 and "spec.prompt differ" in other.json()["error"]["message"]
    # validate's messages, naming the fields; nothing is made.
    bad = await client.post("/api/resources", json=_image("bad", imageSize="huge", numImages=0))
    assert bad.status_code == 400
    fields = {f["field"] for f in bad.json()["error"]["fields"]}
    assert fields == {"spec.imageSize", "spec.numImages"}
    assert (await client.get("/api/jobs/default/bad")).status_code == 404
    # The one local owner is the only one.
    theirs = await client.post("/api/resources", json=_image("x", owner="alice"))
    assert theirs.status_code == 403
    assert "its one local owner demo-user (contentgen api --owner NAME), not for 'alice'" in theirs.text
    # The seeds' route, queued behind the fox.
    seed = await client.post(
        "/api/images/generate", json={"inputs": {"prompt": "a red fox", "seed": 5}, "name": "seeded"}
    )
    assert seed.status_code == 201, seed.text
    # Cancel a queued run: it never starts; its record says so.
    cancelled = await client.post(f"/api/jobs/{seed.json()['jobId']}/cancel")
    assert cancelled.status_code == 202 and "cancelled" in cancelled.json()["message"]
    creator.release.set()
    done = await finished_run(client, fox["jobId"])
    assert done["latestRun"]["phase"] == "Succeeded" and done["status"] == "Succeeded", done
    assert done["versions"][-1]["spec"]["seed"] == 11
    stopped = await finished_run(client, seed.json()["jobId"])
    assert stopped["latestRun"]["phase"] == "Failed"
    assert "cancelled before it started" in str(stopped["latestRun"])
    # Nothing to cancel once it has finished.
    late = await client.post(f"/api/jobs/{fox['jobId']}/cancel")
    assert late.status_code == 409 and "latest run is Succeeded" in late.text
    # Re-run with a new seed: a new resource with the version's settings.
    rerun = await client.post(f"/api/jobs/{fox['jobId']}/rerun", json={"newSeed": True, "name": "fox-2"})
    assert rerun.status_code == 201, rerun.text
    spec = rerun.json()["manifest"]["spec"]
    assert spec["prompt"] == "a lighthouse at dusk" and spec["seed"] != 11
    rerun_again = await client.post(
        f"/api/jobs/{fox['jobId']}/rerun", json={"seed": spec["seed"], "name": "fox-2"}
    )
    assert rerun_again.status_code == 200 and rerun_again.json()["jobId"] == rerun.json()["jobId"]
    missing = await client.post(f"/api/jobs/{fox['jobId']}/rerun", json={"version": 9})
    assert missing.status_code == 404 and "usable versions: v1" in missing.text
    second = await finished_run(client, rerun.json()["jobId"])
    assert second["latestRun"]["phase"] == "Succeeded"
    # Delete: Retain keeps the outputs, the record is marked deleted.
    deleted = await client.delete(f"/api/jobs/{fox['jobId']}")
    assert deleted.status_code == 202 and "outputs are kept (Retain)" in deleted.json()["message"]
    record = catalog.get(fox["jobId"])
    assert record is not None and record["deleted"]
    assert answers.statuses("post", "/api/resources") == {200, 201, 400, 403, 409}


@pytest.mark.asyncio
async def test_a_run_under_way_is_not_deleted(http: tuple[httpx.AsyncClient, Answers]) -> None:
    client, _ = http
    made = await client.post("/api/resources", json=_image("held"))
    assert made.status_code == 201
    busy = await client.delete(f"/api/jobs/{made.json()['jobId']}")
    assert busy.status_code == 409 and "cancel it first" in busy.text


@pytest.mark.asyncio
async def test_a_local_create_and_a_contentgen_run_of_one_resource_never_run_at_once(
    http: tuple[httpx.AsyncClient, Answers], creator: HeldCreator, tmp_path: Path
) -> None:
    """Both take the resource's RunLock (the flock in the work folder): while `contentgen run`
    holds it, the API refuses to run the resource beside it; while the API's run is queued or
    under way, it holds the lock, so a `contentgen run` sees it going on (and never resumes it as
    a stopped run, the same version twice); once it ended, the lock is free."""
    from contentgen.pipeline.local_run import RunLock, local_uid

    client, _ = http
    work = tmp_path / "work"
    elsewhere = RunLock(work, local_uid("ImageGeneration", "default", "lighthouse"))
    assert elsewhere.acquire()  # as `contentgen run lighthouse.yaml` does
    try:
        refused = await client.post("/api/resources", json=_image("lighthouse"))
    finally:
        elsewhere.release()
    assert refused.status_code == 409, refused.text
    assert "a `contentgen run` of ImageGeneration default/lighthouse goes on" in refused.text
    assert (await client.get("/api/jobs/default/lighthouse")).status_code == 404  # nothing queued

    made = await client.post("/api/resources", json=_image("lighthouse"))
    assert made.status_code == 201, made.text
    uid = made.json()["jobId"]
    contentgen_run = RunLock(work, uid)
    assert not contentgen_run.acquire()  # queued (held behind `release`): it goes on
    creator.release.set()
    done = await finished_run(client, uid)
    assert done["latestRun"]["phase"] == "Succeeded"
    deadline = time.monotonic() + 60
    while not contentgen_run.acquire():  # released right after the record's last write
        assert time.monotonic() < deadline, "the API's run kept the lock after it ended"
        await asyncio.sleep(0.05)
    contentgen_run.release()


@pytest.mark.asyncio
async def test_a_laptop_whose_store_fails_answers_store_error(
    catalog: Catalog, store: LocalStore, tmp_path: Path
) -> None:
    """A laptop's store that cannot be used (a directory it may not write, a disk gone): a create
    and a re-run answer the documented 502 store_error in one line with the store's reason, not
    400 unresolved nor a 500 (issue 36); nothing is created."""
    from contentgen.errors import PermanentError
    from contentgen.pipeline.settings import PipelineSettings

    broken = {"now": False}

    def opened() -> LocalStore:
        if broken["now"]:
            raise PermanentError(
                f"the store directory {store.root} cannot be written (Permission denied): set "
                "CONTENTGEN_STORE (contentgen run --store) to a directory you can write",
                reason="StoreAccessDenied",
            )
        return store

    creator = LocalCreator(catalog, opened, offline=True, settings=PipelineSettings(work_dir=tmp_path / "w"))
    settings = laptop_settings(store)
    answers = Answers(create_app(settings, catalog=catalog, store=opened, creator=creator))
    transport = httpx.ASGITransport(app=answers, client=("127.0.0.1", 50000))
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://localhost:8080", headers=LOCAL
        ) as c:
            made = await c.post("/api/resources", json=_image("fox", seed=11))
            assert made.status_code == 201, made.text
            uid = made.json()["jobId"]
            assert (await finished_run(c, uid))["latestRun"]["phase"] == "Succeeded"
            broken["now"] = True
            refused = await c.post("/api/resources", json=_image("hare", seed=3))
            assert refused.status_code == 502, refused.text
            error = refused.json()["error"]
            assert error["code"] == "store_error" and "\n" not in error["message"]
            assert error["message"].startswith(
                f"StoreAccessDenied: the store directory {store.root} cannot be"
            )
            assert error["message"].endswith("; nothing was created")
            assert (await c.get("/api/jobs/default/hare")).status_code == 404
            again = await c.post(f"/api/jobs/{uid}/rerun", json={"newSeed": True, "name": "fox-2"})
            assert again.status_code == 502 and again.json()["error"]["code"] == "store_error", again.text
            # A version whose settings the record no longer keeps is read from the store: the same
            catalog._collection.update_one(  # type: ignore[attr-defined]
                {"_id": uid}, {"$unset": {"versions.0.spec": ""}, "$set": {"generation": 7}}
            )
            older = await c.post(f"/api/jobs/{uid}/rerun", json={"version": 1, "name": "fox-3"})
            assert older.status_code == 502, older.text
            assert older.json()["error"]["message"].startswith("StoreAccessDenied: ")
            assert (await c.get("/api/jobs/default/fox-3")).status_code == 404
    finally:
        creator.close()
    assert answers.undocumented() == []
    assert answers.statuses("post", "/api/jobs/{ref:path}/rerun") == {502}


@pytest.mark.asyncio
async def test_an_offline_laptop_validates_as_asked_and_runs_without_cluster_settings(
    http: tuple[httpx.AsyncClient, Answers], creator: HeldCreator
) -> None:
    """`contentgen api --local --offline`: a request is judged for the provider it names (a
    memoryPlan with provider fal refused as admission refuses it; with provider cluster taken, as
    the OpenAPI document says), then run by the offline provider without the settings only
    provider cluster reads (api/run.py offline_spec), which the offline provider's rules refuse."""
    client, _ = http
    refused = await client.post("/api/resources", json=_image("on-fal", memoryPlan="nf4"))
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid", refused.text
    assert [f["field"] for f in refused.json()["error"]["fields"]] == ["spec.memoryPlan"]
    made = await client.post("/api/resources", json=_image("on-gpu", provider="cluster", memoryPlan="nf4"))
    assert made.status_code == 201, made.text
    again = await client.post("/api/resources", json=_image("on-gpu", provider="cluster", memoryPlan="nf4"))
    assert again.status_code == 200 and not again.json()["created"]
    creator.release.set()
    done = await finished_run(client, made.json()["jobId"])
    assert done["latestRun"]["phase"] == "Succeeded", done
    ran = done["versions"][-1]["spec"]
    assert ran["provider"] == "offline" and "memoryPlan" not in ran  # what ran, as `run --offline` records it
