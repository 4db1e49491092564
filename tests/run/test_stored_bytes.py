"""What usage and storage cost count is what the store holds (issue 45): after `contentgen run
--offline` of every kind, a re-evaluation (`assets evaluate`) and a LoraEvaluation (each claims an
evaluation number), the bytes of every object under each version's prefixes, summed in the store,
are the bytes `assets usage` counts for that version, and the record's total and monthly cost are
their sum. A LoRA's dataset images and captions and every version's result.json used to be left
out (a LoRA counted about 40 % low)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

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


def test_usage_counts_every_object_the_store_holds(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
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
