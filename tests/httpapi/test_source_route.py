"""GET /api/assets/{ref}/source, where the web UI's players get a version's source: an http(s) URL
redirected to, one in the API's store presigned, a local media file served only by a laptop's API
(auth local), and a clear 404 for anything else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import pytest_asyncio

from contentgen.catalog import Catalog
from contentgen.httpapi import ApiSettings, create_app
from contentgen.store import LocalStore
from contentgen.store.s3 import S3Store
from tests.catalog.factory import transcript_doc
from tests.httpapi.conftest import auth
from tests.httpapi.documented import Answers

pytestmark = pytest.mark.asyncio


def talk(uid: str, source: str, version: int = 1) -> dict[str, object]:
    doc = transcript_doc(uid, version=version)
    doc["sourceUrl"] = source
    for entry in doc.get("versions") or []:
        entry["sourceUrl"] = source
    return doc


@pytest_asyncio.fixture
async def api(catalog: Catalog, store: LocalStore, settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The API with tokens, alice's transcripts of every kind of source."""
    media = store.root.parent / "talk.mp3"
    media.write_bytes(b"ID3 not really audio")
    (store.root.parent / "notes.txt").write_text("not media")
    for doc in (
        talk("t-http", "https://media.example.com/talk.mp3"),
        talk("t-other", "s3://someone-elses-bucket/talk.mp3"),
        talk("t-file", str(media)),
        talk("t-file-uri", media.as_uri()),
        talk("t-not-media", str(store.root.parent / "notes.txt")),
        talk("t-none", ""),
    ):
        catalog.upsert(doc)
    async with answering(create_app(settings, catalog=catalog, store=lambda: store)) as client:
        yield client


@asynccontextmanager
async def answering(app: Any, *, local: bool = False) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client of `app` that checks, when it closes, that every answer is documented; a
    laptop's (`local`): from this machine's address, to localhost."""
    answers = Answers(app)
    transport = httpx.ASGITransport(app=answers, client=("127.0.0.1", 50000))
    base, headers = ("http://localhost:8080", {"Host": "localhost:8080"}) if local else ("http://api", {})
    async with httpx.AsyncClient(transport=transport, base_url=base, headers=headers) as client:
        yield client
    assert answers.undocumented() == []


async def test_an_http_source_is_redirected_to(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/assets/t-http/source", headers=auth("alice"))
    assert (
        response.status_code == 307 and response.headers["location"] == "https://media.example.com/talk.mp3"
    )


async def test_a_source_in_the_apis_store_is_presigned(
    s3: str, catalog: Catalog, settings: ApiSettings
) -> None:
    store = S3Store(s3, "cg")
    store.put_bytes("sources/talk.mp3", b"ID3 in the bucket", "audio/mpeg")
    catalog.upsert(talk("t-bucket", f"s3://{s3}/cg/sources/talk.mp3"))
    app = create_app(
        settings.model_copy(update={"store": f"s3://{s3}/cg"}), catalog=catalog, store=lambda: store
    )
    async with answering(app) as client:
        response = await client.get("/api/assets/t-bucket/source?version=1", headers=auth("alice"))
    assert response.status_code == 307
    link = response.headers["location"]
    assert "X-Amz-Signature=" in link and "X-Amz-Expires=" in link, link
    assert httpx.get(link).content == b"ID3 in the bucket"  # the real S3 server takes the link


@pytest.mark.parametrize(
    ("path", "code", "message"),
    [
        ("t-other/source", "not_found", "is not in this API's store: it cannot be played here"),
        ("t-file/source", "not_found", "cannot be played from here"),  # a file, but not a laptop's API
        ("t-none/source", "not_found", "has no source"),
        ("t-http/source?version=7", "version_not_found", "has no version 7"),
    ],
)
async def test_what_cannot_be_played_says_why(
    api: httpx.AsyncClient, path: str, code: str, message: str
) -> None:
    response = await api.get(f"/api/assets/{path}", headers=auth("alice"))
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert error["code"] == code and message in error["message"], error


async def test_a_laptops_api_serves_a_local_media_file_and_nothing_else(
    catalog: Catalog, store: LocalStore, settings: ApiSettings, api: httpx.AsyncClient
) -> None:
    laptop = settings.model_copy(
        update={"api_auth": ["local"], "api_local_owner": "alice", "api_tokens_file": None}
    )
    async with answering(create_app(laptop, catalog=catalog, store=lambda: store), local=True) as client:
        for ref in ("t-file", "t-file-uri"):
            served = await client.get(f"/api/assets/{ref}/source")
            assert served.status_code == 200 and served.content == b"ID3 not really audio", ref
            assert served.headers["content-type"] == "audio/mpeg"
        refused = await client.get("/api/assets/t-not-media/source")
        assert (
            refused.status_code == 404 and "cannot be played from here" in refused.json()["error"]["message"]
        )
