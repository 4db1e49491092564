"""Listing, filtering, paging, search and stats over HTTP, and 400s that name the parameter."""

from __future__ import annotations

import typing

import httpx
import pytest
from pydantic import TypeAdapter

from contentgen.api import CATALOG_TYPES
from contentgen.catalog import SORT_FIELDS, STATUSES
from contentgen.httpapi.deps import SortField, StatusName, TypeName
from tests.httpapi.conftest import ALICE_IDS, auth

pytestmark = pytest.mark.asyncio


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def get(client: httpx.AsyncClient, path: str, who: str = "alice") -> httpx.Response:
    return await client.get(path, headers=auth(who))


async def test_the_api_vocabularies_match_the_catalogs() -> None:
    assert TypeAdapter(TypeName).json_schema() == {"enum": list(CATALOG_TYPES), "type": "string"}
    assert typing.get_args(StatusName) == STATUSES
    assert typing.get_args(SortField) == SORT_FIELDS


async def test_a_page_carries_total_limit_and_offset(client: httpx.AsyncClient) -> None:
    first = (await get(client, "/api/jobs?limit=2")).json()
    assert (first["total"], first["limit"], first["offset"]) == (5, 2, 0)
    pages = [ids(await get(client, f"/api/jobs?limit=2&offset={o}")) for o in (0, 2, 4, 6)]
    assert pages == [ALICE_IDS[0:2], ALICE_IDS[2:4], ALICE_IDS[4:], []]


async def test_filters_by_type_status_and_dates(client: httpx.AsyncClient) -> None:
    assert ids(await get(client, "/api/jobs?type=transcription")) == ["a-tr-fail", "a-tr-1"]
    assert ids(await get(client, "/api/jobs?status=Failed")) == ["a-tr-fail"]
    assert ids(await get(client, "/api/jobs?status=Deleted")) == ["a-img-del"]
    assert ids(await get(client, "/api/jobs?since=2025-03-01T13:00:00Z&until=2025-03-01T15:00:00Z")) == [
        "a-img-2",
        "a-img-1",
    ]
    assert ids(await get(client, "/api/jobs?until=2025-03-01")) == ALICE_IDS  # the whole day
    assert ids(await get(client, "/api/jobs?since=2025-03-02")) == []


async def test_sort_and_order(client: httpx.AsyncClient) -> None:
    assert ids(await get(client, "/api/jobs?order=asc")) == ALICE_IDS[::-1]
    assert ids(await get(client, "/api/jobs?sort=name&order=asc")) == [
        "a-lora-1",  # jesse-avatar
        "a-tr-1",  # podcast
        "a-tr-fail",  # podcast
        "a-img-1",  # portrait
        "a-img-2",  # portrait
    ]


async def test_records_by_kind(client: httpx.AsyncClient) -> None:
    loras = (await get(client, "/api/assets/loras")).json()
    assert loras["total"] == 1
    lora = loras["items"][0]
    assert lora["kind"] == "LoraTraining" and lora["latestVersion"] == 2 and lora["triggerWord"] == "dmavatar"
    assert lora["latestModelUri"].endswith("/loras/alice/a-lora-1/v2/model.safetensors")
    assert ids(await get(client, "/api/assets/images?model=flux-pro")) == ["a-img-2"]
    images = (await get(client, "/api/assets/images")).json()["items"]
    assert {i["prompt"] for i in images} == {"a red fox", "jesse in a suit"}
    transcript = (await get(client, "/api/assets/transcripts?status=Succeeded")).json()["items"][0]
    assert transcript["wordCount"] == 4 and transcript["textUri"].endswith("/v1/transcript.txt")
    record = (await get(client, "/api/jobs/a-tr-fail")).json()
    assert record["status"] == "Failed" and record["latestRun"]["error"]["reason"] == "Failed"
    assert ids(await get(client, "/api/jobs?run=Failed")) == ["a-tr-fail"]


async def test_search(client: httpx.AsyncClient) -> None:
    # best first: the LoRA named jesse above the image whose prompt has the word
    assert ids(await get(client, "/api/assets/search?q=JESSE")) == ["a-lora-1", "a-img-1"]
    assert ids(await get(client, "/api/assets/search?q=jesse&sort=createdAt")) == ["a-img-1", "a-lora-1"]
    assert ids(await get(client, "/api/assets/search?q=jesse+suit")) == ["a-img-1"]
    assert ids(await get(client, "/api/assets/search?q=jesse&type=lora-training")) == ["a-lora-1"]
    assert ids(await get(client, "/api/assets/search?q=headshot")) == ["a-lora-1"]  # a tag
    assert ids(await get(client, "/api/assets/search?q=.*")) == []
    page = (await get(client, "/api/assets/search?q=jesse&limit=1&offset=1")).json()
    assert page["total"] == 2 and [i["id"] for i in page["items"]] == ["a-img-1"]
    assert [h["id"] for h in page["hits"]] == ["a-img-1"] and page["hits"][0]["fields"] == ["prompt"]
    assert page["rankedBy"] == "relevance" and page["engine"] in ("sqlite-fts5", "mongodb-text", "scan")


async def test_stats(client: httpx.AsyncClient) -> None:
    stats = (await get(client, "/api/assets/stats")).json()
    assert stats["byType"] == {
        "lora-training": 1,
        "image-generation": 2,
        "transcription": 2,
        "lora-evaluation": 0,
        "video-generation": 0,
    }
    assert stats["byStatus"] == {"Pending": 0, "Running": 0, "Succeeded": 4, "Failed": 1, "Interrupted": 0}
    lora, images, transcript = 2 * 1010, 2 * 2 * 500, 300 + len("wildfires in the forest")
    assert stats["totalBytes"] == lora + images + transcript
    assert stats["pricePerGbMonth"] == 0.023 and stats["currency"] == "USD"
    assert set(stats) == {
        "owner", "owners", "totalJobs", "byType", "byStatus", "totalVersions", "versionsByType", "totalBytes",
        "totalGB", "pricePerGbMonth", "estimatedMonthlyCost", "currency", "spend",
    }  # fmt: skip
    assert stats["totalVersions"] == 5  # a-lora-1: 2, the two image runs, one transcript
    assert stats["spend"] == {"totalUsd": 0.0, "byOwner": {}, "byType": {}, "byMonth": {}, "currency": "USD"}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/jobs?limit=0", 'limit: must be at least 1, got "0"'),
        ("/api/jobs?limit=501", 'limit: must be at most 500, got "501"'),
        ("/api/jobs?limit=many", 'limit: must be an integer, got "many"'),
        ("/api/jobs?offset=-1", 'offset: must be at least 0, got "-1"'),
        (
            "/api/jobs?type=video",
            "type: must be one of image-generation, lora-evaluation, lora-training, transcription or "
            'video-generation, got "video"',
        ),
        (
            "/api/jobs?status=completed",
            "status: must be one of Pending, Running, Succeeded, Failed, Interrupted or Deleted",
        ),
        (
            "/api/jobs?run=Done",
            'run: must be one of Pending, Running, Succeeded, Failed, Cancelled or Interrupted, got "Done"',
        ),
        ("/api/jobs?sort=spec", "sort: must be one of createdAt, updatedAt, completedAt, name, status, type"),
        ("/api/jobs?order=up", 'order: must be one of asc or desc, got "up"'),
        ("/api/jobs?since=yesterday", "since: 'yesterday' is not an ISO date or datetime"),
        ("/api/assets/loras?until=2025-02-30", "until: '2025-02-30' is not an ISO date or datetime"),
        ("/api/jobs?since=2025-03-02T00:00:00.1234567", "since: '2025-03-02T00:00:00.1234567' is not an ISO"),
        ("/api/jobs?since=", "since: '' is not an ISO date or datetime"),
        ("/api/jobs/a@", "ref: 'a@' is not a record reference"),
        ("/api/jobs/@", "ref: '@' is not a record reference"),
        ("/api/assets/search", "q: required; add it"),
        ("/api/assets/search?q=+++", "q: the search query is empty"),
        ("/api/assets/search?q=" + "+w" * 21, "q: the search query has 21 words; at most 20"),
        ("/api/assets/a-lora-1/download?expires=0", 'expires: must be at least 1, got "0"'),
        (
            "/api/assets/a-lora-1/download?expires=604801",
            'expires: must be at most 604800, got "604801"',
        ),
    ],
)
async def test_bad_parameters_are_400s_naming_them(
    client: httpx.AsyncClient, path: str, message: str
) -> None:
    response = await get(client, path)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "bad_request"
    assert error["message"].startswith(message)


async def test_unknown_routes_are_json_404s(client: httpx.AsyncClient) -> None:
    response = await get(client, "/api/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not Found"}}


async def test_an_empty_range_is_an_empty_page(client: httpx.AsyncClient) -> None:
    response = await get(client, "/api/jobs?since=2025-03-02&until=2025-03-01T00:00")
    assert response.status_code == 200 and response.json()["total"] == 0


async def test_a_405_names_every_method_the_path_serves(client: httpx.AsyncClient) -> None:
    """Starlette's names only the first route's; /api/jobs/NS/cancel is the action's path, not a
    record's."""
    response = await client.request("OPTIONS", "/api/jobs/a-img-1", headers=auth("alice"))
    assert response.status_code == 405 and response.headers["allow"] == "DELETE, GET"
    response = await client.get("/api/jobs/default/cancel", headers=auth("alice"))
    assert response.status_code == 405 and response.headers["allow"] == "POST"


async def test_creates_when_this_api_does_not_create_are_403s_saying_so(client: httpx.AsyncClient) -> None:
    body = {"kind": "ImageGeneration", "spec": {"prompt": "a lighthouse"}}
    response = await client.post("/api/resources", json=body, headers=auth("alice"))
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "create_disabled" and "CONTENTGEN_API_CREATE=off" in error["message"]


async def test_a_transcription_without_its_audio_is_a_400_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/transcribe", json={"language_code": "en"}, headers=auth("alice"))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["fields"][0]["field"] == "audioUrl"
