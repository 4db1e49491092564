"""A VideoGeneration's catalog record for tests, built as the operator builds it (over the api
models, as factory.py's other kinds): a run as large as the API lets it be."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from contentgen.api import (
    Artifact,
    GeneratedVideo,
    LikenessSample,
    ResolvedImage,
    ResolvedLora,
    RunResult,
    VideoGenerationSpec,
    VideoGenerationStatus,
    VideoLikeness,
)
from contentgen.catalog import catalog_document
from tests.catalog.factory import T0, UriOf, _failed, _spec, _state, _status, _words, s3_uri, sha

# a version's files (a transcoded delivery's original among them) and their content types
VIDEO_FILES = {
    "video.mp4": "video/mp4",
    "original.webm": "video/webm",
    "poster.jpg": "image/jpeg",
    "thumbs/poster.jpg": "image/jpeg",
    "strip.jpg": "image/jpeg",
}


def video_doc(
    uid: str,
    version: int = 1,
    phase: str = "Succeeded",
    previous: dict[str, Any] | None = None,
    *,
    owner: str = "alice",
    name: str = "clip",
    created: datetime = T0,
    uri_of: UriOf = s3_uri,
) -> dict[str, Any]:
    """A VideoGeneration's record after run `version` (`previous`: the record before it), the run
    as large as the API lets it be:
    4000-character prompt and negative prompt, 5 LoRAs, a picture with 8 LoRAs of lineage, and a
    likeness over time with 32 frames sampled and 8 reasons of 400 characters."""
    created = created + timedelta(hours=version - 1)
    root = f"s3://catalog-tests/loras/{owner}"
    wire = {
        "owner": owner,
        "prompt": _words(version, 4000),
        "negativePrompt": _words(version + 1, 4000),
        "model": "wan-2.2-t2v",
        "numFrames": 161,
        "seed": version,
        "loras": [{"url": f"https://h/wan-{i}-v{version}.safetensors", "scale": 0.5} for i in range(5)],
        "tags": [f"tag-{i}" for i in range(10)],
    }
    spec = _spec(VideoGenerationSpec, wire)
    lineage = [
        ResolvedLora(uri=f"{root}/lora-{i}/v{version}/model.safetensors", uid=f"lora-{i}", version=version)
        for i in range(8)
    ]
    completed = created + timedelta(minutes=3)
    status = _failed(VideoGenerationStatus(**_status(phase, completed), run_version=version).wire(), phase)
    status["observedGeneration"] = version
    if phase != "Succeeded":
        return catalog_document(
            _state("VideoGeneration", uid, name, version, spec, status, created),
            now=completed,
            origin="operator",
            previous=previous,
        )
    folder = f"generated-videos/{owner}/{uid}/v{version}"
    likeness = VideoLikeness(
        verdict="poor",
        reasons=[_words(version + r, 400) for r in range(8)],
        median=0.31,
        lowest=0.02,
        lowest_at_seconds=9.5,
        drift=0.2,
        percent=40.0,
        upper_bound=0.62,
        threshold=0.363,
        samples=[LikenessSample(time_seconds=n * 0.31, score=0.3, faces=2) for n in range(32)],
        lora=lineage[0],
    )
    video = GeneratedVideo(
        uri=uri_of(f"{folder}/video.mp4"),
        size_bytes=40_000_000,
        sha256=sha(folder),
        duration_seconds=10.06,
        frames=161,
        fps=16,
        width=1280,
        height=720,
        original_uri=uri_of(f"{folder}/original.webm"),
        original_codec="vp9/yuv420p",
        seed=version,
        poster_uri=uri_of(f"{folder}/poster.jpg"),
        thumbnail_uri=uri_of(f"{folder}/thumbs/poster.jpg"),
        strip_uri=uri_of(f"{folder}/strip.jpg"),
        likeness=likeness,
    )
    picture = ResolvedImage(
        uri=s3_uri(f"generated-images/{owner}/pic/v{version}/image_8.png"),
        name="portrait",
        uid="pic",
        version=version,
        image=8,
        loras=lineage,
    )
    artifacts = [
        Artifact(uri=uri_of(f"{folder}/{file}"), size_bytes=1000, sha256=sha(file), content_type=kind)
        for file, kind in VIDEO_FILES.items()
    ]
    result = RunResult(
        kind="VideoGeneration",
        provider="fal",
        artifacts=artifacts,
        video=video,
        image=picture,
        loras=[ResolvedLora(uri=e["url"], scale=0.5) for e in wire["loras"]],
        version=version,
        generation=version,
        finished_at=completed,
        spec=spec,
    )
    result.merge_outputs(status)
    state = _state("VideoGeneration", uid, name, version, spec, status, created, {version: result})
    return catalog_document(state, now=completed, origin="operator", previous=previous)
