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
    CheckpointLikeness,
    GeneratedImage,
    ImageGenerationSpec,
    ImageGenerationStatus,
    Likeness,
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
from contentgen.catalog import ResourceState, catalog_document

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


def _failed(status: dict[str, Any], phase: str, reason: str = "Failed") -> dict[str, Any]:
    """A Ready condition, as the operator writes one, for a failed run."""
    if phase == "Failed":
        status["conditions"] = [
            {
                "type": "Ready",
                "status": "False",
                "reason": reason,
                "message": "",
                "lastTransitionTime": "2025-03-01T12:00:00Z",
            }
        ]
    return status


def _state(
    kind: str, uid: str, name: str, generation: int, spec: dict[str, Any], status: dict[str, Any],
    created: datetime, results: dict[int, RunResult] | None = None,
) -> ResourceState:  # fmt: skip
    return ResourceState(
        kind=kind,
        name=name,
        namespace="default",
        uid=uid,
        generation=generation,
        spec=spec,
        status=status,
        created_at=created,
        results=results or {},
    )


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
    first: int = 1,
    likeness: Likeness | None = None,
) -> dict[str, Any]:
    """`versions` runs, each a version but the last when `phase` is not Succeeded; the status
    lists versions from `first` on (the record keeps those it no longer lists); each version with
    `likeness` as its report, when given."""
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
    results: dict[int, RunResult] = {}
    for n in range(first, versions + 1 if phase == "Succeeded" else versions):
        root = f"loras/{owner}/{uid}/v{n}/"
        model = _artifact(uri_of, root + "model.safetensors", model_bytes, "application/octet-stream")
        config = _artifact(uri_of, root + "config.json", 10, "application/json")
        made.append(
            LoraVersion(
                version=n,
                model_uri=model.uri,
                config_uri=config.uri,
                size_bytes=model.size_bytes,
                sha256=model.sha256,
                provider="offline",
                placeholder=True,
                trigger_word=trigger,
                generation=n,
                created_at=completed,
                likeness=likeness,
            )
        )
        results[n] = RunResult(
            kind="LoraTraining",
            provider="offline",
            artifacts=[model, config],
            placeholder=True,
            lora=made[-1],
            version=n,
            generation=n,
            spec=spec,
        )
    status = LoraTrainingStatus(
        **_status(phase, completed),
        latest_version=made[-1].version if made else 0,
        versions=made,
        run_version=max(versions, 1),
    ).wire()
    status["observedGeneration"] = max(versions, 1)
    state = _state(
        "LoraTraining", uid, name, max(versions, 1), spec, _failed(status, phase), created, results
    )
    return catalog_document(state, now=completed, origin="operator", previous=previous)


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
    version: int = 1,
    previous: dict[str, Any] | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """The record after run `version` (a new version when `phase` is Succeeded; pass the record
    before it as `previous` for a re-run); `loras`: the LoRAs the images were made with (lineage);
    images get thumbnails."""
    wire = {"owner": owner, "prompt": prompt, "model": model, "numImages": max(images, 1), "tags": list(tags)}
    if seed is not None:
        wire["seed"] = seed
    spec = _spec(ImageGenerationSpec, wire)
    made: list[GeneratedImage] = []
    if phase == "Succeeded":
        for n in range(1, images + 1):
            key = f"generated-images/{owner}/{uid}/v{version}/image_{n}.png"
            thumb = f"generated-images/{owner}/{uid}/v{version}/thumbs/image_{n}.jpg"
            made.append(
                GeneratedImage(
                    uri=uri_of(key),
                    width=64,
                    height=48,
                    size_bytes=image_bytes,
                    sha256=sha(key),
                    seed=seed,
                    thumbnail_uri=uri_of(thumb),
                )
            )
    artifacts = [
        Artifact(uri=i.uri, size_bytes=i.size_bytes, sha256=i.sha256, content_type="image/png") for i in made
    ]
    completed = created + timedelta(minutes=1) + timedelta(hours=version - 1)
    status = _failed(ImageGenerationStatus(**_status(phase, completed), run_version=version).wire(), phase)
    status["observedGeneration"] = version
    result = RunResult(
        kind="ImageGeneration",
        provider="offline",
        artifacts=artifacts,
        images=made,
        loras=list(loras),
        version=version,
        generation=version,
        finished_at=completed,
        spec=spec,
    )
    if made:
        result.merge_outputs(status)
    state = _state(
        "ImageGeneration", uid, name, version, spec, status, created, {version: result} if made else None
    )
    return catalog_document(state, now=completed, origin="operator", previous=previous)


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
    version: int = 1,
    previous: dict[str, Any] | None = None,
    times: list[list[float]] | None = None,
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
    root = f"transcripts/{owner}/{uid}/v{version}/"
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
    status = _failed(
        TranscriptionStatus(**_status(phase, completed, progress), run_version=version).wire(), phase
    )
    status["observedGeneration"] = version
    result = RunResult(
        kind="Transcription",
        provider="offline",
        artifacts=[json_a, text_a],
        transcript=transcript,
        transcript_text=text,
        transcript_times=times,
        version=version,
        generation=version,
        finished_at=completed,
        spec=spec,
    )
    if done:
        result.merge_outputs(status)
    state = _state(
        "Transcription", uid, name, version, spec, status, created, {version: result} if done else None
    )
    return catalog_document(state, now=completed, origin="operator", previous=previous)


def _words(n: int, chars: int) -> str:
    """`chars` characters of text that differ from run to run (search keeps every distinct word)."""
    words = (f"w{n}x{i}" for i in range(chars))
    text = ""
    for word in words:
        if len(text) + len(word) + 1 > chars:
            return text
        text = f"{text} {word}" if text else word
    return text


def _longest_likeness(uid: str, version: int) -> Likeness:
    """A version's likeness report as large as a run makes it: 20 checkpoints scored (the most
    evaluation.checkpoints allows), every rule's reason on each (docs/likeness.md)."""
    root = f"s3://catalog-tests/loras/alice/{uid}/v{version}/"
    reasons = [
        "the generated faces' median similarity 0.21 is under the threshold 0.31: they do not look like "
        "the subject",
        "58% of the generated images show no face",
        "the LoRA raises the median similarity by +0.02 over the base model alone (at least +0.10 "
        "expected): it changes little",
        "in 67% of the two-person images the other person looks like the subject too (bleed)",
        "9 of 12 generated faces are copies of one training image (similarity ≥ 0.88; the closest 0013.jpg)",
    ]
    points = [
        CheckpointLikeness(
            step=500 * n,
            model_uri=f"{root}checkpoints/step-{500 * n:06d}.safetensors",
            verdict="poor",
            median=0.2134,
            percent=28.1,
            above_threshold=0.25,
            no_face_rate=0.5833,
            gain=0.0213,
            bleed_share=0.6667,
            copies=9,
            sameness=0.61,
            reasons=reasons,
            grid_uri=f"{root}likeness/step-{500 * n:06d}/likeness-grid.jpg",
            report_uri=f"{root}likeness/step-{500 * n:06d}/likeness.json",
            chosen=n == 20,
        )
        for n in range(1, 21)
    ]
    return Likeness(
        verdict="poor",
        reasons=reasons,
        median=0.2134,
        grid_uri=f"{root}likeness-grid.jpg",
        report_uri=f"{root}likeness.json",
        checkpoints=points,
        chosen_step=10000,
        final_step=10000,
        choice="the last step, 10000, scored best of 20 checkpoints (poor, median 0.21)",
    )


def grown(kind: str, runs: int, *, fail_every: int = 10) -> dict[str, Any]:
    """The record of one long-lived resource after `runs` runs, every `fail_every`th failing, each
    run as large as the API lets it be: 4000-character prompts and negative prompts, 4 images and 5
    LoRAs an image run, 20,000 characters of transcript a transcription; built as the operator
    builds it, each write over the record before it."""
    uid, doc = f"long-lived-{kind}", None
    for n in range(1, runs + 1):
        phase = "Failed" if n % fail_every == 0 else "Succeeded"
        created = T0 + timedelta(hours=n)
        if kind == "LoraTraining":
            doc = lora_doc(
                uid,
                versions=n,
                first=n,
                phase=phase,
                previous=doc,
                description=_words(n, 1000),
                tags=tuple(f"tag-{i}" for i in range(10)),
                likeness=_longest_likeness(uid, n),
            )
        elif kind == "ImageGeneration":
            root = "s3://catalog-tests/loras/alice"
            loras = tuple(
                ResolvedLora(
                    uri=f"{root}/lora-{i}/v{n}/model.safetensors", uid=f"lora-{i}", version=n, scale=0.5
                )
                for i in range(5)
            )
            doc = image_doc(
                uid,
                version=n,
                phase=phase,
                previous=doc,
                prompt=_words(n, 4000),
                images=4,
                loras=loras,
                created=created,
            )
        else:
            doc = transcript_doc(
                uid, version=n, phase=phase, previous=doc, text=_words(n, 20_000), created=created
            )
    assert doc is not None
    return doc
