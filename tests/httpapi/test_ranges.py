"""Range requests on /content, the route the web UI's video player streams through."""

from __future__ import annotations

import httpx
import mongomock
import pytest

from contentgen.catalog.mongo import MongoCatalog
from contentgen.httpapi import ApiSettings, create_app
from contentgen.httpapi.ranges import Unsatisfiable, wanted
from contentgen.store import LocalStore
from contentgen.store.s3 import S3Store
from tests.httpapi.conftest import auth, fill

IMAGE = "/api/assets/a-img-1/content?file=image_1.png"
BODY = b"bytes of generated-images/alice/a-img-1/v1/image_1.png"
SIZE = len(BODY)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=10-", (10, 99)),
        ("bytes=-5", (95, 99)),
        ("bytes=-500", (0, 99)),
        ("bytes=90-1000", (90, 99)),
        ("BYTES = 1 - 2", (1, 2)),
        ("bytes=99-99", (99, 99)),
        ("bytes=100-", Unsatisfiable(100)),
        ("bytes=-0", Unsatisfiable(100)),
        ("bytes=5-2", None),  # invalid: ignored
        ("bytes=0-1,5-6", None),  # several: the whole file
        ("items=0-1", None),
        ("bytes=-", None),
        ("bytes=x-1", None),
        (None, None),
    ],
)
def test_what_a_range_asks_for(header: str | None, expected: object) -> None:
    assert wanted(header, 100) == expected


def test_nothing_is_in_an_empty_file() -> None:
    assert wanted("bytes=0-", 0) == Unsatisfiable(0) and wanted("bytes=-3", 0) == Unsatisfiable(0)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-4", 0, 4),
        ("bytes=9-", 9, SIZE - 1),
        ("bytes=-6", SIZE - 6, SIZE - 1),
        ("bytes=3-9999", 3, SIZE - 1),
    ],
)
async def test_one_range_is_a_206(client: httpx.AsyncClient, header: str, first: int, last: int) -> None:
    response = await client.get(IMAGE, headers={**auth("alice"), "Range": header})
    assert response.status_code == 206
    assert response.content == BODY[first : last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/{SIZE}"
    assert response.headers["content-length"] == str(last - first + 1)
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.asyncio
@pytest.mark.parametrize("header", [None, "bytes=0-1,4-5", "lines=1-2", "bytes=7-3", "nonsense"])
async def test_the_whole_file_otherwise(client: httpx.AsyncClient, header: str | None) -> None:
    headers = auth("alice") | ({"Range": header} if header else {})
    response = await client.get(IMAGE, headers=headers)
    assert response.status_code == 200 and response.content == BODY
    assert response.headers["accept-ranges"] == "bytes"
    assert "content-range" not in response.headers


@pytest.mark.asyncio
@pytest.mark.parametrize("header", [f"bytes={SIZE}-", "bytes=-0", f"bytes={SIZE + 5}-{SIZE + 9}"])
async def test_past_the_end_is_a_416_in_one_line(client: httpx.AsyncClient, header: str) -> None:
    response = await client.get(IMAGE, headers={**auth("alice"), "Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{SIZE}"
    error = response.json()["error"]
    assert error["code"] == "range_not_satisfiable"
    assert f"the {SIZE}-byte file; ask for bytes=0-{SIZE - 1}" in error["message"]


@pytest.mark.asyncio
async def test_a_download_can_be_ranged_too(client: httpx.AsyncClient, store: LocalStore) -> None:
    response = await client.get(IMAGE + "&download=true", headers={**auth("alice"), "Range": "bytes=0-4"})
    assert response.status_code == 206 and response.content == BODY[:5]
    assert response.headers["content-disposition"].startswith("attachment;")


@pytest.mark.asyncio
async def test_the_openapi_document_states_ranges(client: httpx.AsyncClient) -> None:
    operation = (await client.get("/openapi.json")).json()["paths"]["/api/assets/{ref}/content"]["get"]
    assert {"206", "416"} <= set(operation["responses"])
    assert any(p["name"] == "Range" and p["in"] == "header" for p in operation["parameters"])


@pytest.mark.asyncio
async def test_an_s3_store_serves_the_range_through_its_presigned_link(
    s3: str, settings: ApiSettings
) -> None:
    store = S3Store(s3, "cg")
    catalog = MongoCatalog(mongomock.MongoClient(), "contentgen")
    fill(catalog, store)
    app = create_app(settings.model_copy(update={"store": f"s3://{s3}/cg"}), catalog=catalog)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        moved = await client.get(IMAGE, headers={**auth("alice"), "Range": "bytes=9-16"})
    assert moved.status_code == 307
    part = httpx.get(moved.headers["location"], headers={"Range": "bytes=9-16"})  # as a browser follows it
    assert part.status_code == 206 and part.content == BODY[9:17]
    assert part.headers["content-range"] == f"bytes 9-16/{SIZE}"
