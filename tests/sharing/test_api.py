"""Sharing, collections and usage over HTTP (issue 38): alice shares a LoRA with bob; carol, a third
owner, sees none of it (404, as a missing record), and every answer is one the OpenAPI document
lists."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import mongomock
import pytest
import pytest_asyncio
import yaml

from contentgen.api import ResolvedLora
from contentgen.catalog import Catalog
from contentgen.catalog.mongo import MongoCatalog
from contentgen.httpapi import ApiSettings, create_app
from contentgen.store import LocalStore
from tests.catalog.factory import image_doc, lora_doc
from tests.httpapi.documented import Answers

pytestmark = pytest.mark.asyncio
TOKENS = {o: f"{o}-token-0123456789" for o in ("alice", "bob", "carol")}


def auth(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[who]}"}


def fill(catalog: Catalog, store: LocalStore) -> None:
    lora = lora_doc("a-lora-1", name="avatar", versions=2, uri_of=store.uri)
    catalog.upsert({**lora, "origin": "local"})  # a laptop's record: shared in the catalog
    used = ResolvedLora(uri=store.uri("loras/alice/a-lora-1/v2/model.safetensors"), uid="a-lora-1", version=2)
    catalog.upsert(image_doc("a-img-1", prompt="avatar in a suit", loras=(used,), uri_of=store.uri))
    catalog.upsert(lora_doc("a-lora-op", name="operator-made", uri_of=store.uri))  # a cluster resource's
    catalog.upsert(image_doc("b-img-1", owner="bob", prompt="bob's fox", loras=(used,), uri_of=store.uri))
    for key in (
        "loras/alice/a-lora-1/v2/model.safetensors",
        "generated-images/alice/a-img-1/v1/image_1.png",
        "generated-images/alice/a-img-1/v1/image_2.png",
    ):
        store.put_bytes(key, f"bytes of {key}".encode(), "application/octet-stream")


@pytest_asyncio.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({"tokens": [{"owner": o, "token": t} for o, t in TOKENS.items()]}))
    store = LocalStore(tmp_path / "store")
    catalog = MongoCatalog(mongomock.MongoClient(), "contentgen")
    fill(catalog, store)
    settings = ApiSettings(catalog="unused://", store=str(store.root), api_tokens_file=tokens)
    answers = Answers(create_app(settings, catalog=catalog, store=lambda: store))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=answers), base_url="http://api") as http:
        yield http
    assert answers.undocumented() == []


async def test_a_lora_shared_for_use_is_seen_by_bob_and_not_by_carol(api: httpx.AsyncClient) -> None:
    shared = await api.put(
        "/api/assets/a-lora-1/shares", json={"to": "owner:bob", "access": "use"}, headers=auth("alice")
    )
    assert shared.status_code == 200, shared.text
    assert [(s["to"], s["access"], s["by"]) for s in shared.json()["shares"]] == [
        ("owner:bob", "use", "alice")
    ]
    assert shared.json()["annotation"] == ""

    seen = await api.get("/api/jobs/a-lora-1", headers=auth("bob"))
    assert seen.status_code == 200 and seen.json()["owner"] == "alice" and seen.json()["shares"] == []
    assert (await api.get("/api/jobs/a-lora-1", headers=auth("alice"))).json()["shares"][0][
        "to"
    ] == "owner:bob"
    listed = (await api.get("/api/shared", headers=auth("bob"))).json()
    assert [i["id"] for i in listed["items"]] == ["a-lora-1"]

    # use only: no files for bob; nothing at all for carol, as if it did not exist
    refused = await api.get("/api/assets/a-lora-1/download", headers=auth("bob"))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "use_only"
    for path in ("/api/jobs/a-lora-1", "/api/assets/a-lora-1/download", "/api/assets/a-lora-1/usage"):
        answer = await api.get(path, headers=auth("carol"))
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found", path
    assert (await api.get("/api/shared", headers=auth("carol"))).json()["items"] == []
    put = await api.put(
        "/api/assets/a-lora-1/shares", json={"to": "carol", "access": "read"}, headers=auth("carol")
    )
    assert put.status_code == 400  # not a grantee: owner:NAME or group:NAME
    put = await api.put(
        "/api/assets/a-lora-1/shares", json={"to": "owner:carol", "access": "read"}, headers=auth("carol")
    )
    assert put.status_code == 404
    put = await api.put(
        "/api/assets/a-lora-1/shares", json={"to": "owner:carol", "access": "read"}, headers=auth("bob")
    )
    assert put.status_code == 403  # bob sees it, but only its owner shares it

    # read: bob downloads; taken back: bob sees nothing again
    await api.put(
        "/api/assets/a-lora-1/shares", json={"to": "owner:bob", "access": "read"}, headers=auth("alice")
    )
    assert (await api.get("/api/assets/a-lora-1/download", headers=auth("bob"))).status_code == 200
    gone = await api.delete("/api/assets/a-lora-1/shares/owner:bob", headers=auth("alice"))
    assert gone.status_code == 200 and gone.json()["shares"] == []
    assert (await api.get("/api/jobs/a-lora-1", headers=auth("bob"))).status_code == 404
    again = await api.delete("/api/assets/a-lora-1/shares/owner:bob", headers=auth("alice"))
    assert again.status_code == 404 and again.json()["error"]["code"] == "grant_not_found"


async def test_groups_are_read_only_and_cluster_resources_share_by_annotation(api: httpx.AsyncClient) -> None:
    group_use = await api.put(
        "/api/assets/a-lora-1/shares", json={"to": "group:artists", "access": "use"}, headers=auth("alice")
    )
    assert group_use.status_code == 400 and "read only" in group_use.json()["error"]["message"]
    cluster = await api.put(
        "/api/assets/a-lora-op/shares", json={"to": "owner:bob", "access": "use"}, headers=auth("alice")
    )
    assert cluster.status_code == 409 and cluster.json()["error"]["code"] == "share_in_cluster"
    assert (
        "kubectl annotate loratraining/operator-made -n default "
        "contentgen.io/shared-with=owner:bob=use --overwrite" in cluster.json()["error"]["message"]
    )


async def test_usage_counts_downloads_and_lists_what_was_made_with_it(api: httpx.AsyncClient) -> None:
    for _ in range(2):
        assert (
            await api.get("/api/assets/a-lora-1/download?version=2", headers=auth("alice"))
        ).status_code == 200
    content = await api.get("/api/assets/a-lora-1/content?version=2&download=true", headers=auth("alice"))
    assert content.status_code == 200
    usage = (await api.get("/api/assets/a-lora-1/usage", headers=auth("alice"))).json()
    assert usage["downloads"] == 3 and usage["lastDownloadedAt"] and usage["lastAccessedAt"]
    assert [(v["version"], v["downloads"]) for v in usage["versions"]] == [(1, 0), (2, 3)]
    assert usage["totalBytes"] > 0 and usage["pricePerGbMonth"] == 0.023
    assert usage["monthlyStorageUsd"] == round(usage["totalBytes"] / 1024**3 * 0.023, 6)
    assert [(c["id"], c["versions"]) for c in usage["usedIn"]] == [("a-img-1", [2])]
    assert usage["usedByOtherOwners"] == 1  # bob's image: counted for its owner, not shown


async def test_a_collection_is_shared_searched_and_downloaded_but_not_by_carol(
    api: httpx.AsyncClient,
) -> None:
    made = await api.post(
        "/api/collections", json={"name": "campaign", "description": "spring"}, headers=auth("alice")
    )
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    twice = await api.post("/api/collections", json={"name": "campaign"}, headers=auth("alice"))
    assert twice.status_code == 409
    for ref in ("a-lora-1", "a-img-1"):
        added = await api.post(f"/api/collections/{cid}/members", json={"ref": ref}, headers=auth("alice"))
        assert added.status_code == 200, added.text
    assert added.json()["memberCount"] == 2
    shared = await api.put(
        f"/api/collections/{cid}/shares", json={"to": "owner:bob", "access": "read"}, headers=auth("alice")
    )
    assert shared.status_code == 200

    seen = (await api.get(f"/api/collections/{cid}", headers=auth("bob"))).json()
    assert seen["access"] == "read" and [i["id"] for i in seen["items"]] == ["a-lora-1", "a-img-1"]
    assert seen["shares"] == []
    found = (await api.get(f"/api/collections/{cid}/search?q=suit", headers=auth("bob"))).json()
    assert [i["id"] for i in found["items"]] == ["a-img-1"]
    archive = await api.get(f"/api/collections/{cid}/archive", headers=auth("bob"))
    assert archive.status_code == 200 and archive.headers["content-type"] == "application/zip"
    names = sorted(zipfile.ZipFile(io.BytesIO(archive.content)).namelist())
    assert "default_avatar-v2/model.safetensors" in names and "default_portrait-v1/image_1.png" in names
    assert (await api.get("/api/collections", headers=auth("bob"))).json()["items"][0]["name"] == "campaign"
    refused = await api.post(f"/api/collections/{cid}/members", json={"ref": "b-img-1"}, headers=auth("bob"))
    assert refused.status_code == 403

    for path in (
        f"/api/collections/{cid}",
        f"/api/collections/{cid}/archive",
        f"/api/collections/{cid}/search?q=suit",
    ):
        assert (await api.get(path, headers=auth("carol"))).status_code == 404, path
    assert (await api.get("/api/collections", headers=auth("carol"))).json()["items"] == []
    assert (await api.delete(f"/api/collections/{cid}", headers=auth("carol"))).status_code == 404
    assert (
        await api.delete(f"/api/collections/{cid}/members/a-img-1", headers=auth("alice"))
    ).status_code == 200
    assert (await api.delete(f"/api/collections/{cid}", headers=auth("alice"))).status_code == 204


async def test_a_create_with_another_owners_lora_needs_its_use_grant(api: httpx.AsyncClient) -> None:
    """Refused in the API before anything is created (403 lora_not_shared), whether the LoRA exists
    or not; with the grant it passes this check (this API then says it does not create)."""
    body = {
        "kind": "ImageGeneration",
        "metadata": {"name": "pic"},
        "spec": {
            "owner": "carol",
            "prompt": "p",
            "model": "flux-lora",
            "loras": [{"loraRef": {"name": "avatar", "owner": "alice"}}],
        },
    }
    refused = await api.post("/api/resources", json=body, headers=auth("carol"))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "lora_not_shared"
    assert "has not shared it with owner 'carol'" in refused.json()["error"]["message"]
    body["spec"]["loras"][0]["loraRef"]["name"] = "no-such-lora"  # type: ignore[index]
    missing = await api.post("/api/resources", json=body, headers=auth("carol"))
    assert missing.status_code == 403 and missing.json()["error"]["message"] == refused.json()["error"][
        "message"
    ].replace("'avatar'", "'no-such-lora'")
    await api.put(
        "/api/assets/a-lora-1/shares", json={"to": "owner:carol", "access": "use"}, headers=auth("alice")
    )
    body["spec"]["loras"][0]["loraRef"]["name"] = "avatar"  # type: ignore[index]
    passed = await api.post("/api/resources", json=body, headers=auth("carol"))
    assert passed.status_code == 403 and passed.json()["error"]["code"] == "create_disabled"


async def test_bobs_lineage_follows_a_lora_shared_with_him(api: httpx.AsyncClient) -> None:
    before = (await api.get("/api/assets/b-img-1/lineage", headers=auth("bob"))).json()
    assert [(u["uid"], u["found"]) for u in before["loras"]] == [("a-lora-1", False)]
    await api.put(
        "/api/assets/a-lora-1/shares", json={"to": "owner:bob", "access": "use"}, headers=auth("alice")
    )
    after = (await api.get("/api/assets/b-img-1/lineage", headers=auth("bob"))).json()
    (use,) = after["loras"]
    assert use["found"] and use["lora"]["owner"] == "alice" and use["trained"]["version"] == 2


async def test_a_members_ref_is_taken_in_every_form_its_document_states(api: httpx.AsyncClient) -> None:
    """The document states the member's `ref` as /api/assets/{ref}'s pattern (issue 45: it said a
    string, and the route refused some it allowed with 400 "not a record reference"): each form
    the pattern allows names the record; one it forbids is a 400 naming the field; a reference the
    pattern allows that names nothing is a 404, never a 400."""
    document = (await api.get("/openapi.json")).json()
    ref = document["components"]["schemas"]["MemberRequest"]["properties"]["ref"]
    assert (
        ref["pattern"]
        == document["paths"]["/api/assets/{ref}/usage"]["get"]["parameters"][0]["schema"]["pattern"]
    )
    made = await api.post("/api/collections", json={"name": "refs"}, headers=auth("alice"))
    cid = made.json()["id"]
    for form in ("a-img-1", "a-im", "default/portrait", "default/portrait@a-img", "portrait"):
        added = await api.post(f"/api/collections/{cid}/members", json={"ref": form}, headers=auth("alice"))
        assert added.status_code == 200, (form, added.text)
        assert added.json()["memberCount"] == 1, form  # the same record each time
    for allowed_but_missing in ("0", "x.y", "nobody/nothing", "n/m@0-0", "Z_z"):
        answer = await api.post(
            f"/api/collections/{cid}/members", json={"ref": allowed_but_missing}, headers=auth("alice")
        )
        assert answer.status_code == 404, (allowed_but_missing, answer.text)
    for forbidden in ("a b", "/x", "a/b/c", "a@", "-a", "a\n", "a@b_c"):
        answer = await api.post(
            f"/api/collections/{cid}/members", json={"ref": forbidden}, headers=auth("alice")
        )
        assert answer.status_code == 400, (forbidden, answer.text)
        assert "ref" in answer.text


async def test_a_create_naming_another_owners_key_needs_its_grant(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    """An address of alice's output in the store (here a laptop's: its file:// URI or its path, of
    a version that exists or not) is refused for carol in the words admission, the operator and the
    worker use (403 input_not_shared, the field named); once alice shares it for use, it passes
    this check; an upload is never shared."""
    root = (tmp_path / "store").resolve()

    def body(url: str) -> dict[str, Any]:
        return {
            "kind": "ImageGeneration",
            "metadata": {"name": "pic"},
            "spec": {"owner": "carol", "prompt": "p", "model": "flux-lora", "loras": [{"url": url}]},
        }

    words = (
        "spec.loras[0].url: loras/alice/a-lora-1/… belongs to owner 'alice', who has not shared it with "
        "owner 'carol' (spec.owner) for use; name an output of owner 'carol', or have 'alice' share it for "
        "use (docs/sharing.md)"
    )
    weights = "loras/alice/a-lora-1/v2/model.safetensors"
    for url in (
        f"{root.as_uri()}/{weights}",
        str(root / weights),
        f"{root.as_uri()}/loras/alice/a-lora-1/v9/x.safetensors",
    ):
        refused = await api.post("/api/resources", json=body(url), headers=auth("carol"))
        error = refused.json()["error"]
        assert (
            refused.status_code == 403 and error["code"] == "input_not_shared" and error["message"] == words
        )
        assert error["fields"] == [{"field": "spec.loras[0].url", "message": words.split(": ", 1)[1]}]
    upload = await api.post(
        "/api/resources",
        json=body(f"{root.as_uri()}/uploads/alice/0123abcd/x.safetensors"),
        headers=auth("carol"),
    )
    assert upload.json()["error"]["code"] == "input_not_shared" and "uploads are not shared" in upload.text
    await api.put(
        "/api/assets/a-lora-1/shares", json={"to": "owner:carol", "access": "use"}, headers=auth("alice")
    )
    passed = await api.post("/api/resources", json=body(f"{root.as_uri()}/{weights}"), headers=auth("carol"))
    assert passed.status_code == 403 and passed.json()["error"]["code"] == "create_disabled"
