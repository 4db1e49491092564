"""Catalog documents for tests, built as the operator builds them: `catalog_document` over real
specs, statuses and run results (the api models), so a change in their shape breaks tests here."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from contentgen.api import (
    Artifact,
    GeneratedImage,
    ImageGenerationSpec,
    ImageGenerationStatus,
    LoraTrainingSpec,
    LoraTrainingStatus,
    LoraVersion,
    Phase,
    ResolvedLora,
    RunResult,
    TranscriptionSpec,
    TranscriptionStatus,
    TranscriptOutput,
)
from contentgen.catalog import catalog_document

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
UriOf = Callable[[str], str]


def s3_uri(key: str) -> str:
    return f"s3://catalog-tests/{key}"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _artifact(uri_of: UriOf, key: str, size: int, content_type: str) -> Artifact:
    return Artifact(uri=uri_of(key), size_bytes=size, sha256=sha(key), content_type=content_type)


def _spec(model: Any, wire: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = model.model_validate_json(json.dumps(wire)).wire()
    return spec


def _status(phase: str, completed: datetime | None, progress: int | None = None) -> dict[str, Any]:
    done = phase in ("Succeeded", "Failed")
    return {
        "phase": Phase(phase),
        "progress": progress if progress is not None else (100 if done else 0),
        "completed_at": completed if done else None,
    }


def lora_doc(
    uid: str,
    *,
    owner: str = "alice",
    name: str = "avatar",
    phase: str = "Succeeded",
    versions: int = 1,
    created: datetime = T0,
    trigger: str = "dmavatar",
    tags: tuple[str, ...] = (),
    description: str = "",
    uri_of: UriOf = s3_uri,
    model_bytes: int = 1000,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec = _spec(
        LoraTrainingSpec,
        {
            "owner": owner,
            "source": {"url": "https://example.com/v.mp4"},
            "triggerWord": trigger,
            "tags": list(tags),
            "description": description,
            "provider": "offline",
        },
    )
    completed = created + timedelta(minutes=10)
    made: list[LoraVersion] = []
    artifacts: list[Artifact] = []
    for n in range(1, versions + 1 if phase == "Succeeded" else versions):
        root = f"loras/{owner}/{uid}/v{n}/"
        model = _artifact(uri_of, root + "model.safetensors", model_bytes, "application/octet-stream")
        config = _artifact(uri_of, root + "config.json", 10, "application/json")
        artifacts += [model, config]
        made.append(
            LoraVersion(
                version=n,
                model_uri=model.uri,
                config_uri=config.uri,
                size_bytes=model.size_bytes,
                sha256=model.sha256,
                provider="offline",
                trigger_word=trigger,
                generation=n,
                created_at=completed,
            )
        )
    status = LoraTrainingStatus(**_status(phase, completed), latest_version=len(made), versions=made).wire()
    result = (
        RunResult(
            kind="LoraTraining", provider="offline", artifacts=artifacts, placeholder=True, lora=made[-1]
        )
        if made
        else None
    )
    return catalog_document(
        kind="LoraTraining",
        name=name,
        namespace="default",
        uid=uid,
        generation=max(versions, 1),
        spec=spec,
        status=status,
        created_at=created,
        now=completed,
        result=result,
        previous=previous,
    )


def image_doc(
    uid: str,
    *,
    owner: str = "alice",
    name: str = "portrait",
    phase: str = "Succeeded",
    prompt: str = "a red fox in the snow",
    model: str = "flux-dev",
    images: int = 2,
    created: datetime = T0,
    tags: tuple[str, ...] = (),
    uri_of: UriOf = s3_uri,
    image_bytes: int = 500,
    loras: tuple[ResolvedLora, ...] = (),
) -> dict[str, Any]:
    """`loras`: the LoRAs the images were made with (lineage); images get thumbnails."""
    spec = _spec(
        ImageGenerationSpec,
        {"owner": owner, "prompt": prompt, "model": model, "numImages": max(images, 1), "tags": list(tags)},
    )
    made: list[GeneratedImage] = []
    if phase == "Succeeded":
        for n in range(1, images + 1):
            key = f"generated-images/{owner}/{uid}/image_{n}.png"
            thumb = f"generated-images/{owner}/{uid}/thumbs/image_{n}.jpg"
            made.append(
                GeneratedImage(
                    uri=uri_of(key),
                    width=64,
                    height=48,
                    size_bytes=image_bytes,
                    sha256=sha(key),
                    thumbnail_uri=uri_of(thumb),
                )
            )
    artifacts = [
        Artifact(uri=i.uri, size_bytes=i.size_bytes, sha256=i.sha256, content_type="image/png") for i in made
    ]
    completed = created + timedelta(minutes=1)
    status = ImageGenerationStatus(
        **_status(phase, completed), provider="offline", images=made, loras=list(loras)
    ).wire()
    result = RunResult(
        kind="ImageGeneration", provider="offline", artifacts=artifacts, images=made, loras=list(loras)
    )
    return catalog_document(
        kind="ImageGeneration",
        name=name,
        namespace="default",
        uid=uid,
        generation=1,
        spec=spec,
        status=status,
        created_at=created,
        now=completed,
        result=result if made else None,
    )


def transcript_doc(
    uid: str,
    *,
    owner: str = "alice",
    name: str = "podcast",
    phase: str = "Succeeded",
    text: str = "welcome to the show about wildfires and forests",
    created: datetime = T0,
    description: str = "",
    uri_of: UriOf = s3_uri,
    progress: int | None = None,
) -> dict[str, Any]:
    spec = _spec(
        TranscriptionSpec,
        {
            "owner": owner,
            "source": {"url": "https://example.com/a.mp3"},
            "speakerLabels": True,
            "description": description,
        },
    )
    root = f"transcripts/{owner}/{uid}/"
    json_a = _artifact(uri_of, root + "transcript.json", 300, "application/json")
    text_a = _artifact(uri_of, root + "transcript.txt", len(text), "text/plain")
    transcript = TranscriptOutput(
        json_uri=json_a.uri,
        text_uri=text_a.uri,
        word_count=len(text.split()),
        duration_seconds=61.5,
        speakers=2,
        language_code="en",
        provider="offline",
    )
    completed = created + timedelta(minutes=2)
    done = phase == "Succeeded"
    status = TranscriptionStatus(
        **_status(phase, completed, progress), transcript=transcript if done else None
    ).wire()
    result = RunResult(
        kind="Transcription",
        provider="offline",
        artifacts=[json_a, text_a],
        transcript=transcript,
        transcript_text=text,
    )
    return catalog_document(
        kind="Transcription",
        name=name,
        namespace="default",
        uid=uid,
        generation=1,
        spec=spec,
        status=status,
        created_at=created,
        now=completed,
        result=result if done else None,
    )
