"""A long-lived resource's status stays small (api/versions.py): it is one object in etcd, which
refuses one over 1.5 MiB, and the operator writes it on every change. After hundreds of runs, each
as large as the API lets it be, the status keeps the newest 100 versions (olderVersions counts the
rest), a LoRA version older than the newest 10 without its likeness report, and the catalog record
built from it still holds every version whole."""

from __future__ import annotations

import json

import pytest

from contentgen.api import (
    KINDS,
)
from contentgen.api.versions import DETAILED_STATUS_VERSIONS, MAX_STATUS_VERSIONS
from contentgen.controller.decide import World, decide
from contentgen.controller.observe import lora_state
from tests.harness.controller import NOW, pinned, resource
from tests.harness.grown_status import grown_status

ETCD_LIMIT = 1536 * 1024  # etcd's default --max-request-bytes
RUNS = 250


@pytest.mark.parametrize("kind", ["LoraTraining", "ImageGeneration", "Transcription", "VideoGeneration"])
def test_a_long_lived_status_keeps_the_newest_versions_and_the_record_keeps_them_all(kind: str) -> None:
    status, doc = grown_status(kind, RUNS)
    size = len(json.dumps(status).encode())
    assert size < ETCD_LIMIT / 3, f"{kind}'s status is {size} bytes after {RUNS} runs"
    numbers = [v["version"] for v in status["versions"]]
    assert numbers == list(range(RUNS - MAX_STATUS_VERSIONS + 1, RUNS + 1))
    assert status["olderVersions"] == RUNS - MAX_STATUS_VERSIONS
    assert status["latestVersion"] == RUNS
    assert [v["version"] for v in doc["versions"]] == list(range(1, RUNS + 1))  # every one, in the record
    if kind == "LoraTraining":
        detailed = [v["version"] for v in status["versions"] if "likeness" in v]
        assert detailed == list(range(RUNS - DETAILED_STATUS_VERSIONS + 1, RUNS + 1))
        assert len(status["likeness"]["checkpoints"]) == 20  # the newest version's report, whole
        # the record keeps each version's report, whether or not the status still shows it
        assert all(v["likeness"]["verdict"] == "poor" for v in doc["versions"])
        assert all(v["modelUri"] for v in status["versions"])  # what a pinned loraRef resolves
    if kind == "VideoGeneration":
        detailed = [v["version"] for v in status["versions"] if "samples" in v["video"]["likeness"]]
        assert detailed == list(range(RUNS - DETAILED_STATUS_VERSIONS + 1, RUNS + 1))
        assert all(v["video"]["likeness"]["verdict"] == "poor" for v in status["versions"])  # kept
        assert all(len(v["video"]["likeness"]["samples"]) == 32 for v in doc["versions"])  # whole there
        assert KINDS["VideoGeneration"].status.model_validate_json(json.dumps(status))  # the schema takes it


def test_unbounded_the_status_would_pass_etcds_limit() -> None:
    """What the bound is for: the same LoRA's versions kept whole pass 1.5 MiB within 250 runs."""
    status, _ = grown_status("LoraTraining", 1)
    whole = json.dumps(status["versions"][0]).encode()
    assert len(whole) * RUNS > ETCD_LIMIT


def test_a_pinned_version_the_status_no_longer_lists_says_how_to_use_it() -> None:
    status, _ = grown_status("LoraTraining", MAX_STATUS_VERSIONS + 5)
    status["phase"] = "Succeeded"
    lora = lora_state(
        {"metadata": {"name": "style", "uid": "lora-uid"}, "spec": {"owner": "alice"}, "status": status}
    )
    assert lora.older_versions == 5
    res = resource("ImageGeneration", model="flux-lora", loras=pinned(3))
    d = decide(res, World(now=NOW, loras={"style": lora}))
    assert d.job is None and d.waiting == "LoraVersionNotFound"
    message = d.status["message"]
    assert "no usable version 3" in message and "versions before v6 are no longer listed" in message
    assert "contentgen assets get style" in message
    kept = decide(
        resource("ImageGeneration", model="flux-lora", loras=pinned(6)), World(now=NOW, loras={"style": lora})
    )
    assert kept.job is not None  # the oldest version it lists still resolves
