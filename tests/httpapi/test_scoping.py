"""A token sees its owner's records only, through every endpoint; an admin sees everyone's."""

from __future__ import annotations

import httpx
import pytest

from tests.httpapi.conftest import ALICE_IDS, BOB_IDS, auth

pytestmark = pytest.mark.asyncio


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_lists_hold_only_the_callers_records(client: httpx.AsyncClient) -> None:
    assert ids(await client.get("/api/jobs", headers=auth("alice"))) == ALICE_IDS
    assert ids(await client.get("/api/jobs", headers=auth("bob"))) == BOB_IDS
    assert ids(await client.get("/api/assets/loras", headers=auth("bob"))) == ["b-lora-1"]
    assert ids(await client.get("/api/assets/images", headers=auth("alice"))) == ["a-img-2", "a-img-1"]
    assert ids(await client.get("/api/assets/transcripts", headers=auth("bob"))) == ["b-tr-1"]


async def test_search_finds_only_the_callers_records(client: httpx.AsyncClient) -> None:
    assert ids(await client.get("/api/assets/search?q=jesse", headers=auth("bob"))) == ["b-lora-1"]
    assert ids(await client.get("/api/assets/search?q=red+fox", headers=auth("alice"))) == ["a-img-2"]
    assert ids(await client.get("/api/assets/search?q=wildfires", headers=auth("ops"))) == [
        "b-tr-1",
        "a-tr-1",
    ]
    # the hits are of the caller's records alone: bob's transcript is not quoted to alice
    for who, mine in (("alice", ["a-tr-1"]), ("bob", ["b-tr-1"])):
        page = (await client.get("/api/assets/search?q=wildfires", headers=auth(who))).json()
        assert [i["id"] for i in page["items"]] == [h["id"] for h in page["hits"]] == mine
        assert page["hits"][0]["transcript"] and "wildfires" in page["hits"][0]["transcript"][0]["snippet"]


async def test_stats_count_only_the_callers_records(client: httpx.AsyncClient) -> None:
    alice = (await client.get("/api/assets/stats", headers=auth("alice"))).json()
    bob = (await client.get("/api/assets/stats", headers=auth("bob"))).json()
    everyone = (await client.get("/api/assets/stats", headers=auth("ops"))).json()
    assert (alice["owner"], alice["totalJobs"]) == ("alice", 5)
    assert (bob["owner"], bob["totalJobs"]) == ("bob", 3)
    assert (everyone["owner"], everyone["totalJobs"]) == (None, 8)
    assert everyone["totalBytes"] == alice["totalBytes"] + bob["totalBytes"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/jobs/{id}",
        "/api/assets/{id}/download",
        "/api/assets/{id}/download?file=model.safetensors",
        "/api/stream/job/{id}",
    ],
)
async def test_another_owners_record_is_not_found_exactly_like_a_missing_one(
    client: httpx.AsyncClient, path: str
) -> None:
    theirs = await client.get(path.format(id="b-lora-1"), headers=auth("alice"))
    missing = await client.get(path.format(id="no-such-id"), headers=auth("alice"))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == {"error": {"code": "not_found", "message": "no record 'b-lora-1'"}}
    assert missing.json() == {"error": {"code": "not_found", "message": "no record 'no-such-id'"}}
    mine = await client.get(path.format(id="b-lora-1"), headers=auth("bob"))
    assert mine.status_code == 200


@pytest.mark.parametrize(
    "path", ["/api/jobs", "/api/assets/loras", "/api/assets/search?q=fox", "/api/assets/stats"]
)
async def test_a_non_admin_asking_for_another_owner_is_forbidden(
    client: httpx.AsyncClient, path: str
) -> None:
    join = "&" if "?" in path else "?"
    response = await client.get(f"{path}{join}owner=bob", headers=auth("alice"))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert "owner" in response.json()["error"]["message"]
    own = await client.get(f"{path}{join}owner=alice", headers=auth("alice"))
    assert own.status_code == 200


async def test_an_admin_sees_everyone_and_can_pick_an_owner(client: httpx.AsyncClient) -> None:
    everyone = ids(await client.get("/api/jobs?limit=100", headers=auth("ops")))
    assert sorted(everyone) == sorted(ALICE_IDS + BOB_IDS)
    assert ids(await client.get("/api/jobs?owner=bob", headers=auth("ops"))) == BOB_IDS
    stats = (await client.get("/api/assets/stats?owner=alice", headers=auth("ops"))).json()
    assert stats["owner"] == "alice" and stats["totalJobs"] == 5
    assert (await client.get("/api/jobs/a-lora-1", headers=auth("ops"))).json()["owner"] == "alice"
    download = await client.get("/api/assets/b-lora-1/download", headers=auth("ops"))
    assert download.status_code == 200
