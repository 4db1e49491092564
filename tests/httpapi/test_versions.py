"""Deleting one version and pruning over HTTP: dry runs unless ?confirm=true, the caller's own
records only, and what goes is exactly that version's objects."""

from __future__ import annotations

import httpx
import pytest

from contentgen.catalog import Catalog
from contentgen.store import LocalStore
from tests.httpapi.conftest import auth

pytestmark = pytest.mark.asyncio
V1 = "loras/alice/a-lora-1/v1/model.safetensors"
V2 = "loras/alice/a-lora-1/v2/model.safetensors"


async def test_deleting_a_version_is_a_dry_run_until_confirmed(
    client: httpx.AsyncClient, store: LocalStore, catalog: Catalog
) -> None:
    plan = await client.delete("/api/assets/default/jesse-avatar/versions/1", headers=auth("alice"))
    assert plan.status_code == 200, plan.text
    body = plan.json()
    assert body == {
        "id": "a-lora-1",
        "name": "default/jesse-avatar",
        "versions": [1],
        "kept": [2],
        "objects": [V1],
        "usedBy": {},
        "dryRun": True,
        "removed": 0,
    }
    assert store.exists(V1)
    done = await client.delete("/api/assets/a-lora-1/versions/1?confirm=true", headers=auth("alice"))
    assert done.json()["removed"] == 1 and done.json()["dryRun"] is False
    assert not store.exists(V1) and store.exists(V2)
    record = (await client.get("/api/jobs/a-lora-1", headers=auth("alice"))).json()
    assert [v["version"] for v in record["versions"]] == [2]
    assert [(v["version"], v["by"]) for v in record["deletedVersions"]] == [(1, "api")]
    again = await client.delete("/api/assets/a-lora-1/versions/1?confirm=true", headers=auth("alice"))
    assert again.status_code == 410 and again.json()["error"]["code"] == "deleted"
    missing = await client.delete("/api/assets/a-lora-1/versions/9", headers=auth("alice"))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "version_not_found"
    gone = await client.get("/api/assets/a-lora-1/download?version=1", headers=auth("alice"))
    assert gone.status_code == 410


async def test_prune_keeps_the_newest(client: httpx.AsyncClient, store: LocalStore) -> None:
    plan = (await client.post("/api/assets/a-lora-1/prune?keep=1", headers=auth("alice"))).json()
    assert plan["versions"] == [1] and plan["kept"] == [2] and plan["dryRun"] is True
    assert store.exists(V1)
    done = (await client.post("/api/assets/a-lora-1/prune?keep=1&confirm=true", headers=auth("alice"))).json()
    assert done["removed"] == 1 and not store.exists(V1) and store.exists(V2)
    bad = await client.post("/api/assets/a-lora-1/prune?keep=0", headers=auth("alice"))
    assert bad.status_code == 400 and bad.json()["error"]["message"].startswith("keep:")


async def test_only_the_owner_or_an_admin_removes_versions(
    client: httpx.AsyncClient, store: LocalStore
) -> None:
    theirs = await client.delete("/api/assets/a-lora-1/versions/1?confirm=true", headers=auth("bob"))
    assert theirs.status_code == 404 and store.exists(V1)
    admin = await client.delete("/api/assets/a-lora-1/versions/1?confirm=true", headers=auth("ops"))
    assert admin.status_code == 200 and not store.exists(V1)


async def test_an_older_versions_settings_come_from_its_result_json(
    client: httpx.AsyncClient, store: LocalStore, catalog: Catalog
) -> None:
    """A record keeps the spec snapshots of its newest 20 versions only (catalog/bounds.py): the
    manifest of an older version is read from that version's result.json in the store, and one
    whose result.json is gone is a 404 that says so, never the current spec passed off as its."""
    import yaml

    from contentgen.api import RunResult
    from contentgen.store import keys
    from tests.catalog.factory import grown

    doc = grown("ImageGeneration", 25)
    uid = doc["_id"]
    assert doc["versions"][0]["version"] == 1 and doc["versions"][0]["spec"] is None  # past the bound
    ran = grown("ImageGeneration", 1)["versions"][0]["spec"]  # what v1 ran, as its run stored it
    assert ran["prompt"] != doc["spec"]["prompt"]
    catalog.upsert(doc)
    result = RunResult(kind="ImageGeneration", provider="offline", uid=uid, version=1, spec=ran)
    key = keys.result_key("image-generation", "alice", uid, 1)
    store.put_once_bytes(key, result.model_dump_json(by_alias=True).encode(), "application/json")

    got = await client.get(f"/api/assets/{uid}/manifest?version=1", headers=auth("alice"))
    assert got.status_code == 200, got.text
    manifest = yaml.safe_load(got.text)
    assert manifest["spec"]["prompt"] == ran["prompt"] and got.text.startswith("# version 1 of")
    gone = await client.get(f"/api/assets/{uid}/manifest?version=2", headers=auth("alice"))
    assert gone.status_code == 404, gone.text
    assert (
        "v2 ran are no longer in its record" in gone.text and "result.json is not in the store" in gone.text
    )
    newest = await client.get(f"/api/assets/{uid}/manifest?version=25", headers=auth("alice"))
    assert yaml.safe_load(newest.text)["spec"]["prompt"] == doc["versions"][-1]["spec"]["prompt"]
