"""A resource's status after many runs, each merged into it as the operator merges a run's result
and each as large as the API lets it be (tests/controller/test_status_bounds.py, test_status_reading.py,
bench/references.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from contentgen.api import (
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
from contentgen.catalog import ResourceState, catalog_document
from tests.catalog.factory import T0, _longest_likeness, _spec, s3_uri, sha


def run_result(kind: str, uid: str, n: int) -> RunResult:
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


def grown_status(kind: str, runs: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The status after `runs` runs, each merged into it as the operator merges a run's result, and
    the catalog record written after each of them."""
    uid = f"long-lived-{kind}"
    spec = _spec(
        LoraTrainingSpec, {"owner": "alice", "source": {"url": "https://e.com/v.mp4"}, "triggerWord": "x"}
    )
    status: dict[str, Any] = {}
    doc: dict[str, Any] | None = None
    for n in range(1, runs + 1):
        result = run_result(kind, uid, n)
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
