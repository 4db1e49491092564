"""GET /api/assets/REF/usage's `usedIn` over HTTP, behind an authenticating proxy whose headers name
the caller's groups: a LoRA's pictures, evaluations and the videos animating its pictures, an
image generation's videos, each listed only where the caller may see it (its own, shared with it
or with one of its groups); carol sees neither alice's LoRA (404) nor, through a group, any of
bob's clips she was not given. The records are tests/catalog/test_usage.py's, made as the operator
makes them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import mongomock
import pytest
import pytest_asyncio
import yaml

from contentgen.catalog.mongo import MongoCatalog
from contentgen.httpapi import ApiSettings, create_app
from contentgen.store import LocalStore
from tests.harness.usage import LORA, fill
from tests.httpapi.documented import Answers

pytestmark = pytest.mark.asyncio
OWNERS = {"owners": [{"owner": o, "users": [o]} for o in ("alice", "bob", "carol")]}


def who(user: str, *groups: str) -> dict[str, str]:
    return {"X-Auth-Request-User": user, "X-Auth-Request-Groups": ",".join(groups)}


@pytest_asyncio.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    owners = tmp_path / "owners.yaml"
    owners.write_text(yaml.safe_dump(OWNERS))
    catalog = MongoCatalog(mongomock.MongoClient(), "contentgen")
    fill(catalog)
    store = LocalStore(tmp_path / "store")
    settings = ApiSettings(
        catalog="unused://",
        store=str(store.root),
        api_auth=["proxy"],
        api_trusted_proxies=["10.0.0.0/8"],
        api_owners_file=owners,
    )
    answers = Answers(create_app(settings, catalog=catalog, store=lambda: store))
    transport = httpx.ASGITransport(app=answers, client=("10.1.2.3", 51000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        yield http
    assert answers.undocumented() == []


async def used_in(api: httpx.AsyncClient, ref: str, headers: dict[str, str]) -> dict[str, Any]:
    answer = await api.get(f"/api/assets/{ref}/usage", headers=headers)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def test_a_loras_pictures_and_their_videos_as_far_as_each_caller_may_see(
    api: httpx.AsyncClient,
) -> None:
    alice = await used_in(api, LORA, who("alice"))
    assert [(c["id"], c["kind"], c["relations"], c["versions"]) for c in alice["usedIn"]] == [
        ("a-eval", "LoraEvaluation", ["evaluation"], [1]),
        ("b-vid-shared", "VideoGeneration", ["picture"], [2]),
        ("a-vid-pic", "VideoGeneration", ["picture"], [2]),
        ("a-mixed", "ImageGeneration", ["lora"], [2]),
        ("a-img", "ImageGeneration", ["lora"], [2]),
    ]
    assert alice["usedInTotal"] == 5 and alice["usedByOtherOwners"] == 3
    # her group artists was given bob's picture: the proxy's groups reach the usage
    grouped = await used_in(api, LORA, who("alice", "artists"))
    assert "b-img" in [c["id"] for c in grouped["usedIn"]] and grouped["usedInTotal"] == 6
    assert "fox-clip" not in str(grouped)  # bob's clip shared with nobody: counted, never named
    bob = await used_in(api, LORA, who("bob"))
    assert [c["id"] for c in bob["usedIn"]] == ["b-vid-shared", "b-vid-pic", "b-img"]
    assert bob["usedByOtherOwners"] == 0 and "portrait" not in str(bob)  # nothing of alice's
    for headers in (who("carol"), who("carol", "artists")):
        refused = await api.get(f"/api/assets/{LORA}/usage", headers=headers)
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"


async def test_an_image_generations_videos_as_far_as_each_caller_may_see(api: httpx.AsyncClient) -> None:
    mine = await used_in(api, "a-img", who("alice"))
    assert [(c["id"], c["relations"], c["versions"]) for c in mine["usedIn"]] == [
        ("a-vid-pic", ["image"], [1])
    ]
    theirs = await used_in(api, "b-img", who("bob"))
    assert [c["id"] for c in theirs["usedIn"]] == ["b-vid-shared", "b-vid-pic"]
    # bob's picture seen through the group artists: alice is shown the clip bob shared with her,
    # carol (in the same group) none; neither learns of the other clip
    seen = await used_in(api, "b-img", who("alice", "artists"))
    assert [c["id"] for c in seen["usedIn"]] == ["b-vid-shared"] and seen["usedByOtherOwners"] == 0
    carol = await used_in(api, "b-img", who("carol", "artists"))
    assert carol["usedIn"] == [] and carol["usedInTotal"] == 0 and carol["usedByOtherOwners"] == 0
    assert (await api.get("/api/assets/b-img/usage", headers=who("carol"))).status_code == 404
