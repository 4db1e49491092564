"""Usage: what a provider bills for a run, line by line, and what a spec says of the GPUs and
the likeness evaluation it will use."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from contentgen.api import KINDS, UsageLine
from contentgen.api.base_models import DEFAULT_FAL_TRAINER, FAL_TRAINERS, one_gpu
from contentgen.api.image import IMAGE_SIZES
from contentgen.api.lora import (
    LIKENESS_IMAGE_SIZE,
    LIKENESS_MODEL,
    LIKENESS_PROMPT_SETS,
    EvaluationSpec,
    TrainingSpec,
    checkpoints_scored,
    checkpoints_stored,
)
from contentgen.api.providers import CLUSTER, provider_entry
from contentgen.api.video import VideoShape

from .table import MEGAPIXEL, ClusterPrices


def megapixels(width: int, height: int) -> int:
    return max(1, math.ceil(width * height / MEGAPIXEL))


def image_usage(
    provider: str, model: str, sizes: Iterable[tuple[int, int]], request: str = ""
) -> list[UsageLine]:
    total = sum(megapixels(w, h) for w, h in sizes)
    entry = provider_entry(provider)
    item = entry.draws.get(model, model) if entry.prices_by_app else model
    return [UsageLine(provider=provider, item=item, unit="megapixel", quantity=total, request=request)]


# The frame rate each fal app counts a video's seconds at (its page: "video seconds are calculated
# at 16 frames per second", "billed at 24 frames per second"); the others bill the video's length.
VIDEO_BILLED_FPS = {"wan-2.2-t2v": 16, "wan-2.2-i2v": 16, "ltx-video-13b": 24}
# The apps whose price depends on the resolution: their item names it.
_PRICED_BY_RESOLUTION = ("fal-ai/wan/v2.2-a14b/image-to-video",)


def video_item(provider: str, shape: VideoShape) -> str:
    """What a video's usage line names: fal's app (with the resolution where it sets the price),
    elsewhere the model."""
    if not provider_entry(provider).prices_by_app:
        return shape.model.name
    app = shape.app
    return f"{app} {shape.resolution}" if app in _PRICED_BY_RESOLUTION else app


def video_usage(provider: str, shape: VideoShape, request: str = "") -> list[UsageLine]:
    """A video's seconds as its provider bills them (at the frame rate the app counts in)."""
    by_app = provider_entry(provider).prices_by_app
    billed_fps = VIDEO_BILLED_FPS.get(shape.model.name, shape.fps) if by_app else shape.fps
    seconds = round(shape.frames / max(1, billed_fps), 6)
    item = video_item(provider, shape)
    return [UsageLine(provider=provider, item=item, unit="video-second", quantity=seconds, request=request)]


def training_usage(provider: str, app: str, steps: int, request: str = "") -> list[UsageLine]:
    """A training's steps as its provider bills them: at least a trainer's billed minimum (fal's
    Wan 2.2 trainers bill 100 steps at least)."""
    item = app or DEFAULT_FAL_TRAINER
    known = FAL_TRAINERS.get(item) if provider_entry(provider).prices_by_app else None
    billed = max(steps, known[1].billed_min_steps) if known else steps
    return [UsageLine(provider=provider, item=item, unit="step", quantity=billed, request=request)]


def gpu_usage(
    provider: str, item: str, gpu_seconds: float, request: str = "", *, gpus: int | None = None
) -> list[UsageLine]:
    """The GPU time a run held on `provider`'s own GPUs (provider cluster), in GPU-hours (seconds
    held × GPUs), priced per GPU-hour. `item` names the work (lora-training, image-generation,
    transcription, likeness-evaluation); one price per GPU-hour prices every item
    (`PriceTable.price` falls back to the provider's dearest price for the unit). With `gpus`, the
    line says them and the wall time apart (the GPU-seconds over the GPUs)."""
    held = max(0.0, gpu_seconds)
    return [
        UsageLine(
            provider=provider,
            item=item,
            unit="gpu-hour",
            quantity=held / 3600.0,
            request=request,
            gpus=gpus,
            wall_seconds=round(held / gpus, 3) if gpus else None,
        )
    ]


def cluster_usage(item: str, gpu_seconds: float, request: str = "") -> list[UsageLine]:
    """`gpu_usage` of provider cluster."""
    return gpu_usage(CLUSTER.name, item, gpu_seconds, request)


def caption_usage(provider: str, item: str, requests: Iterable[str]) -> list[UsageLine]:
    """Dataset captions: one billed request per image."""
    return [
        UsageLine(provider=provider, item=item, unit="request", quantity=1, request=request)
        for request in requests
    ]


def transcription_usage(
    provider: str, seconds: float, speaker_labels: bool, request: str = "", *, model: str = ""
) -> list[UsageLine]:
    """The audio's hours on `model` (the model that ran, as the provider reports it; unreported:
    "transcript", which no table lists, so it is priced at the dearest model), and speaker labels."""
    hours = max(0.0, seconds) / 3600.0
    lines = [
        UsageLine(
            provider=provider, item=model or "transcript", unit="audio-hour", quantity=hours, request=request
        )
    ]
    if speaker_labels:
        lines.append(
            UsageLine(
                provider=provider, item="speaker-labels", unit="audio-hour", quantity=hours, request=request
            )
        )
    return lines


def evaluation_usage(
    provider: str,
    prompt_set: str,
    seeds: int,
    *,
    baseline_cached: bool = False,
    checkpoints: int = 1,
    model: str = LIKENESS_MODEL,
) -> list[UsageLine]:
    """What a likeness evaluation bills at most: a picture per prompt and seed with each LoRA
    scored (`checkpoints` of a training, else the one), and as many without a LoRA, once, unless
    its baseline is stored already; drawn with `model` (a family's own: likeness_model)."""
    count = LIKENESS_PROMPT_SETS.get(prompt_set, 0) * seeds * (checkpoints + (0 if baseline_cached else 1))
    size = IMAGE_SIZES[LIKENESS_IMAGE_SIZE]
    return image_usage(provider, model, [size] * count) if count else []


def scored_loras(spec: Mapping[str, Any]) -> int:
    """How many LoRAs a LoraTraining's likeness evaluation scores (`spec` as on the wire): where
    the trainer stores checkpoints (provider cluster), `evaluation.checkpoints` of them at most;
    elsewhere the one LoRA (docs/likeness.md#checkpoints)."""
    if not provider_entry(str(spec.get("provider") or "")).own_gpus:
        return 1
    training, evaluation = spec.get("training") or {}, spec.get("evaluation") or {}
    default_training, default_evaluation = TrainingSpec(), EvaluationSpec()
    stored = checkpoints_stored(
        int(training.get("steps", default_training.steps)),
        int(training.get("checkpointEvery", default_training.checkpoint_every)),
    )
    return checkpoints_scored(stored, int(evaluation.get("checkpoints", default_evaluation.checkpoints)))


def without_evaluation(kind: str, spec: Mapping[str, Any]) -> dict[str, Any] | None:
    """`spec` with its likeness evaluation turned off, or None when it has none to turn off (its
    kind's likeness plan has no switch, as a LoraEvaluation's, or none at all)."""
    declared, evaluation = KINDS.get(kind), spec.get("evaluation") or {}
    plan = declared.likeness_plan if declared is not None else None
    if plan is None or "enabled" not in plan.model_fields or not evaluation.get("enabled", True):
        return None
    return {**spec, "evaluation": {**evaluation, "enabled": False}}


def likeness_plan(evaluation: Mapping[str, Any]) -> tuple[str, int]:
    """(prompt set, seeds) of a likeness evaluation's spec (`evaluation`, as on the wire)."""
    default = EvaluationSpec()
    return str(evaluation.get("promptSet", default.prompt_set)), len(evaluation.get("seeds") or default.seeds)


def pooled(kind: str, spec: Mapping[str, Any], cluster: ClusterPrices) -> bool:
    """Whether a warm pool draws a run of `spec`, so that its Job loads no base model (what
    controller/denoising.py decides from the same settings)."""
    declared = KINDS.get(kind)  # the kinds whose spec says where they draw (as controller/denoising.py)
    if declared is None or "denoising" not in declared.spec.model_fields:
        return False
    wanted = str(spec.get("denoising") or cluster.denoising)
    return wanted == "pool" and spec_model(kind, spec) in cluster.pooled_models


def spec_model(kind: str, spec: Mapping[str, Any]) -> str:
    """A spec's model, as its kind's default fills it in."""
    declared = KINDS.get(kind)
    default = declared.spec.model_fields["model"].default if declared is not None else ""
    return str(spec.get("model") or default)


def held_gpus(kind: str, spec: Mapping[str, Any], cluster: ClusterPrices) -> int:
    """The GPUs a run of `spec` holds: its kind's Job's, or those its spec.resources asks for on
    each of its nodes (a LoraTraining's, docs/cluster-training.md#several-gpus)."""
    resources = spec.get("resources") or {}
    per_node = int(resources.get("gpus") or (1 if one_gpu(spec) else cluster.gpus.get(kind, 1)))
    return max(1, per_node) * max(1, int(resources.get("nodes") or 1))
