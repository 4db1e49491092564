"""POST /api/uploads (issue 70): a create form's file (a LoRA's source video, the picture a video
animates) stored once, under a key of its own in its owner's part of the store, and named by a spec:
on a laptop a file:// URI its local runs read (a video made from an uploaded picture here), in a
cluster an s3:// URI (on the real S3 server) that admission takes and a worker fetches with the
store's credentials. Refused in words: a type not taken, content that is not its type, a file over
its cap, another owner's upload, an API that does not create."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from contentgen.api import KINDS
from contentgen.api.crd import crd
from contentgen.catalog import Catalog
from contentgen.httpapi import ApiSettings, create_app
from contentgen.httpapi.routes import uploads
from contentgen.pipeline.fetch import fetch
from contentgen.pipeline.settings import PipelineSettings
from contentgen.store import LocalStore, ObjectStore
from contentgen.store.s3 import S3Store
from tests.admission import admit
from tests.conftest import EXAMPLES
from tests.harness.creators import HeldCreator
from tests.httpapi.conftest import auth
from tests.httpapi.documented import Answers
from tests.waiting import wait_for


def _png() -> bytes:
    picture = np.zeros((240, 320, 3), np.uint8)
    picture[:, :, 2] = 200
    ok, data = cv2.imencode(".png", picture)
    assert ok
    return bytes(data)


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


@pytest.fixture
def laptop(
    catalog: Catalog, store: LocalStore, settings: ApiSettings, tmp_path: Path
) -> Iterator[tuple[Answers, HeldCreator]]:
    creator = HeldCreator(
        catalog, lambda: store, offline=True, settings=PipelineSettings(work_dir=tmp_path / "w")
    )
    yield Answers(create_app(settings, catalog=catalog, store=lambda: store, creator=creator)), creator
    creator.close()


def test_an_upload_is_stored_once_under_a_key_of_its_own_and_a_local_run_reads_it(
    laptop: tuple[Answers, HeldCreator], store: LocalStore, catalog: Catalog
) -> None:
    app, creator = laptop
    picture = _png()

    async def go() -> tuple[list[httpx.Response], httpx.Response]:
        async with _client(app) as http:
            made = [
                await http.post(
                    "/api/uploads",
                    params={"name": "lighthouse.png"},
                    content=picture,
                    headers={**auth("alice"), "Content-Type": "image/png"},
                )
                for _ in range(2)
            ]
            uri = made[0].json()["uri"]
            video = {
                "kind": "VideoGeneration",
                "metadata": {"name": "from-an-upload"},
                "spec": {"prompt": "the light turns", "model": "wan-2.2-i2v", "image": {"url": uri},
                         "durationSeconds": 2, "resolution": "480p"},
            }  # fmt: skip
            created = await http.post("/api/resources", json=video, headers=auth("alice"))
            return made, created

    made, created = asyncio.run(go())
    first, second = (m.json() for m in made)
    assert [m.status_code for m in made] == [201, 201]
    assert first["key"].startswith("uploads/alice/") and first["key"].endswith("/lighthouse.png")
    assert first["key"] != second["key"]  # the same bytes again: another upload, another key
    assert first["uri"] == store.uri(first["key"]) and first["uri"].startswith("file://")
    assert (first["sizeBytes"], first["what"], first["contentType"]) == (len(picture), "picture", "image/png")
    assert store.get_bytes(first["key"]) == picture
    assert created.status_code == 201, created.text
    creator.release.set()  # the local run goes: it animates the uploaded picture
    record = wait_for(
        lambda: (r := catalog.get(created.json()["jobId"])) and r.get("versions") and r,
        300,
        "the video of the uploaded picture",
    )
    assert record["versions"][-1]["image"]["uri"] == first["uri"]


def test_refusals_say_what_is_wrong(
    laptop: tuple[Answers, HeldCreator], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, _ = laptop
    small = {**uploads.TYPES, "image/png": uploads.Media("picture", ".png", ("png",), 1000)}
    monkeypatch.setattr(uploads, "TYPES", small)

    async def go() -> list[tuple[int, str, str]]:
        async with _client(app) as http:
            asked = [
                ("text/plain", b"hello", {}),
                ("image/png", b"GIF89a not a png at all", {}),
                ("image/png", _png() + b"\0" * 1000, {}),
                ("image/png", b"", {}),
                ("video/mp4", (EXAMPLES / "media" / "sample.mp4").read_bytes()[:4096], {"owner": "bob"}),
            ]
            answers = []
            for kind, body, params in asked:
                answer = await http.post(
                    "/api/uploads",
                    params=params,
                    content=body,
                    headers={**auth("alice"), "Content-Type": kind},
                )
                error = answer.json()["error"]
                answers.append((answer.status_code, error["code"], error["message"]))
            return answers

    assert asyncio.run(go()) == [
        (
            415,
            "unsupported_media_type",
            "Content-Type text/plain: upload a picture (image/png, image/jpeg, image/webp) at most 20 MiB; a "
            "video (video/mp4, video/quicktime, video/webm, video/x-matroska) or audio (audio/mpeg, "
            "audio/mp4, audio/wav, audio/ogg) at most 1024 MiB",
        ),
        (
            415,
            "unsupported_media_type",
            "the file is not a picture of type image/png: its first bytes are not that format's",
        ),
        (413, "too_large", "the file is larger than a picture may be here (0 MiB)"),
        (415, "unsupported_media_type", "the upload is empty: send the file's bytes as the body"),
        (403, "forbidden", "alice does not act for owner 'bob'"),
    ]


def test_an_api_that_does_not_create_takes_no_upload(make_app: Any) -> None:
    async def go() -> httpx.Response:
        async with _client(make_app()) as http:
            return await http.post(
                "/api/uploads", content=_png(), headers={**auth("alice"), "Content-Type": "image/png"}
            )

    refused = asyncio.run(go())
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "create_disabled"


def test_in_a_cluster_an_upload_is_an_s3_uri_that_admission_takes_and_a_worker_fetches(
    s3: str, catalog: Catalog, settings: ApiSettings, tmp_path: Path
) -> None:
    bucket: ObjectStore = S3Store(s3)
    creator = HeldCreator(
        catalog, lambda: bucket, offline=True, settings=PipelineSettings(work_dir=tmp_path / "w")
    )
    app = Answers(create_app(settings, catalog=catalog, store=lambda: bucket, creator=creator))
    video = (EXAMPLES / "media" / "sample.mp4").read_bytes()

    async def go() -> httpx.Response:
        async with _client(app) as http:
            return await http.post(
                "/api/uploads", content=video, headers={**auth("alice"), "Content-Type": "video/mp4"}
            )

    try:
        made = asyncio.run(go())
    finally:
        creator.close()
    assert made.status_code == 201, made.text
    uri = made.json()["uri"]
    assert uri.startswith(f"s3://{s3}/uploads/alice/") and uri.endswith("/upload.mp4")
    manifest = {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "LoraTraining",
        "metadata": {"name": "from-an-upload"},
        "spec": {"owner": "alice", "source": {"url": uri}, "triggerWord": "dmavatar"},
    }
    _, errors = admit(crd(KINDS["LoraTraining"]), manifest)
    assert errors == []
    fetched = fetch(uri, tmp_path / "worker", max_bytes=10**9, allow_private=False, local=False)
    assert fetched.path.read_bytes() == video
    assert app.undocumented() == []
