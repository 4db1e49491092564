"""Creating a VideoGeneration through the HTTP API on a laptop (offline provider), re-running it with
a new seed, and playing its video through /content with ranges, as the web UI's player does."""

from __future__ import annotations

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

WAVES = {"prompt": "waves on a pebble beach", "model": "wan-2.2-t2v", "numFrames": 17, "fps": 16, "seed": 7}


@pytest_asyncio.fixture
async def client(catalog: Catalog, store: LocalStore, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    from contentgen.pipeline.settings import PipelineSettings

    creator = LocalCreator(
        catalog, lambda: store, offline=True, settings=PipelineSettings(work_dir=tmp_path / "work")
    )
    settings = laptop_settings(store)
    answers = Answers(create_app(settings, catalog=catalog, store=lambda: store, creator=creator))
    transport = httpx.ASGITransport(app=answers, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8080", headers=LOCAL) as c:
        yield c
    creator.close()
    assert answers.undocumented() == []


def _video(name: str, **spec: Any) -> dict[str, Any]:
    return {"kind": "VideoGeneration", "metadata": {"name": name}, "spec": {**WAVES, **spec}}


@pytest.mark.asyncio
async def test_a_video_is_created_rerun_and_played_in_ranges(client: httpx.AsyncClient) -> None:
    bad = await client.post("/api/resources", json=_video("bad", fps=0))
    assert bad.status_code == 400
    # its limit (fps at least 1) and the model's rule (fps 4 to 60), as the API server lists them
    assert {f["field"] for f in bad.json()["error"]["fields"]} == {"spec.fps"}
    made = await client.post("/api/resources", json=_video("waves"))
    assert made.status_code == 201, made.text
    assert made.json()["kind"] == "VideoGeneration"
    done = await finished_run(client, made.json()["jobId"])
    assert done["latestRun"]["phase"] == "Succeeded", done["latestRun"]
    uid = made.json()["jobId"]

    video = await client.get(f"/api/assets/{uid}/content?file=video.mp4", headers={"Range": "bytes=0-"})
    assert video.status_code == 206 and video.headers["content-type"] == "video/mp4"
    size = int(video.headers["content-range"].rsplit("/", 1)[1])
    assert len(video.content) == size and video.content[4:8] == b"ftyp"
    tail = await client.get(f"/api/assets/{uid}/content?file=video.mp4", headers={"Range": "bytes=-100"})
    assert tail.status_code == 206 and tail.content == video.content[-100:]

    again = await client.post(f"/api/jobs/{uid}/rerun", json={"newSeed": True, "name": "waves-2"})
    assert again.status_code == 201, again.text
    assert again.json()["manifest"]["spec"]["seed"] != 7
    assert again.json()["manifest"]["spec"]["prompt"] == WAVES["prompt"]
    assert (await finished_run(client, again.json()["jobId"]))["latestRun"]["phase"] == "Succeeded"


@pytest.mark.asyncio
async def test_a_lora_ref_is_resolved_at_create_and_one_not_made_is_refused_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    """A VideoGeneration's loraRef names a video LoRA (issue 68): resolved when it is created, one
    no LoraTraining has made is refused in one line on its field, saying how to make it."""
    refused = await client.post(
        "/api/resources", json=_video("flux", loras=[{"loraRef": {"name": "avatar"}}])
    )
    assert refused.status_code == 400, refused.text
    [field] = refused.json()["error"]["fields"]
    assert field["field"] == "spec.loras[0].loraRef" and "\n" not in field["message"]
    assert "there is no LoraTraining 'avatar'" in field["message"] and "contentgen run" in field["message"]
