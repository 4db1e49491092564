"""How a LoraTraining is estimated before it runs: its training steps, its dataset's captions
and its likeness evaluation."""

from __future__ import annotations

import math

from contentgen.api import UsageLine
from contentgen.api.base_models import likeness_drawn
from contentgen.api.lora import (
    DEFAULT_MAX_FRAMES,
    DEFAULT_TRAINING_MODEL,
    FAL_CAPTION_APP,
    LIKENESS_PROMPT_SETS,
)
from contentgen.api.lora.clips import DEFAULT_MAX_CLIPS
from contentgen.api.lora.plan import route_of
from contentgen.api.providers import FAL

from ..table import PriceTable
from ..usage import evaluation_usage, held_gpus, likeness_plan, scored_loras, training_usage
from ._base import KindPricing, Spec


def _training_seconds(spec: Spec, prices: PriceTable, baseline_cached: bool, loading: float) -> float:
    """The training steps, then the likeness evaluation's pictures: one per prompt and seed with
    each checkpoint scored, and once without a LoRA unless that is stored already. On several GPUs
    (spec.resources), the wall time: each step's batch (training.batchSize: one per GPU unset)
    shared among them, each GPU's share one sample after another, and the pictures too."""
    cluster = prices.cluster
    gpus = held_gpus("LoraTraining", spec, cluster)
    training = spec.get("training") or {}
    per_gpu = math.ceil(int(training.get("batchSize") or gpus) / gpus)
    seconds = loading + int(training.get("steps", 1000)) * per_gpu * cluster.training_step_seconds
    evaluation = spec.get("evaluation") or {}
    if evaluation.get("enabled", True):
        prompt_set, seeds = likeness_plan(evaluation)
        prompts = LIKENESS_PROMPT_SETS.get(prompt_set, 0)
        loras = scored_loras(spec) + (0 if baseline_cached else 1)
        seconds += math.ceil(loras * prompts * seeds / gpus) * cluster.image_seconds
    return seconds


# The app that writes a LoraTraining's dataset captions (captioning: auto), per provider that bills
# them (offline's cost nothing).
CAPTION_APPS = {FAL.name: FAL_CAPTION_APP}


def _training_usage(provider: str, spec: Spec, _: PriceTable, baseline_cached: bool) -> list[UsageLine]:
    """The training steps, the dataset's captions (at most one per image) where they are billed,
    and the likeness evaluation with its baseline, unless that is stored already."""
    training = spec.get("training") or {}
    routed = route_of(spec, provider)  # the app fal trains on: the base model's, by training.model
    app = routed.trainer.app if routed.trainer else str(training.get("model") or DEFAULT_TRAINING_MODEL)
    lines = training_usage(provider, app, int(training.get("steps", 1000)))
    dataset = spec.get("dataset") or {}
    caption_app = CAPTION_APPS.get(provider)
    if dataset.get("captioning") == "auto" and caption_app:
        frames = int(dataset.get("maxFrames", DEFAULT_MAX_FRAMES))
        if routed.clips:  # a caption a clip too
            frames += int((dataset.get("clips") or {}).get("maxClips", DEFAULT_MAX_CLIPS))
        lines.append(UsageLine(provider=provider, item=caption_app, unit="request", quantity=frames))
    evaluation = spec.get("evaluation") or {}
    # a video LoRA is scored on clips its trainer draws as it trains, not on pictures drawn after
    drawn = likeness_drawn(routed.base.name, provider)  # None: its evaluation is skipped, unbilled
    if evaluation.get("enabled", True) and not routed.base.video and drawn is not None:
        plan = likeness_plan(evaluation)
        lines += evaluation_usage(provider, *plan, baseline_cached=baseline_cached, model=drawn)
    return lines


KIND = KindPricing("LoraTraining", "lora-training", _training_seconds, _training_usage)
