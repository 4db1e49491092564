"""A catalog and a store written by main before versions (commit 7d0216a; legacy/make.py says how
they were made): read as they are, then written on by this version, nothing of them is lost.

What they hold (as 0.1 left them): fox, an ImageGeneration run three times, whose record says
Failed with no image after its last run failed (the second run's images, over the first's, and its
result are still in the store, unversioned); talk, a transcript, unversioned; avatar, a LoRA whose
retraining failed (Failed, although v1 is usable); gone, deleted with `assets delete`; and two
records the operator wrote: queued, left Pending by a resource deleted while it waited, and
portrait, whose re-run failed in the cluster (its status kept the first run's image).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import yaml

from contentgen.catalog import Catalog, Filters, Page, resolve, to_record
from contentgen.catalog.downloads import choose_artifact, download_name, sign
from contentgen.catalog.embedded import EmbeddedCatalog
from contentgen.cli.main import main
from contentgen.store import ObjectStore, open_store
from tests.s3server import S3_ENV, use_endpoint

LEGACY = Path(__file__).parent / "legacy"
BUCKET = "contentgen-legacy"
STORE = f"s3://{BUCKET}/data"


@dataclass
class Legacy:
    catalog: Catalog
    store: ObjectStore
    catalog_dir: Path
    objects: dict[str, bytes]  # key -> bytes, as 0.1 left them

    def record(self, ref: str) -> dict[str, Any]:
        found = resolve(self.catalog, ref)
        assert found is not None, ref
        return found


@pytest.fixture
def legacy(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Legacy]:
    """The fixture's objects in a bucket of their own name (the catalog's URIs are s3://…), and a
    copy of its catalog."""
    use_endpoint(monkeypatch, s3_endpoint)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name=S3_ENV["AWS_DEFAULT_REGION"])
    client.create_bucket(Bucket=BUCKET)
    root = LEGACY / "store"
    objects = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    for key, data in objects.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=data)
    catalog_dir = tmp_path / "catalog"
    shutil.copytree(LEGACY / "catalog", catalog_dir)
    catalog = EmbeddedCatalog(catalog_dir)
    try:
        yield Legacy(catalog, open_store(STORE), catalog_dir, objects)
    finally:
        catalog.close()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=BUCKET, Key=item["Key"])
        client.delete_bucket(Bucket=BUCKET)


def names(catalog: Catalog, filters: Filters) -> list[str]:
    return sorted(d["name"] for d in catalog.find(filters, page=Page(100)).docs)


def test_the_fixture_is_what_0_1_wrote(legacy: Legacy) -> None:
    raw = {d["name"]: d for d in legacy.catalog.find_raw({})}
    assert set(raw) == {"fox", "talk", "avatar", "gone", "queued", "portrait"}
    assert all("schema" not in d and "latestRun" not in d for d in raw.values())
    assert raw["fox"]["status"] == "Failed" and raw["fox"]["images"] == []  # the bug of issue 17
    assert raw["avatar"]["status"] == "Failed" and raw["avatar"]["latestVersion"] == 1
    assert raw["queued"]["status"] == "Pending"


def test_records_before_versions_read_as_versions_and_a_latest_run(legacy: Legacy) -> None:
    avatar = to_record(legacy.record("default/avatar")).wire()
    assert avatar["status"] == "Succeeded" and avatar["latestVersion"] == 1
    assert (
        avatar["latestRun"]["phase"] == "Failed" and avatar["latestRun"]["error"]["reason"] == "InvalidInput"
    )
    assert [v["version"] for v in avatar["versions"]] == [1]
    assert avatar["versions"][0]["modelUri"].endswith("/v1/model.safetensors")

    talk = to_record(legacy.record("talk")).wire()  # a bare name finds it in namespace default
    (v1,) = talk["versions"]
    assert talk["status"] == "Succeeded" and v1["version"] == 1
    assert v1["transcript"]["textUri"] == f"{STORE}/transcripts/alice/{talk['id']}/transcript.txt"

    portrait = to_record(legacy.record("team-a/portrait")).wire()  # the cluster kept its first image
    assert portrait["status"] == "Succeeded" and portrait["latestRun"]["phase"] == "Failed"
    assert len(portrait["versions"][0]["images"]) == 1

    gone = to_record(legacy.record("default/gone")).wire()
    assert gone["status"] == "Deleted" and gone["deleted"]["outputsKept"] is False
    assert gone["versions"] == [] and [v["version"] for v in gone["deletedVersions"]] == [1]

    queued = to_record(legacy.record("team-a/queued")).wire()
    assert queued["status"] == "Pending" and queued["latestRun"]["phase"] == "Pending"


def test_filters_and_stats_mean_the_same_on_old_documents(legacy: Legacy) -> None:
    catalog = legacy.catalog
    assert names(catalog, Filters()) == ["avatar", "fox", "portrait", "queued", "talk"]
    assert names(catalog, Filters(status="Succeeded")) == ["avatar", "portrait", "talk"]
    assert names(catalog, Filters(status="Failed")) == ["fox"]  # nothing usable in its record
    assert names(catalog, Filters(run="Failed")) == ["avatar", "fox", "portrait"]
    assert names(catalog, Filters(run="Pending")) == ["queued"]
    assert names(catalog, Filters(status="Deleted")) == ["gone"]
    assert names(catalog, Filters(type="image-generation", model="flux-dev")) == ["fox", "portrait", "queued"]
    stats = catalog.stats("alice", 0.023)
    assert stats.by_status == {"Pending": 1, "Running": 0, "Succeeded": 3, "Failed": 1, "Interrupted": 0}
    assert stats.total_versions == 3
    assert stats.versions_by_type == {
        "lora-training": 1,
        "image-generation": 1,
        "transcription": 1,
        "lora-evaluation": 0,
        "video-generation": 0,
    }


def test_unversioned_objects_are_downloaded_as_version_1(legacy: Legacy) -> None:
    talk = legacy.record("default/talk")
    uri = choose_artifact(talk, version=1)
    assert download_name(talk, uri) == "talk-v1-transcript.txt"
    signed = sign(legacy.store, uri, 60, download_name=download_name(talk, uri))
    got = httpx.get(signed.url)
    assert got.content == legacy.objects[f"data/transcripts/alice/{talk['_id']}/transcript.txt"]
    assert 'filename="talk-v1-transcript.txt"' in got.headers["content-disposition"]


def test_reading_writes_nothing(legacy: Legacy) -> None:
    before = {d["_id"]: d for d in legacy.catalog.find_raw({})}
    for ref in ("default/avatar", "talk", "team-a/portrait", "default/gone"):
        to_record(legacy.record(ref))
    legacy.catalog.find(Filters(status="Succeeded"))
    legacy.catalog.stats(None, 0.023)
    assert {d["_id"]: d for d in legacy.catalog.find_raw({})} == before


def _manifest(tmp_path: Path, kind: str, name: str, spec: dict[str, Any]) -> str:
    path = tmp_path / f"{name}.yaml"
    doc = {"apiVersion": "contentgen.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_a_new_run_recovers_what_the_old_record_lost_and_overwrites_nothing(
    legacy: Legacy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    fox = {
        "owner": "alice",
        "prompt": "a red fox in the snow",
        "numImages": 2,
        "seed": 4,
        "provider": "offline",
    }
    run = ["run", "--store", STORE, "--catalog", str(legacy.catalog_dir)]
    assert main([*run, _manifest(tmp_path, "ImageGeneration", "fox", fox)]) == 0

    record = to_record(legacy.record("default/fox")).wire()
    # 0.1's second run (its images and result.json are in the store, unversioned) is version 1;
    # this run is version 2, under v2/
    assert [v["version"] for v in record["versions"]] == [1, 2]
    old, new = record["versions"]
    assert [i["seed"] for i in old["images"]] == [2, 2] and [i["seed"] for i in new["images"]] == [4, 4]
    assert all("/v2/" in i["uri"] for i in new["images"])
    assert all(f"/{record['id']}/image_" in i["uri"] for i in old["images"])
    assert record["status"] == "Succeeded" and record["latestRun"]["version"] == 2
    listed = legacy.catalog.find(Filters(type="image-generation", status="Succeeded"), page=Page(100))
    assert "fox" in [d["name"] for d in listed.docs]
    # every object 0.1 wrote is still there, byte for byte
    for key, data in legacy.objects.items():
        assert legacy.store.get_bytes(key.removeprefix("data/")) == data, key
