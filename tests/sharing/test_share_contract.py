"""The share routes' document states exactly what they take (issue 70): an owner is given read or
use, a group read only. A body the OpenAPI document allows is taken (PUT /api/collections/{cid}/shares
and /api/assets/{ref}/shares alike), one it forbids is refused with a 400 that says why in words;
`{"access": "use", "to": "group:bars"}`, which the document used to allow and the server refused
(schemathesis, seed 20261122), is one it forbids now."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
import mongomock
import pytest
import pytest_asyncio
import yaml

from contentgen.catalog.mongo import MongoCatalog
from contentgen.httpapi import ApiSettings, create_app
from contentgen.store import LocalStore
from tests.catalog.factory import lora_doc
from tests.httpapi.documented import Answers

pytestmark = pytest.mark.asyncio
TOKEN = "alice-token-0123456789"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
BODIES = [
    {"to": "owner:bob", "access": "read"},
    {"to": "owner:bob", "access": "use"},
    {"to": "group:bars", "access": "read"},
    {"to": "group:bars", "access": "use"},
    {"to": "group:a/b.c_d", "access": "read"},
    {"to": "owner:Bob", "access": "read"},
    {"to": "carol", "access": "read"},
    {"to": "group:bars", "access": "write"},
    {"to": "group:bars"},
]


@pytest_asyncio.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({"tokens": [{"owner": "alice", "token": TOKEN}]}))
    store = LocalStore(tmp_path / "store")
    catalog = MongoCatalog(mongomock.MongoClient(), "contentgen")
    catalog.upsert({**lora_doc("a-lora-1", name="avatar", uri_of=store.uri), "origin": "local"})
    settings = ApiSettings(catalog="unused://", store=str(store.root), api_tokens_file=tokens)
    app = create_app(settings, catalog=catalog, store=lambda: store)
    answers = Answers(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=answers), base_url="http://api") as http:
        yield http, app.openapi()
    assert answers.undocumented() == []


def _body_schema(document: dict[str, Any], path: str) -> jsonschema.Validator:
    body = document["paths"][path]["put"]["requestBody"]["content"]["application/json"]["schema"]
    return jsonschema.Draft202012Validator({**body, "components": document["components"]})


async def test_a_share_is_taken_exactly_when_the_document_allows_it(
    api: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    http, document = api
    made = await http.post("/api/collections", json={"name": "waves"}, headers=HEADERS)
    cid = made.json()["id"]
    for path, url in (
        ("/api/collections/{cid}/shares", f"/api/collections/{cid}/shares"),
        ("/api/assets/{ref}/shares", "/api/assets/a-lora-1/shares"),
    ):
        schema = _body_schema(document, path)
        for body in BODIES:
            allowed = schema.is_valid(body)
            answer = await http.put(url, json=body, headers=HEADERS)
            assert (answer.status_code == 200) == allowed, (path, body, answer.text)
            if not allowed:
                assert answer.status_code == 400, answer.text
        assert not schema.is_valid({"access": "use", "to": "group:bars"})
        refused = await http.put(url, json={"access": "use", "to": "group:bars"}, headers=HEADERS)
        assert refused.json()["error"]["message"] == (
            "group:bars: a group is given read only; use is checked against a resource's owner "
            "(spec.owner), so share use with an owner (owner:NAME)"
        )
