"""Removing versions only when asked (catalog/pruning.py): a plan first (what goes, what it was
used for), then the objects, then the record; other versions, and other records, untouched."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from contentgen.api import ResolvedLora
from contentgen.catalog import Catalog, Filters, pruning, to_record
from contentgen.catalog.downloads import AssetsDeleted, NoSuchVersion
from contentgen.store import LocalStore
from tests.catalog.factory import T0, image_doc, lora_doc

UID = "lora-0001"


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def _fill(catalog: Catalog, store: LocalStore) -> None:
    catalog.upsert(lora_doc(UID, name="avatar", versions=3, uri_of=store.uri))
    for n in (1, 2, 3):
        for key in (f"loras/alice/{UID}/v{n}/model.safetensors", f"datasets/alice/{UID}/v{n}/dataset.zip"):
            store.put_bytes(key, f"v{n}".encode(), "application/octet-stream")
    store.put_bytes(f"temp/{UID}/checkpoints/lora-v3.json", b"{}", "application/json")
    used = ResolvedLora(uri=store.uri(f"loras/alice/{UID}/v1/model.safetensors"), uid=UID, version=1)
    catalog.upsert(image_doc("img-1", loras=(used,), model="flux-lora", created=T0 + timedelta(hours=1)))


def test_prune_is_a_plan_until_it_is_carried_out(catalog: Catalog, store: LocalStore) -> None:
    _fill(catalog, store)
    plan = pruning.plan_prune(catalog, store, catalog.get(UID), keep=1)  # type: ignore[arg-type]
    assert plan.versions == [1, 2]
    assert plan.objects == [
        f"datasets/alice/{UID}/v1/dataset.zip",
        f"datasets/alice/{UID}/v2/dataset.zip",
        f"loras/alice/{UID}/v1/model.safetensors",
        f"loras/alice/{UID}/v2/model.safetensors",
    ]
    assert plan.used_by == {1: 1}  # one image generation was made with v1
    assert plan.summary()["kept"] == [3] and plan.summary()["usedBy"] == {"v1": 1}
    assert store.exists(f"loras/alice/{UID}/v1/model.safetensors")  # nothing happened yet

    assert pruning.erase(store, plan) == 4
    pruning.record(catalog, plan, when=T0 + timedelta(days=1), by="cli")
    record = to_record(catalog.get(UID)).wire()  # type: ignore[arg-type]
    assert [v["version"] for v in record["versions"]] == [3] and record["latestVersion"] == 3
    assert [(v["version"], v["by"]) for v in record["deletedVersions"]] == [(1, "cli"), (2, "cli")]
    assert record["status"] == "Succeeded"
    assert store.exists(f"loras/alice/{UID}/v3/model.safetensors")
    assert store.exists(f"temp/{UID}/checkpoints/lora-v3.json")
    assert catalog.find(Filters(type="image-generation")).total == 1  # what was made with v1 stays


def test_prune_keeps_at_least_one(catalog: Catalog, store: LocalStore) -> None:
    _fill(catalog, store)
    with pytest.raises(ValueError, match="keep must be at least 1"):
        pruning.plan_prune(catalog, store, catalog.get(UID), keep=0)  # type: ignore[arg-type]
    assert pruning.plan_prune(catalog, store, catalog.get(UID), keep=5).versions == []  # type: ignore[arg-type]


def test_deleting_one_version(catalog: Catalog, store: LocalStore) -> None:
    _fill(catalog, store)
    plan = pruning.plan_versions(catalog, store, catalog.get(UID), [2])  # type: ignore[arg-type]
    assert plan.objects == [f"datasets/alice/{UID}/v2/dataset.zip", f"loras/alice/{UID}/v2/model.safetensors"]
    pruning.erase(store, plan)
    pruning.record(catalog, plan, when=T0, by="api")
    doc = catalog.get(UID)
    assert doc is not None and [v["version"] for v in doc["versions"]] == [1, 3]
    with pytest.raises(AssetsDeleted, match="version 2 of lora-0001 was deleted"):
        pruning.plan_versions(catalog, store, doc, [2])
    with pytest.raises(NoSuchVersion, match=r"no version 9 \(usable versions: v1, v3\)"):
        pruning.plan_versions(catalog, store, doc, [9])


def test_a_version_before_versions_goes_with_the_objects_it_names(
    catalog: Catalog, store: LocalStore
) -> None:
    """Version 1 of an ImageGeneration from before versions is unversioned: its own objects go,
    not the root they share with later versions."""
    legacy = {
        "uri": store.uri("generated-images/alice/img/image_1.png"),
        "width": 8,
        "height": 8,
        "sizeBytes": 3,
        "sha256": "0" * 64,
        "thumbnailUri": store.uri("generated-images/alice/img/thumbs/image_1.jpg"),
    }
    old = {
        "_id": "img", "kind": "ImageGeneration", "type": "image-generation", "name": "fox",
        "namespace": "default", "owner": "alice", "status": "Succeeded", "images": [legacy],
        "artifacts": [], "createdAt": T0,
    }  # fmt: skip
    catalog.upsert(old)
    catalog.upsert(image_doc("img", name="fox", version=2, previous=catalog.get("img"), uri_of=store.uri))
    for key in (
        "generated-images/alice/img/image_1.png",
        "generated-images/alice/img/thumbs/image_1.jpg",
        "generated-images/alice/img/result.json",
        "generated-images/alice/img/v2/image_1.png",
    ):
        store.put_bytes(key, b"x", "application/octet-stream")
    plan = pruning.plan_versions(catalog, store, catalog.get("img"), [1])  # type: ignore[arg-type]
    assert plan.objects == [
        "generated-images/alice/img/image_1.png",
        "generated-images/alice/img/result.json",
        "generated-images/alice/img/thumbs/image_1.jpg",
    ]


def test_deleting_a_whole_record(catalog: Catalog, store: LocalStore) -> None:
    _fill(catalog, store)
    plan = pruning.plan_record(catalog, store, catalog.get(UID))  # type: ignore[arg-type]
    assert plan.whole and len(plan.objects) == 7  # three versions' two objects, and the checkpoint
    assert pruning.erase(store, plan) == 7
    pruning.record(catalog, plan, when=T0, by="cli")
    record = to_record(catalog.get(UID)).wire()  # type: ignore[arg-type]
    assert record["status"] == "Deleted" and record["deleted"]["outputsKept"] is False
    assert [v["version"] for v in record["deletedVersions"]] == [1, 2, 3]
