"""The record format shared by `contentgen assets -o json` and the HTTP API."""

from __future__ import annotations

import json
from datetime import timedelta

from contentgen.catalog import (
    Catalog,
    ImageGenerationRecord,
    LoraTrainingRecord,
    TranscriptionRecord,
    record_json,
    to_record,
)
from contentgen.catalog.dates import from_storage, to_storage
from tests.catalog.factory import T0, image_doc, lora_doc, transcript_doc

COMMON = {
    "id", "type", "kind", "name", "namespace", "owner", "status", "progress", "stage", "message", "error",
    "provider", "placeholder", "tags", "description", "createdAt", "updatedAt", "completedAt", "deletedAt",
    "artifacts", "totalBytes", "cost",
}  # fmt: skip


def test_a_lora_record_has_its_latest_model_and_versions() -> None:
    record = record_json(lora_doc("u1", versions=2, tags=("x",), description="d"))
    assert set(record) == COMMON | {
        "triggerWord",
        "latestVersion",
        "latestModelUri",
        "versions",
        "sourceUrl",
        "dataset",
    }
    assert record["dataset"] is None  # counts of the latest run, once one recorded them
    assert record["id"] == "u1" and record["type"] == "lora-training" and record["kind"] == "LoraTraining"
    assert record["latestVersion"] == 2
    assert record["latestModelUri"] == "s3://catalog-tests/loras/alice/u1/v2/model.safetensors"
    assert record["triggerWord"] == "dmavatar"
    assert [v["version"] for v in record["versions"]] == [1, 2]
    assert record["versions"][0]["createdAt"] == "2025-03-01T12:10:00Z"
    assert record["createdAt"] == "2025-03-01T12:00:00Z"
    assert record["completedAt"] == "2025-03-01T12:10:00Z"
    assert record["deletedAt"] is None and record["error"] is None
    assert record["artifacts"][0] == {
        "uri": "s3://catalog-tests/loras/alice/u1/v1/model.safetensors",
        "sizeBytes": 1000,
        "contentType": "application/octet-stream",
    }
    assert isinstance(to_record(lora_doc("u1")), LoraTrainingRecord)


def test_an_image_record_has_prompt_model_and_images() -> None:
    record = record_json(image_doc("u2", prompt="a fox", model="flux-pro", images=2))
    assert set(record) == COMMON | {"prompt", "model", "images", "loras"}
    assert record["prompt"] == "a fox" and record["model"] == "flux-pro"
    assert [i["uri"].rsplit("/", 1)[-1] for i in record["images"]] == ["image_1.png", "image_2.png"]
    assert record["images"][0]["width"] == 64 and record["images"][0]["contentType"] == "image/png"
    assert isinstance(to_record(image_doc("u2")), ImageGenerationRecord)


def test_a_transcript_record_has_counts_and_uris_but_not_the_text() -> None:
    record = record_json(transcript_doc("u3", text="one two three"))
    assert set(record) == COMMON | {
        "wordCount",
        "durationSeconds",
        "speakers",
        "languageCode",
        "textUri",
        "jsonUri",
        "sourceUrl",
    }
    assert record["wordCount"] == 3 and record["durationSeconds"] == 61.5 and record["speakers"] == 2
    assert record["textUri"].endswith("/transcripts/alice/u3/transcript.txt")
    assert record["jsonUri"].endswith("/transcripts/alice/u3/transcript.json")
    assert isinstance(to_record(transcript_doc("u3")), TranscriptionRecord)


def test_a_failed_record_carries_its_error() -> None:
    record = record_json(image_doc("u4", phase="Failed"))
    assert record["status"] == "Failed"
    assert record["error"] == {"reason": "Failed", "message": ""}
    assert record["images"] == [] and record["artifacts"] == []


def test_records_of_stored_documents_are_json(catalog: Catalog) -> None:
    catalog.upsert(lora_doc("u1"))
    catalog.mark_deleted("u1", T0 + timedelta(days=2))
    stored = catalog.get("u1")
    assert stored is not None
    record = record_json(stored)
    assert record["status"] == "Deleted" and record["deletedAt"] == "2025-03-03T12:00:00Z"
    json.dumps(record)


def test_dates_round_trip_through_storage_form() -> None:
    doc = {"a": T0, "b": [{"c": T0 + timedelta(microseconds=1999)}], "d": "text"}
    stored = to_storage(doc)
    assert stored["a"].tzinfo is None and stored["b"][0]["c"].microsecond == 1000
    assert from_storage(stored) == {"a": T0, "b": [{"c": T0 + timedelta(microseconds=1000)}], "d": "text"}
