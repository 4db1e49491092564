"""Lineage, lookups by name or id prefix, the files themselves (the UI's images and downloads),
the browser session, and a catalog that is down."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from contentgen.api import ResolvedLora
from contentgen.catalog import Catalog
from contentgen.catalog.mongo import MongoCatalog
from contentgen.httpapi import ApiSettings, create_app
from contentgen.store import LocalStore
from contentgen.store.s3 import S3Store
from tests.catalog.factory import T0, image_doc
from tests.httpapi.conftest import HOUR, TOKENS, MakeApp, auth, fill

pytestmark = pytest.mark.asyncio


def used(store: LocalStore, owner: str, uid: str, version: int, name: str = "") -> ResolvedLora:
    uri = store.uri(f"loras/{owner}/{uid}/v{version}/model.safetensors")
    return ResolvedLora(uri=uri, scale=0.8, name=name, uid=uid, version=version)


@pytest_asyncio.fixture
async def client(make_app: MakeApp, catalog: Catalog, store: LocalStore) -> AsyncIterator[httpx.AsyncClient]:
    """conftest's records, plus images made with alice's LoRA: hers (v2, v1), and bob's through a
    URL to her weights."""
    fill(catalog, store)
    uri = store.uri
    catalog.upsert(
        image_doc("a-img-v2", prompt="jesse at sea", created=T0 + 10 * HOUR, uri_of=uri,
                  loras=(used(store, "alice", "a-lora-1", 2, "jesse-avatar"),))
    )  # fmt: skip
    catalog.upsert(
        image_doc("a-img-v1", prompt="jesse in snow", created=T0 + 11 * HOUR, uri_of=uri,
                  loras=(used(store, "alice", "a-lora-1", 1, "jesse-avatar"),))
    )  # fmt: skip
    catalog.upsert(
        image_doc("b-img-url", owner="bob", prompt="borrowed", created=T0 + 12 * HOUR, uri_of=uri,
                  loras=(used(store, "alice", "a-lora-1", 2),))
    )  # fmt: skip
    store.put_bytes("generated-images/alice/a-img-v2/v1/thumbs/image_1.jpg", b"\xff\xd8 thumb", "image/jpeg")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=make_app()), base_url="http://api"
    ) as http:
        yield http


async def test_an_image_traces_to_the_lora_version_and_its_dataset(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/assets/a-img-v2/lineage", headers=auth("alice"))
    assert response.status_code == 200, response.text
    (lora,) = response.json()["loras"]
    assert (lora["name"], lora["uid"], lora["version"], lora["found"]) == (
        "jesse-avatar",
        "a-lora-1",
        2,
        True,
    )
    assert lora["lora"]["name"] == "jesse-avatar" and lora["trained"]["version"] == 2
    assert lora["trained"]["modelUri"].endswith("loras/alice/a-lora-1/v2/model.safetensors")


async def test_a_lora_lists_every_image_made_with_each_version(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/assets/a-lora-1/lineage", headers=auth("alice"))).json()
    assert body["imagesTotal"] == 2  # bob's image is not alice's to see
    by_version = {v["version"]: [i["id"] for i in v["images"]] for v in body["versions"]}
    assert by_version == {1: ["a-img-v1"], 2: ["a-img-v2"]}
    assert body["versions"][1]["images"][0]["thumbnails"][0].endswith("thumbs/image_1.jpg")
    # The same filter in lists: images made with a LoRA, or with one version of it.
    listed = (await client.get("/api/assets/images?lora=a-lora-1", headers=auth("alice"))).json()
    assert [i["id"] for i in listed["items"]] == ["a-img-v1", "a-img-v2"]
    listed = (await client.get("/api/assets/images?lora=a-lora-1/v2", headers=auth("alice"))).json()
    assert [i["id"] for i in listed["items"]] == ["a-img-v2"]


async def test_lineage_never_shows_another_owners_lora(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/assets/b-img-url/lineage", headers=auth("bob"))).json()
    (lora,) = body["loras"]
    assert (lora["uid"], lora["version"], lora["found"], lora["lora"], lora["trained"]) == (
        "a-lora-1", 2, False, None, None,
    )  # fmt: skip
    admin = (await client.get("/api/assets/a-lora-1/lineage", headers=auth("ops"))).json()
    assert admin["imagesTotal"] == 3


@pytest.mark.parametrize(
    ("who", "ref", "found"),
    [
        ("alice", "default/jesse-avatar", "a-lora-1"),
        ("bob", "default/jesse-avatar", "b-lora-1"),  # the same name, each owner's own
        ("alice", "a-lor", "a-lora-1"),  # a unique prefix
        ("alice", "a-tr-1", "a-tr-1"),  # an id that is also a prefix of another: exact wins
        ("bob", "a-lor", None),  # alice's prefix is nothing to bob
        ("alice", "a-l", None),  # too short to be a prefix
        ("alice", "default/nobody", None),
    ],
)
async def test_records_by_name_or_id_prefix(
    client: httpx.AsyncClient, who: str, ref: str, found: str | None
) -> None:
    response = await client.get(f"/api/jobs/{ref}", headers=auth(who))
    if found is None:
        assert response.status_code == 404 and response.json()["error"]["message"] == f"no record {ref!r}"
    else:
        assert response.status_code == 200 and response.json()["id"] == found


async def test_an_ambiguous_reference_names_the_candidates(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/jobs/a-img", headers=auth("alice"))
    assert response.status_code == 409 and response.json()["error"]["code"] == "ambiguous"
    message = response.json()["error"]["message"]
    assert message.startswith("id: 'a-img' matches 5 records: ")
    assert "default/portrait@a-img-v1 (image-generation, created 2025-03-01 23:00, not deleted)" in message
    # ids this short differ in their first 8 characters
    deleted = (
        "default/portrait@a-img-de (image-generation, created 2025-03-01 17:00, deleted 2025-03-01 21:00)"
    )
    assert deleted in message
    names = await client.get("/api/jobs/default/portrait", headers=auth("alice"))
    assert names.status_code == 409
    assert "name one as NAMESPACE/NAME@ID-PREFIX" in names.json()["error"]["message"]
    one = await client.get("/api/jobs/default/portrait@a-img-v1", headers=auth("alice"))
    assert one.status_code == 200 and one.json()["id"] == "a-img-v1"


async def test_files_are_served_for_the_owner_only(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/assets/a-lora-1/content?file=v2/config.json", headers=auth("alice"))
    assert response.status_code == 200
    assert response.content == b"bytes of loras/alice/a-lora-1/v2/config.json"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "sandbox"
    assert response.headers["content-disposition"].startswith("inline")
    thumb = await client.get("/api/assets/a-img-v2/content?file=thumbs/image_1.jpg", headers=auth("alice"))
    assert thumb.content == b"\xff\xd8 thumb" and thumb.headers["content-type"] == "image/jpeg"
    saved = await client.get("/api/assets/a-lora-1/content?download=true", headers=auth("alice"))
    assert saved.headers["content-disposition"] == 'attachment; filename="jesse-avatar-v2.safetensors"'
    older = await client.get("/api/assets/a-lora-1/content?download=true&version=1", headers=auth("alice"))
    assert older.content == b"bytes of loras/alice/a-lora-1/v1/model.safetensors"
    assert older.headers["content-disposition"] == 'attachment; filename="jesse-avatar-v1.safetensors"'
    assert thumb.headers["content-disposition"] == 'inline; filename="portrait-v1-thumb-image_1.jpg"'
    theirs = await client.get("/api/assets/a-lora-1/content", headers=auth("bob"))
    assert theirs.status_code == 404
    gone = await client.get("/api/assets/a-img-del/content", headers=auth("alice"))
    assert gone.status_code == 410


async def test_a_browser_session_is_the_token_in_an_httponly_cookie(client: httpx.AsyncClient) -> None:
    assert (await client.post("/ui/session", json={"token": "x" * 20})).status_code == 401
    assert (await client.post("/ui/session", json={"token": "short"})).status_code == 400
    response = await client.post("/ui/session", json={"token": TOKENS["alice"]})
    assert response.status_code == 200
    assert response.json() == {
        "owner": "alice",
        "admin": False,
        "owners": ["alice"],
        "user": "alice",
        "via": "token",
    }
    cookie = response.headers["set-cookie"]
    assert "contentgen_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain http here; behind TLS (X-Forwarded-Proto) it is Secure
    client.cookies.set("contentgen_session", TOKENS["alice"])
    assert (await client.get("/ui/session")).json()["owner"] == "alice"
    jobs = (await client.get("/api/jobs?type=lora-training")).json()
    assert [j["id"] for j in jobs["items"]] == ["a-lora-1"]
    assert (await client.get("/api/jobs/b-lora-1")).status_code == 404
    out = await client.delete("/ui/session")
    assert out.status_code == 204 and "contentgen_session=" in out.headers["set-cookie"]
    client.cookies.clear()
    assert (await client.get("/api/jobs")).status_code == 401
    behind_tls = await client.post(
        "/ui/session", json={"token": TOKENS["bob"]}, headers={"X-Forwarded-Proto": "https"}
    )
    assert "Secure" in behind_tls.headers["set-cookie"]


async def test_the_page_and_its_files_load_only_from_here(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200 and '<script src="/ui/app.js"' in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert (await client.get("/ui/app.js")).headers["content-type"].startswith("text/javascript")
    assert (await client.get("/ui/nothing.js")).status_code == 404
    docs = await client.get("/docs")
    assert "/docs-static/swagger-ui-bundle.js" in docs.text and '"validatorUrl": null' in docs.text
    assert "cdn" not in docs.text.lower()
    bundle = await client.get("/docs-static/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 500_000


async def test_s3_files_redirect_to_links_for_the_public_endpoint(
    s3: str, s3_endpoint: str, catalog: Catalog, settings: ApiSettings
) -> None:
    public = s3_endpoint.replace("127.0.0.1", "localhost")  # the same server, by another name
    store = S3Store(s3, "assets", public_endpoint_url=public)
    fill(catalog, store)
    app = create_app(settings, catalog=catalog, store=lambda: store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        response = await client.get("/api/assets/a-lora-1/content?file=config.json", headers=auth("alice"))
        link = (await client.get("/api/assets/a-lora-1/download", headers=auth("alice"))).json()
    assert response.status_code == 307
    location = response.headers["location"]
    assert location.startswith(f"{public}/{s3}/assets/loras/alice/a-lora-1/v2/config.json?")
    assert link["url"].startswith(public + "/")
    fetched = httpx.get(location)
    assert fetched.status_code == 200 and fetched.content == b"bytes of loras/alice/a-lora-1/v2/config.json"


async def test_a_catalog_that_is_down_is_a_503_within_seconds(settings: ApiSettings) -> None:
    down = MongoCatalog.connect("mongodb://127.0.0.1:1/contentgen")  # nothing listens on port 1
    app = create_app(settings, catalog=down)
    started = time.monotonic()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        response = await client.get("/api/jobs", headers=auth("alice"))
    assert time.monotonic() - started < 60  # a hang guard: the real bound is the 3 s selection timeout
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    error = response.json()["error"]
    assert error["code"] == "catalog_unavailable"
    assert error["message"].startswith("the catalog mongodb://127.0.0.1:1/contentgen cannot be reached")
    down.close()
