"""A long-lived resource's status stays small (api/versions.py): it is one object in etcd, which
refuses one over 1.5 MiB, and the operator writes it on every change. After hundreds of runs, each
as large as the API lets it be, the status keeps the newest 100 versions (olderVersions counts the
rest), a LoRA version older than the newest 10 without its likeness report, and the catalog record
built from it still holds every version whole."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from contentgen.api import (
    KINDS,
    Artifact,
    GeneratedImage,
    GeneratedVideo,
    LikenessSample,
    LoraTrainingSpec,
    LoraVersion,
    ResolvedImage,
    ResolvedLora,
    RunResult,
    TranscriptOutput,
    VideoLikeness,
)
from contentgen.api.versions import DETAILED_STATUS_VERSIONS, MAX_STATUS_VERSIONS
from contentgen.catalog import ResourceState, catalog_document
from contentgen.controller.decide import World, decide
from contentgen.controller.observe import lora_state
from tests.catalog.factory import T0, _longest_likeness, _spec, s3_uri, sha
from tests.harness.controller import NOW, pinned, resource

ETCD_LIMIT = 1536 * 1024  # etcd's default --max-request-bytes
RUNS = 250


def _result(kind: str, uid: str, n: int) -> RunResult:
    """Run n's result, as large as the API lets a run's outputs be."""
    finished = T0 + timedelta(hours=n)
    if kind == "LoraTraining":
        root = f"loras/alice/{uid}/v{n}/"
        lora = LoraVersion(
            version=n,
            model_uri=s3_uri(root + "model.safetensors"),
            final_model_uri=s3_uri(root + "checkpoints/step-010000.safetensors"),
            chosen_step=5000,
            config_uri=s3_uri(root + "config.json"),
            size_bytes=10**8,
            sha256=sha(root),
            dataset_uri=s3_uri(f"datasets/alice/{uid}/v{n}/dataset.zip"),
            contact_sheet_uri=s3_uri(f"datasets/alice/{uid}/v{n}/contact-sheet.jpg"),
            frames=40,
            provider="cluster",
            trigger_word="dmavatar",
            steps=10000,
            generation=n,
            created_at=finished,
            likeness=_longest_likeness(uid, n),
        )
        return RunResult(
            kind=kind, provider="cluster", lora=lora, version=n, generation=n, finished_at=finished
        )
    if kind == "ImageGeneration":
        root = f"generated-images/alice/{uid}/v{n}/"
        images = [
            GeneratedImage(
                uri=s3_uri(f"{root}image_{i}.png"),
                width=1024,
                height=768,
                size_bytes=10**6,
                sha256=sha(f"{root}{i}"),
                seed=n,
                thumbnail_uri=s3_uri(f"{root}thumbs/image_{i}.jpg"),
            )
            for i in range(1, 5)
        ]
        loras = [
            ResolvedLora(
                uri=s3_uri(f"loras/alice/lora-{i}/v{n}/model.safetensors"), uid=f"lora-{i}", version=n
            )
            for i in range(5)
        ]
        return RunResult(
            kind=kind,
            provider="fal",
            images=images,
            loras=loras,
            version=n,
            generation=n,
            finished_at=finished,
            artifacts=[Artifact(uri=i.uri, size_bytes=i.size_bytes, sha256=i.sha256) for i in images],
        )
    if kind == "VideoGeneration":
        root = f"generated-videos/alice/{uid}/v{n}/"
        loras = [
            ResolvedLora(
                uri=s3_uri(f"loras/alice/lora-{i}/v{n}/model.safetensors"),
                name=f"lora-{i}",
                uid=f"lora-{i}",
                version=n,
            )
            for i in range(8)
        ]
        likeness = VideoLikeness(
            verdict="poor",
            reasons=["r" * 400] * 8,
            median=0.5,
            lowest=0.1,
            lowest_at_seconds=9.5,
            drift=0.4,
            percent=80.0,
            upper_bound=0.66,
            threshold=0.313,
            samples=[LikenessSample(time_seconds=i / 3, score=0.5, faces=2) for i in range(32)],
            lora=loras[0],
        )
        video = GeneratedVideo(
            uri=s3_uri(root + "video.mp4"),
            size_bytes=10**8,
            sha256=sha(root),
            duration_seconds=10.0,
            frames=161,
            fps=16,
            width=1280,
            height=720,
            seed=n,
            poster_uri=s3_uri(root + "poster.jpg"),
            thumbnail_uri=s3_uri(root + "thumbs/poster.jpg"),
            strip_uri=s3_uri(root + "strip.jpg"),
            likeness=likeness,
        )
        picture = ResolvedImage(
            uri=s3_uri(f"generated-images/alice/img/v{n}/image_1.png"),
            name="portrait",
            uid="img",
            version=n,
            image=1,
            loras=loras,
        )
        return RunResult(
            kind=kind,
            provider="fal",
            video=video,
            image=picture,
            loras=loras,
            version=n,
            generation=n,
            finished_at=finished,
        )
    root = f"transcripts/alice/{uid}/v{n}/"
    transcript = TranscriptOutput(
        json_uri=s3_uri(root + "transcript.json"),
        text_uri=s3_uri(root + "transcript.txt"),
        word_count=3000,
        duration_seconds=1200.0,
        speakers=4,
        language_code="en",
        provider="assemblyai",
    )
    return RunResult(
        kind=kind,
        provider="assemblyai",
        transcript=transcript,
        transcript_text="words " * 3000,
        version=n,
        generation=n,
        finished_at=finished,
    )


def _grown(kind: str, runs: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The status after `runs` runs, each merged into it as the operator merges a run's result, and
    the catalog record written after each of them."""
    uid = f"long-lived-{kind}"
    spec = _spec(
        LoraTrainingSpec, {"owner": "alice", "source": {"url": "https://e.com/v.mp4"}, "triggerWord": "x"}
    )
    status: dict[str, Any] = {}
    doc: dict[str, Any] | None = None
    for n in range(1, runs + 1):
        result = _result(kind, uid, n)
        status.update(phase="Succeeded", runVersion=n, observedGeneration=n)
        result.merge_outputs(status)
        state = ResourceState(
            kind=kind,
            name="long-lived",
            namespace="default",
            uid=uid,
            generation=n,
            spec=spec if kind == "LoraTraining" else {"owner": "alice"},
            status=json.loads(json.dumps(status)),
            created_at=T0,
            results={n: result},
        )
        doc = catalog_document(state, now=T0 + timedelta(hours=n), origin="operator", previous=doc)
    assert doc is not None
    return status, doc


@pytest.mark.parametrize("kind", ["LoraTraining", "ImageGeneration", "Transcription", "VideoGeneration"])
def test_a_long_lived_status_keeps_the_newest_versions_and_the_record_keeps_them_all(kind: str) -> None:
    status, doc = _grown(kind, RUNS)
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
    status, _ = _grown("LoraTraining", 1)
    whole = json.dumps(status["versions"][0]).encode()
    assert len(whole) * RUNS > ETCD_LIMIT


def test_a_pinned_version_the_status_no_longer_lists_says_how_to_use_it() -> None:
    status, _ = _grown("LoraTraining", MAX_STATUS_VERSIONS + 5)
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
