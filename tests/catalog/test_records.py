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
    "id", "type", "kind", "name", "namespace", "owner", "status", "latestRun", "latestVersion", "versions",
    "provider", "placeholder", "tags", "description", "createdAt", "updatedAt", "completedAt", "deleted",
    "deletedAt", "runs", "olderRuns", "deletedVersions", "olderDeletedVersions", "artifacts", "totalBytes",
    "cost", "shares",
}  # fmt: skip


def test_a_lora_record_has_its_latest_model_and_versions() -> None:
    record = record_json(lora_doc("u1", versions=2, tags=("x",), description="d"))
    assert set(record) == COMMON | {"triggerWord", "latestModelUri", "sourceUrl", "dataset"}
    assert record["dataset"] is None  # counts of the latest run, once one recorded them
    assert record["id"] == "u1" and record["type"] == "lora-training" and record["kind"] == "LoraTraining"
    assert record["latestVersion"] == 2
    assert record["latestModelUri"] == "s3://catalog-tests/loras/alice/u1/v2/model.safetensors"
    assert record["triggerWord"] == "dmavatar"
    assert [v["version"] for v in record["versions"]] == [1, 2]
    assert record["versions"][0]["createdAt"] == "2025-03-01T12:10:00Z"
    assert record["createdAt"] == "2025-03-01T12:00:00Z"
    assert record["completedAt"] == "2025-03-01T12:10:00Z"
    assert record["deletedAt"] is None and record["deleted"] is None
    assert record["latestRun"]["phase"] == "Succeeded" and record["latestRun"]["error"] is None
    assert record["latestRun"]["version"] == 2 and record["runs"][-1]["version"] == 2
    assert record["versions"][1]["spec"]["triggerWord"] == "dmavatar"  # the snapshot it ran
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
    assert [i["uri"].rsplit("/", 2)[-2:] for i in record["images"]] == [
        ["v1", "image_1.png"],
        ["v1", "image_2.png"],
    ]
    (version,) = record["versions"]
    assert version["version"] == 1 and version["prompt"] == "a fox" and version["images"] == record["images"]
    assert len(version["artifacts"]) == 2
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
    assert "transcriptText" not in record and "transcriptText" not in record["versions"][0]
    assert record["wordCount"] == 3 and record["durationSeconds"] == 61.5 and record["speakers"] == 2
    assert record["textUri"].endswith("/transcripts/alice/u3/v1/transcript.txt")
    assert record["jsonUri"].endswith("/transcripts/alice/u3/v1/transcript.json")
    assert isinstance(to_record(transcript_doc("u3")), TranscriptionRecord)


def test_a_failed_record_carries_its_error() -> None:
    record = record_json(image_doc("u4", phase="Failed"))
    assert record["status"] == "Failed" and record["latestRun"]["phase"] == "Failed"
    assert record["latestRun"]["error"] == {"reason": "Failed", "message": ""}
    assert record["images"] == [] and record["artifacts"] == [] and record["versions"] == []


def test_a_failed_rerun_keeps_the_versions_usable() -> None:
    """The latest run's failure is its own; the record stays Succeeded with v1 (issue 17)."""
    first = image_doc("u5", prompt="a fox", seed=1)
    failed = image_doc("u5", prompt="a fox", seed=2, phase="Failed", version=2, previous=first)
    record = record_json(failed)
    assert record["status"] == "Succeeded" and record["latestVersion"] == 1
    assert record["latestRun"]["phase"] == "Failed" and record["latestRun"]["version"] == 2
    assert [v["version"] for v in record["versions"]] == [1]
    assert len(record["images"]) == 2 and record["images"] == record["versions"][0]["images"]
    assert [(r["version"], r["phase"]) for r in record["runs"]] == [(1, "Succeeded"), (2, "Failed")]


def test_records_of_stored_documents_are_json(catalog: Catalog) -> None:
    catalog.upsert(lora_doc("u1"))
    catalog.mark_deleted("u1", T0 + timedelta(days=2))
    stored = catalog.get("u1")
    assert stored is not None
    record = record_json(stored)
    assert record["status"] == "Deleted" and record["deletedAt"] == "2025-03-03T12:00:00Z"
    assert record["deleted"] == {
        "at": "2025-03-03T12:00:00Z",
        "policy": "Delete",
        "outputsKept": False,
        "by": "",
    }
    assert record["versions"] == [] and [v["version"] for v in record["deletedVersions"]] == [1]
    json.dumps(record)


def test_dates_round_trip_through_storage_form() -> None:
    doc = {"a": T0, "b": [{"c": T0 + timedelta(microseconds=1999)}], "d": "text"}
    stored = to_storage(doc)
    assert stored["a"].tzinfo is None and stored["b"][0]["c"].microsecond == 1000
    assert from_storage(stored) == {"a": T0, "b": [{"c": T0 + timedelta(microseconds=1000)}], "d": "text"}
