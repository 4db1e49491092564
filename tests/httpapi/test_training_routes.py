"""POST /api/jobs/REF/stop and POST /api/assets/REF/versions/N/continue on a laptop's API
(`contentgen api --local`, issue 67): what each would do comes first (a dry run: the checkpoint a
stop keeps, the training a continue runs and its estimate); a stop where no training runs, a
continue from a version that kept no training state or that the record does not have, a record that
is not a LoRA, another owner and an API that does not create are refused, each with a status the
OpenAPI document lists (documented.py), and nothing is written. The cluster's answers (the
LoraTraining annotated or patched) are tests/httpapi/test_kube.py's; the runs themselves are
tests/httpapi/test_ui_live.py's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from contentgen.catalog import Catalog
from contentgen.httpapi import create_app
from contentgen.httpapi.creators import LocalCreator
from contentgen.pipeline.settings import PipelineSettings
from contentgen.store import LocalStore
from tests.catalog.factory import T0, image_doc
from tests.harness.live import running, training
from tests.harness.scoring import score_client, score_settings
from tests.httpapi.conftest import auth
from tests.httpapi.documented import Answers

Lab = tuple[httpx.AsyncClient, Catalog, LocalStore, str]


@pytest_asyncio.fixture
async def http(
    trained: tuple[Catalog, LocalStore, str], tokens_file: Path, tmp_path: Path
) -> AsyncIterator[Lab]:
    catalog, store, uid = trained
    creator = LocalCreator(
        catalog, lambda: store, offline=True, settings=PipelineSettings(work_dir=tmp_path / "work")
    )
    answers = Answers(
        create_app(
            score_settings(store, tokens_file, "local"), catalog=catalog, store=lambda: store, creator=creator
        )
    )
    async with score_client(answers) as client:
        yield client, catalog, store, uid
    creator.close()
    assert answers.undocumented() == []


def _training_here(catalog: Catalog, uid: str) -> None:
    """The laptop's record as a run of version 2 that trains (checkpoint 500 the best so far)."""
    doc = catalog.get(uid)
    assert doc is not None
    report = training(uid, 510, [(250, "poor", 0.21), (500, "good", 0.55)], at=T0 + timedelta(hours=1))
    live = running(uid, str(doc["name"]), report, previous=doc)
    catalog.upsert({**live, "origin": "local", "owner": "alice", "namespace": doc["namespace"]})


@pytest.mark.asyncio
async def test_a_stop_says_what_it_keeps_first_and_where_nothing_runs_refuses(http: Lab) -> None:
    client, catalog, _, uid = http
    idle = await client.post(f"/api/jobs/{uid}/stop", headers=auth("alice"))
    assert idle.status_code == 409 and idle.json()["error"]["code"] == "not_running", idle.text
    assert "v1) is Succeeded; there is no training under way to stop" in idle.json()["error"]["message"]
    _training_here(catalog, uid)
    plan = await client.post(f"/api/jobs/{uid}/stop", headers=auth("alice"))
    assert plan.status_code == 200, plan.text
    said = plan.json()
    assert said["dryRun"] and (said["version"], said["step"], said["steps"]) == (2, 510, 1000)
    assert said["keeps"] == {"step": 500, "verdict": "good", "median": 0.55}
    assert said["message"] == (
        "stops v2 at its next step (step 510 of 1000 so far) and keeps checkpoint 500 (good, median 0.55), "
        "the best scored so far, as its model; billed for the steps it ran, 490 steps not run"
    )
    theirs = await client.post(f"/api/jobs/{uid}/stop", headers=auth("bob"))
    assert theirs.status_code == 404


@pytest.mark.asyncio
async def test_a_continue_says_what_it_runs_and_costs_first_and_refuses_what_it_cannot(http: Lab) -> None:
    client, catalog, store, uid = http
    path = f"/api/assets/{uid}/versions/1/continue"

    def with_state(doc: dict[str, Any] | None) -> dict[str, Any]:
        assert doc is not None
        doc["versions"][0]["stateUri"] = store.uri(f"loras/alice/{uid}/v1/checkpoints/step-000100.pt")
        return doc

    def without_state(doc: dict[str, Any] | None) -> dict[str, Any]:
        assert doc is not None and doc["versions"][0]["stateUri"]  # offline simulates one
        doc["versions"][0]["stateUri"] = ""  # as a version trained on fal keeps none
        return doc

    catalog.modify(uid, without_state)
    stateless = await client.post(path, json={"steps": 200}, headers=auth("alice"))
    assert stateless.status_code == 400, stateless.text
    error = stateless.json()["error"]
    assert error["fields"][0]["field"] == "version" and "kept no training state" in error["message"]
    assert error["code"] == "not_applicable"  # what the document cannot state
    catalog.modify(uid, with_state)
    plan = await client.post(path, json={"steps": 200}, headers=auth("alice"))
    assert plan.status_code == 200, plan.text
    said = plan.json()
    assert said["dryRun"] and said["training"]["continueFrom"] == {"version": 1}
    assert said["training"]["steps"] == 200 and said["estimateUsd"] == 0.0  # the offline provider: free
    assert said["message"].endswith("as a new version (v1 stays as it is); estimated $0.0000")
    missing = await client.post(
        f"/api/assets/{uid}/versions/7/continue", json={"steps": 5}, headers=auth("alice")
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "version_not_found"
    for bad in ({"steps": 0}, {}, {"steps": "5"}, {"steps": 5, "extra": 1}, {"steps": 5, "step": 0}):
        assert (await client.post(path, json=bad, headers=auth("alice"))).status_code == 400, bad
    assert (await client.post(path, json={"steps": 5}, headers=auth("bob"))).status_code == 404
    record = catalog.get(uid)
    assert record is not None and record["latestVersion"] == 1 and len(record["runs"]) == 1  # nothing ran


@pytest.mark.asyncio
async def test_only_a_lora_training_stops_or_goes_on(http: Lab) -> None:
    client, catalog, _, _ = http
    catalog.upsert(image_doc("img-1", owner="alice"))
    stop = await client.post("/api/jobs/img-1/stop", headers=auth("alice"))
    assert stop.status_code == 400 and stop.json()["error"]["code"] == "not_applicable", stop.text
    more = await client.post(
        "/api/assets/img-1/versions/1/continue", json={"steps": 5}, headers=auth("alice")
    )
    assert more.status_code == 400 and more.json()["error"]["code"] == "not_applicable", more.text


@pytest.mark.asyncio
async def test_an_api_that_does_not_create_says_which_kubectl_command_does_it(
    trained: tuple[Catalog, LocalStore, str], tokens_file: Path
) -> None:
    catalog, store, uid = trained
    _training_here(catalog, uid)
    answers = Answers(
        create_app(score_settings(store, tokens_file, "off"), catalog=catalog, store=lambda: store)
    )
    async with score_client(answers) as client:
        stop = await client.post(f"/api/jobs/{uid}/stop?confirm=true", headers=auth("alice"))
        more = await client.post(
            f"/api/assets/{uid}/versions/1/continue?confirm=true", json={"steps": 5}, headers=auth("alice")
        )
    assert stop.status_code == 403 and stop.json()["error"]["code"] == "create_disabled"
    assert "kubectl annotate -n default loratraining/demo-avatar contentgen.io/stop=keep-best" in stop.text
    assert more.status_code == 403 and more.json()["error"]["code"] == "create_disabled"
    assert '"continueFrom": {"version": 1}' in more.json()["error"]["message"]
    assert answers.undocumented() == []


def _until(read: Any, what: str, seconds: float = 240) -> Any:
    import time

    deadline = time.monotonic() + seconds
    while not (found := read()):
        assert time.monotonic() < deadline, f"no {what} in {seconds:.0f} s"
        time.sleep(0.2)
    return found


@pytest.mark.asyncio
async def test_a_laptops_training_is_watched_stopped_and_gone_on_from_over_the_api(
    http: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The offline provider's simulated training (each checkpoint scored as it is stored, as the
    cluster's trainer does) run by the laptop's API: its record shows the training as it goes
    (latestRun.training), a stop asked over the API ends it keeping its best checkpoint so far
    (Succeeded, `stopped.how` asked, by the caller), and a continue from that version runs here as
    the next version, which names it (`continuedFrom`)."""
    import asyncio

    from tests.conftest import EXAMPLES

    client, catalog, _, _ = http
    monkeypatch.setenv("CONTENTGEN_OFFLINE_STEP_SECONDS", "0.05")  # a step a twentieth of a second
    spec = {
        "owner": "alice",
        "source": {"url": str(EXAMPLES / "media" / "sample.mp4")},
        "triggerWord": "dmavatar",
        "dataset": {"captioning": "template", "maxFrames": 12, "minFrames": 4},
        "training": {"steps": 1000, "checkpointEvery": 100},
        "evaluation": {"checkpoints": 10},
    }
    made = await client.post(
        "/api/resources",
        json={"kind": "LoraTraining", "metadata": {"name": "live-avatar"}, "spec": spec},
        headers=auth("alice"),
    )
    assert made.status_code == 201, made.text
    uid = made.json()["jobId"]

    def scored(count: int) -> Any:
        run = ((catalog.get(uid) or {}).get("latestRun")) or {}
        points = (run.get("training") or {}).get("checkpoints") or []
        return run if run.get("phase") == "Running" and len(points) >= count else None

    first = await asyncio.to_thread(_until, lambda: scored(1), "first checkpoint scored")
    assert first["training"]["steps"] == 1000 and first["training"]["step"] > 0
    await asyncio.to_thread(_until, lambda: scored(2), "second checkpoint scored")  # it grows, live
    plan = (await client.post(f"/api/jobs/{uid}/stop", headers=auth("alice"))).json()
    assert plan["dryRun"] and plan["keeps"] is not None and plan["version"] == 1
    stopped = await client.post(f"/api/jobs/{uid}/stop?confirm=true", headers=auth("alice"))
    assert stopped.status_code == 202, stopped.text
    assert stopped.json()["message"].startswith("asked v1's training (this API's local run) to stop")

    def ended(version: int) -> Any:
        doc = catalog.get(uid) or {}
        run = doc.get("latestRun") or {}
        return (
            doc if run.get("version") == version and run.get("phase") not in ("Pending", "Running") else None
        )

    doc = await asyncio.to_thread(_until, lambda: ended(1), "the stopped run's end")
    assert doc["latestRun"]["phase"] == "Succeeded", doc["latestRun"]
    version = doc["versions"][-1]
    stop = version["stopped"]
    assert (stop["how"], stop["by"]) == ("asked", "alice") and stop["step"] < 1000
    assert version["stateUri"] and version["likeness"]["chosenStep"] <= stop["step"]

    more = await client.post(
        f"/api/assets/{uid}/versions/1/continue?confirm=true", json={"steps": 200}, headers=auth("alice")
    )
    for _ in range(100):  # a 409 while the run that recorded its end releases its lock, a moment
        if more.status_code != 409:
            break
        await asyncio.sleep(0.1)
        more = await client.post(
            f"/api/assets/{uid}/versions/1/continue?confirm=true", json={"steps": 200}, headers=auth("alice")
        )
    assert more.status_code == 202, more.text
    assert more.json()["resource"]["jobId"] == uid and more.json()["changed"]
    monkeypatch.setenv("CONTENTGEN_OFFLINE_STEP_SECONDS", "0")
    doc = await asyncio.to_thread(_until, lambda: ended(2), "the continued run's end")
    assert doc["latestRun"]["phase"] == "Succeeded", doc["latestRun"]
    going_on = doc["versions"][-1]
    assert going_on["version"] == 2 and going_on["continuedFrom"]["version"] == 1
    assert going_on["continuedFrom"]["stateUri"] == version["stateUri"]  # the state the stop kept


@pytest.mark.asyncio
async def test_a_record_named_stop_is_read_by_its_id_and_the_action_answers_405_to_a_get(http: Lab) -> None:
    client, _, _, _ = http
    response = await client.get("/api/jobs/default/stop", headers=auth("alice"))
    assert response.status_code == 405 and response.headers["allow"] == "POST"
