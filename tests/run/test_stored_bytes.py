"""What usage and storage cost count is what the store holds (issue 45): after `contentgen run
--offline` of every kind, a re-evaluation (`assets evaluate`) and a LoraEvaluation (each claims an
evaluation number), the bytes of every object under each version's prefixes, summed in the store,
are the bytes `assets usage` counts for that version, and the record's total and monthly cost are
their sum. A LoRA's dataset images and captions and every version's result.json used to be left
out (a LoRA counted about 40 % low)."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from contentgen.api import KINDS
from contentgen.catalog import open_catalog
from contentgen.catalog.promotions import with_promotion
from contentgen.catalog.queries import BYTES_PER_GB
from contentgen.catalog.usage import usage_of
from contentgen.cli.main import main
from contentgen.store import DEFAULT_LOCAL_STORE, keys, open_store
from contentgen.store.results import read_result, result_document
from tests.conftest import EXAMPLES

SAMPLE = EXAMPLES / "media" / "sample.mp4"
PRICE = 0.023


def stored_bytes(doc: dict[str, Any], version: int) -> dict[str, int]:
    """Every object under the version's prefixes in the store, with its size."""
    store = open_store(DEFAULT_LOCAL_STORE)
    roots = keys.version_roots(KINDS[doc["kind"]].catalog_type, doc["owner"], str(doc["_id"]), version)
    return {info.key: info.size_bytes for root in roots for info in store.list(root)}


def run_every_kind(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (
        ["--source", str(SAMPLE), str(EXAMPLES / "loratraining.yaml")],
        [str(EXAMPLES / "imagegeneration-lora.yaml")],
        [str(EXAMPLES / "videogeneration.yaml")],
        ["--source", str(SAMPLE), str(EXAMPLES / "transcription.yaml")],
        [str(EXAMPLES / "loraevaluation.yaml")],
    ):
        assert main(["run", "--offline", *args]) == 0, capsys.readouterr().err
    assert (
        main(["assets", "evaluate", "demo-avatar", "--version", "1", "--provider", "offline", "--yes"]) == 0
    )
    capsys.readouterr()

    catalog = open_catalog()
    docs = catalog.find_raw({})
    assert sorted(d["kind"] for d in docs) == sorted(KINDS)
    store = open_store(DEFAULT_LOCAL_STORE)
    for doc in docs:
        usage = usage_of(catalog, doc, None, PRICE, owner_view=True)
        total = 0
        for counted in usage.versions:
            held = stored_bytes(doc, counted.version)
            listed = {store.key_of(a["uri"]) for v in doc["versions"] for a in v["artifacts"]}
            assert sorted(set(held) - listed) == [], doc["kind"]
            assert counted.bytes == sum(held.values()), doc["kind"]
            total += counted.bytes
            # the result document as the catalog counts it is the one stored, read back too
            ctype = KINDS[doc["kind"]].catalog_type
            key = keys.result_key(ctype, doc["owner"], str(doc["_id"]), counted.version)
            stored = read_result(store, key)
            assert stored is not None and result_document(stored) == store.get_bytes(key)
        assert usage.total_bytes == total
        assert usage.monthly_storage_usd == round(total / BYTES_PER_GB * PRICE, 6)
    lora = next(d for d in docs if d["kind"] == "LoraTraining")
    held = stored_bytes(lora, 1)
    assert any("/images/" in k for k in held) and any("/captions/" in k for k in held)
    assert sum(1 for k in held if k.endswith("/claim.json")) == 2  # the LoraEvaluation's, the re-evaluation's


def test_a_promotions_stored_object_is_counted_with_its_version() -> None:
    doc = {
        "_id": "u1",
        "kind": "LoraTraining",
        "name": "a",
        "namespace": "default",
        "owner": "alice",
        "versions": [
            {
                "version": 1,
                "artifacts": [{"uri": "file:///s/loras/alice/u1/v1/model.safetensors", "sizeBytes": 800}],
            }
        ],
    }
    stored = {
        "uri": "file:///s/loras/alice/u1/v1/promotions/p1.json",
        "sizeBytes": 420,
        "contentType": "application/json",
    }
    entry = {"promotion": 1, "version": 1, "step": 500, "modelUri": "file:///s/m", "object": stored}
    new = with_promotion(doc, entry, now=datetime.now(UTC))
    assert new is not None and new["totalBytes"] == 1220
    assert new["versions"][0]["artifacts"][-1] == stored
    assert "object" not in json.dumps(new["versions"][0]["promotions"])
    assert entry["object"] == stored  # the caller's entry is left as it was (a retried write reuses it)


def test_a_collection_archive_holds_every_file_and_the_current_reports(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every member's latest version whole: the LoRA's two likeness.json (its run's and the
    re-evaluation's) and both contact sheets (the sheet and its thumbnail) kept under their paths,
    two members of one namespace/name (a LoRA and a picture both called demo-avatar) in folders of
    their own; as many files as announced, each the stored object's bytes, and a manifest naming
    the version's current likeness report."""
    run_every_kind(capsys)
    picture = yaml.safe_load((EXAMPLES / "imagegeneration.yaml").read_text())
    picture["metadata"]["name"] = "demo-avatar"
    (workspace / "same-name.yaml").write_text(yaml.safe_dump(picture))
    assert main(["run", "--offline", str(workspace / "same-name.yaml")]) == 0
    assert main(["collections", "create", "all", "--owner", "demo-user", "-o", "json"]) == 0
    catalog = open_catalog()
    docs = catalog.find_raw({})
    for doc in docs:
        assert main(["collections", "add", "all", str(doc["_id"]), "--owner", "demo-user", "-o", "json"]) == 0
    capsys.readouterr()
    assert main(["collections", "archive", "all", "--owner", "demo-user", "--out", "all.zip"]) == 0
    announced = capsys.readouterr().err
    zipped = zipfile.ZipFile(workspace / "all.zip")
    names = zipped.namelist()
    assert len(names) == len(set(names))
    files = [n for n in names if n != "manifest.json"]
    assert f"{len(files)} files of {len(docs)} members" in announced
    manifest = json.loads(zipped.read("manifest.json"))
    assert manifest["files"] == len(files) and manifest["missing"] == []
    assert sorted(f["name"] for m in manifest["members"] for f in m["files"]) == sorted(files)
    assert len({m["folder"] for m in manifest["members"]}) == len(docs)

    store = open_store(DEFAULT_LOCAL_STORE)
    for member in manifest["members"]:
        doc = next(d for d in docs if d["_id"] == member["id"])
        version = doc["versions"][-1]
        held = stored_bytes(doc, version["version"])
        inside = {store.key_of(f["uri"]): f["name"] for f in member["files"]}
        assert sorted(held) == sorted(k for k in inside if k in held), doc["kind"]  # every object
        for key, name in inside.items():
            assert zipped.read(name) == store.get_bytes(key), name
    lora = next(m for m in manifest["members"] if m["kind"] == "LoraTraining")
    folder = lora["folder"]
    for name in ("likeness.json", "likeness/e1/likeness.json", "dataset/contact-sheet.jpg"):
        assert folder + name in names, name
    record = next(d for d in docs if d["_id"] == lora["id"])["versions"][-1]["likeness"]
    report = lora["likeness"]["report"]
    assert lora["likeness"]["verdict"] == record["verdict"]
    assert zipped.read(report) == store.get_bytes(store.key_of(record["reportUri"]))
