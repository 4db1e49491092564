"""Download links: presigned S3 URLs (the real S3 server, versitygw) and file:// for the local store."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import mongomock
import pytest

from contentgen.catalog.mongo import MongoCatalog
from contentgen.httpapi import ApiSettings, create_app
from contentgen.store import LocalStore
from contentgen.store.s3 import S3Store
from tests.catalog.factory import image_doc, lora_doc, transcript_doc
from tests.httpapi.conftest import auth, fill
from tests.httpapi.documented import Answers
from tests.waiting import wait_for

pytestmark = pytest.mark.asyncio


async def test_the_local_store_gives_file_uris(client: httpx.AsyncClient, store: LocalStore) -> None:
    before = datetime.now(UTC)
    response = await client.get("/api/assets/a-lora-1/download?expires=600", headers=auth("alice"))
    assert response.status_code == 200
    link = response.json()
    path = store.root / "loras/alice/a-lora-1/v2/model.safetensors"
    assert link["url"] == link["uri"] == path.as_uri()
    expires = datetime.fromisoformat(link["expiresAt"].replace("Z", "+00:00"))
    assert before + timedelta(seconds=599) <= expires <= datetime.now(UTC) + timedelta(seconds=600)


@pytest.mark.parametrize(
    ("query", "ending"),
    [
        ("", "v2/model.safetensors"),
        ("?file=config.json", "v2/config.json"),
        ("?file=v1/model.safetensors", "v1/model.safetensors"),
    ],
)
async def test_a_file_can_be_chosen(client: httpx.AsyncClient, query: str, ending: str) -> None:
    response = await client.get(f"/api/assets/a-lora-1/download{query}", headers=auth("alice"))
    assert response.status_code == 200 and response.json()["url"].endswith("/a-lora-1/" + ending)


@pytest.mark.parametrize(
    ("path", "status", "code", "message"),
    [
        ("/api/assets/a-img-del/download", 410, "deleted", "a-img-del was deleted"),
        ("/api/assets/a-tr-fail/download", 409, "no_outputs", "has no outputs yet (latest run Failed)"),
        ("/api/assets/a-lora-1/download?version=7", 404, "version_not_found", "usable versions: v1, v2"),
        ("/api/assets/a-lora-1/download?file=x.bin", 404, "file_not_found", "has no file 'x.bin'"),
        ("/api/assets/a-img-2/download", 404, "artifact_missing", "missing from the store"),
    ],
)
async def test_why_there_is_no_link(
    client: httpx.AsyncClient, path: str, status: int, code: str, message: str
) -> None:
    response = await client.get(path, headers=auth("alice"))
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert message in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/assets/a-lora-1/download",
        "/api/assets/a-img-1/content?file=thumbs/image_1.jpg",
        "/api/assets/a-tr-1/transcript",  # the web UI's transcript page
        "/api/assets/a-tr-1/content?file=transcript.txt",
    ],
)
async def test_outputs_in_another_store_say_which_one_to_serve(
    catalog: MongoCatalog, settings: ApiSettings, path: str
) -> None:
    """Records of runs against an S3 store, read by an API started on its default (local) store:
    a documented 409 naming the store to start it with, not a 500."""
    elsewhere = S3Store("contentgen-assets", "dev", client=object())  # URIs only: never asked
    for doc in (
        lora_doc("a-lora-1", uri_of=elsewhere.uri),
        image_doc("a-img-1", uri_of=elsewhere.uri),
        transcript_doc("a-tr-1", uri_of=elsewhere.uri),
    ):
        catalog.upsert(doc)
    app = Answers(create_app(settings, catalog=catalog))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        response = await client.get(path, headers=auth("alice"))
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "store_mismatch"
    assert "is in the store s3://contentgen-assets/dev, not in file://" in error["message"]
    assert "set CONTENTGEN_STORE=s3://contentgen-assets/dev" in error["message"]
    assert app.undocumented() == []


async def test_s3_objects_get_presigned_urls_that_work(s3: str, settings: ApiSettings) -> None:
    store = S3Store(s3, "cg")
    catalog = MongoCatalog(mongomock.MongoClient(), "contentgen")
    fill(catalog, store)
    # The app opens the store from its settings, as in the cluster.
    app = create_app(settings.model_copy(update={"store": f"s3://{s3}/cg"}), catalog=catalog)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        response = await client.get("/api/assets/a-img-1/download?expires=300", headers=auth("alice"))
        other = await client.get("/api/assets/b-lora-1/download", headers=auth("alice"))
    assert response.status_code == 200, response.text
    link = response.json()
    assert link["uri"] == f"s3://{s3}/cg/generated-images/alice/a-img-1/v1/image_1.png"
    assert "X-Amz-Expires=300" in link["url"] and "X-Amz-Signature=" in link["url"]
    fetched = httpx.get(link["url"])
    assert (
        fetched.status_code == 200
        and fetched.content == b"bytes of generated-images/alice/a-img-1/v1/image_1.png"
    )
    # saved under a name that says what it is: the record's name and the version
    assert 'filename="portrait-v1-image_1.png"' in fetched.headers["content-disposition"]
    unsigned = httpx.get(link["url"].split("?")[0])
    assert unsigned.status_code == 403  # the bucket is private; the signature is what opens it
    assert other.status_code == 404


async def test_an_s3_link_is_refused_once_it_expires(s3: str, settings: ApiSettings) -> None:
    store = S3Store(s3, "cg")
    catalog = MongoCatalog(mongomock.MongoClient(), "contentgen")
    fill(catalog, store)
    app = create_app(settings.model_copy(update={"store": f"s3://{s3}/cg"}), catalog=catalog)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        response = await client.get("/api/assets/a-img-1/download?expires=2", headers=auth("alice"))
    assert response.status_code == 200, response.text
    link = response.json()
    assert "X-Amz-Expires=2&" in link["url"]
    expires = datetime.fromisoformat(link["expiresAt"].replace("Z", "+00:00")).timestamp()
    # Well past the expiry the API announced (and the signature's own second), by the wall clock.
    wait_for(lambda: time.time() > expires + 2, 60, "the link's expiry")
    expired = httpx.get(link["url"])
    assert expired.status_code == 403 and "expired" in expired.text.lower(), expired.text
