"""Spend: the price table, what a run will cost (before its Job starts) and what it cost (from the
usage the worker reports). Pure functions; the operator, `contentgen run` and budgets use them.

Where a usage line's price comes from, in order: the provider's own pricing API, read by the
worker when the run is billed (fal: GET api.fal.ai/v1/models/pricing, the account's prices,
"custom pricing or discounts may be applied based on account status",
https://fal.ai/docs/platform-apis/v1/models/pricing; `fal_unit_price` reads it), else the price
table. Each line carries its price, source and date (`stamped`), and `priced` shows them in
status.cost.detail. Estimates, made before a run starts, always use the table.

The table's default prices were taken on 2026-11-22 from the providers' public pages; set
CONTENTGEN_PRICES (JSON, the shape of `PriceTable`) to your contract's prices:

- fal (https://fal.ai/pricing and each model's page; "Images are billed by rounding up to the
  nearest megapixel", https://fal.ai/models/fal-ai/flux-1/dev/playground; "You pay only for
  successful outputs", https://fal.ai/docs/documentation/model-apis/pricing):
  FLUX.1 [dev] $0.025/MP, FLUX.1 [schnell] $0.003/MP, FLUX1.1 [pro] $0.04/MP, FLUX.1 [dev] with
  LoRAs $0.035/MP; LoRA training (fal-ai/flux-lora-fast-training) $2 per 1000 steps, linear in
  steps. fal publishes no separate price for flux-lora-portrait-trainer; it gets the same. Wan
  LoRAs (api/base_models.py, where each page is named): fal-ai/wan-trainer $0.005 a step,
  fal-ai/wan-22-image-trainer $0.0045 a step ("minimum of 100 steps is charged"); the Wan 2.2
  video trainers' pages were not found to read ("billed per step at the rate on the trainer's
  model page, with a 100-step minimum", fal's guide), so the table leaves them out and prices
  them at its dearest step until fal's pricing API gives the account's price.
  Dataset captions (openrouter/router/vision) are "charged based on actual token usage"
  (https://fal.ai/docs/model-api-reference/vision-api/openrouter-router); its documented example,
  one image captioned by google/gemini-2.5-flash, reports a cost of $0.0005595. The table prices
  a caption at $0.001 per request, a ceiling of about twice that.
- AssemblyAI (https://www.assemblyai.com/pricing, read 2026-10-07 by a public transcription of
  it; billing rules https://assemblyai.com/docs/billing-and-pricing): pre-recorded audio per hour,
  pro-rated to the second, by the model that ran (the transcript's speech_model_used):
  Universal-3.5 Pro and Universal-3 Pro $0.21, Universal-2 $0.15; speaker labels $0.02 per hour
  more; a transcript that errors is not charged. A model the table does not list is priced at
  the dearest model's price.

A megapixel here is 1,000,000 pixels and every image is rounded up to whole megapixels: fal's
pages say "rounding up to the nearest megapixel" and do not say which megapixel, so the larger
count (10^6, not 2^20) is used and spend is never under-counted: 1024x1024 (square_hd) counts as
2 MP, 1024x768 as 1 MP. An item the table does not list is priced at the
dearest price of its provider and unit, so spend is never under-counted. Usage is reported for
every provider; the offline provider has no prices, so it costs nothing (a test may price it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from contentgen.api import KINDS, Cost, UsageLine
from contentgen.api.base_models import FAL_TRAINERS, likeness_drawn, one_gpu
from contentgen.api.cost import Unit
from contentgen.api.image import FAL_APPS, IMAGE_SIZES, ImageModel
from contentgen.api.lora import (
    DEFAULT_MAX_FRAMES,
    DEFAULT_TRAINING_MODEL,
    FAL_CAPTION_APP,
    LIKENESS_IMAGE_SIZE,
    LIKENESS_MODEL,
    LIKENESS_PROMPT_SETS,
    EvaluationSpec,
    TrainingSpec,
    checkpoints_scored,
    checkpoints_stored,
)
from contentgen.api.lora.clips import DEFAULT_MAX_CLIPS
from contentgen.api.lora.plan import route_of
from contentgen.api.providers import CLUSTER, FAL, PROVIDERS, provider_entry
from contentgen.api.registry import UnknownKind
from contentgen.api.video import MODELS as VIDEO_MODELS
from contentgen.api.video import VideoShape, shape_of_wire

PRICES_AS_OF = "2026-11-22"
MEGAPIXEL = 1_000_000
DEFAULT_TRAINING_APP = "fal-ai/flux-lora-fast-training"


class ClusterPrices(BaseModel):
    """provider: cluster: what a GPU-hour costs, and how much GPU time a run is expected to hold
    before it starts (its estimate; the worker measures the actual GPU-seconds). The seconds are
    of one Job on its GPUs; a Job with `gpus` GPUs holds that many GPU-seconds per second, and a
    run a warm pool draws holds the pool pod's (`pool_gpus`)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    gpu_hour_usd: float = Field(
        default=2.0,
        ge=0,
        description="USD per GPU-hour of the cluster's own GPUs (what an hour of one GPU costs you: "
        "amortised hardware and power, or a cloud's on-demand price).",
    )
    startup_seconds: float = Field(
        default=60.0, ge=0, description="Seconds a Job holds its GPUs before work starts (loading weights)."
    )
    training_step_seconds: float = Field(
        default=2.0, gt=0, description="Seconds per LoRA training step (FLUX, one 80 GB GPU, 1024 px)."
    )
    image_seconds: float = Field(
        default=10.0, gt=0, description="Seconds per generated image (FLUX, 1 megapixel, 28 steps)."
    )
    audio_hour_seconds: float = Field(
        default=180.0, gt=0, description="Seconds of GPU time per hour of audio transcribed (faster-whisper)."
    )
    video_frame_seconds: float = Field(
        default=4.0,
        gt=0,
        description="Seconds per generated video frame (Wan or LTX-Video at 480p; a VideoGeneration's "
        "estimate).",
    )
    gpus: dict[str, int] = Field(
        default_factory=dict,
        description="GPUs of a Job per kind (the operator fills it in from its GPU settings, the HTTP API "
        "from the same CONTENTGEN_GPU_JOBS; unset: 1).",
    )
    denoising: Literal["job", "pool"] = Field(
        default="job",
        description="Where an ImageGeneration or VideoGeneration whose spec.denoising is unset draws (the "
        "operator fills it in from the chart's pools.denoising).",
    )
    pooled_models: list[str] = Field(
        default_factory=list,
        description="The ImageGeneration and VideoGeneration models (spec.model) a warm pool draws where "
        "denoising is pool (a video model where a pool serves each of its staged directories): "
        "their estimate counts no startupSeconds, the pool's pods having loaded the base model (the "
        "operator fills it in from the chart's pools.items; unset: none).",
    )
    pool_gpus: dict[str, int] = Field(
        default_factory=dict,
        description="GPUs of a pool pod per pooled model (spec.model): a pooled run's seconds are counted "
        "on the GPUs of the pool that draws it, not on its Job's (the operator fills it in from the "
        "chart's pools.items[].gpus.count; unset: 1).",
    )


class PriceTable(BaseModel):
    """USD per unit, per provider and item: {"fal": {"fal-ai/flux/dev": {"megapixel": 0.025}}};
    `cluster`: the price of the cluster's own GPU time and its estimates."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    as_of: str = Field(default=PRICES_AS_OF, description="When these prices were taken.")
    items: dict[str, dict[str, dict[str, float]]] = Field(default_factory=lambda: default_items())
    assumed_audio_hours: float = Field(
        default=1.0,
        gt=0,
        description="How long a Transcription's audio is assumed to be when estimating it before its "
        "Job starts (the length is known only once the worker has fetched it).",
    )
    cluster: ClusterPrices = Field(default_factory=ClusterPrices)

    def price(self, provider: str, item: str, unit: str) -> float:
        """USD per `unit` of `item`; the provider's dearest price for the unit when the item is not
        listed (a GPU-hour of the cluster: `cluster.gpuHourUsd`); 0 for a provider with no prices
        (offline)."""
        by_item = self.items.get(provider) or {}
        listed = (by_item.get(item) or {}).get(unit)
        if listed is not None:
            return float(listed)
        if unit == "gpu-hour" and provider_entry(provider).own_gpus:
            return self.cluster.gpu_hour_usd
        return max((float(units[unit]) for units in by_item.values() if unit in units), default=0.0)

    def prices(self, provider: str) -> bool:
        """Whether this table prices `provider` at all (the offline provider costs nothing)."""
        return provider in self.items or provider_entry(provider).own_gpus


def with_cluster_settings(
    prices: PriceTable,
    *,
    job_gpus: Mapping[str, int],
    denoising: Literal["job", "pool"] | None = None,
    pool_gpus: Mapping[str, int] | None = None,
) -> PriceTable:
    """`prices` with what the operator's GPU settings tell a cluster estimate, so that every table
    made from the same chart values estimates alike (the operator's and the HTTP API's):
    `job_gpus`, each kind's GPUs per Job (the chart's gpu.jobs counts); `denoising` and
    `pool_gpus` (the ImageGeneration models a warm pool draws, and its pod's GPUs), where given.
    `prices` itself when nothing changes."""
    update: dict[str, Any] = {"gpus": {kind: count for kind, count in job_gpus.items() if count != 1}}
    if denoising is not None:
        update["denoising"] = denoising
    if pool_gpus is not None:
        update["pooled_models"], update["pool_gpus"] = list(pool_gpus), dict(pool_gpus)
    if all(getattr(prices.cluster, name) == value for name, value in update.items()):
        return prices
    return prices.model_copy(update=dict(cluster=prices.cluster.model_copy(update=update)))


def with_local_pool(prices: PriceTable, pool_url: str) -> PriceTable:
    """`prices` for a run made outside the operator (`contentgen run`, `contentgen api --local`)
    whose worker hands its pictures to the warm pool at `pool_url` (CONTENTGEN_CLUSTER_POOL_URL):
    an ImageGeneration is estimated as the operator estimates a Job its pool draws (no load; the
    pool pod's GPUs: the table's `poolGpus`, else 1), unless its spec says `denoising: job`, which
    its worker then draws itself (pipeline/images.py). `prices` itself without a pool."""
    if not pool_url:
        return prices
    videos = (name for name, model in VIDEO_MODELS.items() if model.provider == CLUSTER.name)
    models = (*get_args(ImageModel), *videos)
    pool_gpus = {model: prices.cluster.pool_gpus.get(model, 1) for model in models}
    return with_cluster_settings(prices, job_gpus=prices.cluster.gpus, denoising="pool", pool_gpus=pool_gpus)


def default_items() -> dict[str, dict[str, dict[str, float]]]:
    """The price table's defaults: each provider's published prices (its row's `prices`,
    api/providers.py), with the LoRA trainers' per step of the base models' table (where each page
    is named) for the provider that prices them by app."""
    items = {p.name: {i: dict(u) for i, u in p.prices.items()} for p in PROVIDERS.values() if p.prices}
    trainers = {app: {"step": t.price_per_step} for app, (_, t) in FAL_TRAINERS.items() if t.price_per_step}
    if trainers:
        items.setdefault(FAL.name, {}).update(trainers)
    return items


# --- usage: what the provider bills for a run ------------------------------------------------


def megapixels(width: int, height: int) -> int:
    return max(1, math.ceil(width * height / MEGAPIXEL))


def image_usage(
    provider: str, model: str, sizes: Iterable[tuple[int, int]], request: str = ""
) -> list[UsageLine]:
    total = sum(megapixels(w, h) for w, h in sizes)
    item = FAL_APPS.get(model, model) if provider_entry(provider).prices_by_app else model
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
    item = app or DEFAULT_TRAINING_APP
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


def _likeness_plan(evaluation: Mapping[str, Any]) -> tuple[str, int]:
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
    return wanted == "pool" and _model(kind, spec) in cluster.pooled_models


def _model(kind: str, spec: Mapping[str, Any]) -> str:
    """A spec's model, as its kind's default fills it in."""
    declared = KINDS.get(kind)
    default = declared.spec.model_fields["model"].default if declared is not None else ""
    return str(spec.get("model") or default)


# --- estimates: what a run will cost, known before it starts -------------------------------------

Spec = Mapping[str, Any]
# gpu_seconds(spec, prices, baseline_cached, loading): the seconds a Job of one GPU holds for a run
# of `spec`, from `loading` (the weights' loading: none where a warm pool draws)
GpuSeconds = Callable[[Spec, PriceTable, bool, float], float]
# usage(provider, spec, prices, baseline_cached): what a run of `spec` bills `provider`, at most
Usage = Callable[[str, Spec, PriceTable, bool], list[UsageLine]]


def _assumes_nothing(_: PriceTable) -> str:
    return ""


@dataclass(frozen=True)
class KindPricing:
    """How a kind's run is estimated before it starts, declared once per kind (PRICING_KINDS)."""

    kind: str
    item: str  # what its GPU time on a provider's own GPUs is billed as (gpu_usage's item)
    gpu_seconds: GpuSeconds
    usage: Usage
    # what its estimate assumes until the run has measured it, for the cost's detail ("": nothing)
    assumes: Callable[[PriceTable], str] = _assumes_nothing


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
        prompt_set, seeds = _likeness_plan(evaluation)
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
        plan = _likeness_plan(evaluation)
        lines += evaluation_usage(provider, *plan, baseline_cached=baseline_cached, model=drawn)
    return lines


def _image_seconds(spec: Spec, prices: PriceTable, _: bool, loading: float) -> float:
    return loading + int(spec.get("numImages", 1)) * prices.cluster.image_seconds


def _image_usage(provider: str, spec: Spec, _: PriceTable, __: bool) -> list[UsageLine]:
    width, height = IMAGE_SIZES.get(str(spec.get("imageSize", "landscape_4_3")), (1024, 768))
    count = int(spec.get("numImages", 1))
    return image_usage(provider, str(spec.get("model", "flux-dev")), [(width, height)] * count)


def _evaluation_seconds(spec: Spec, prices: PriceTable, baseline_cached: bool, loading: float) -> float:
    """The pictures with the LoRA, and without it unless `baseline_cached`."""
    prompt_set, seeds = _likeness_plan(spec.get("evaluation") or {})
    pictures = LIKENESS_PROMPT_SETS.get(prompt_set, 0) * seeds * (1 if baseline_cached else 2)
    return loading + pictures * prices.cluster.image_seconds


def _evaluation_usage(provider: str, spec: Spec, _: PriceTable, baseline_cached: bool) -> list[UsageLine]:
    prompt_set, seeds = _likeness_plan(spec.get("evaluation") or {})
    return evaluation_usage(provider, prompt_set, seeds, baseline_cached=baseline_cached)


def _video_seconds(spec: Spec, prices: PriceTable, _: bool, loading: float) -> float:
    return loading + shape_of_wire(spec).frames * prices.cluster.video_frame_seconds


def _video_usage(provider: str, spec: Spec, _: PriceTable, __: bool) -> list[UsageLine]:
    return video_usage(provider, shape_of_wire(spec))


def _transcription_seconds(_: Spec, prices: PriceTable, __: bool, loading: float) -> float:
    return loading + prices.assumed_audio_hours * prices.cluster.audio_hour_seconds


def _transcription_usage(provider: str, spec: Spec, prices: PriceTable, _: bool) -> list[UsageLine]:
    """The audio's assumed hours on the dearest model it may run on, and its speaker labels."""
    seconds, labels = prices.assumed_audio_hours * 3600, bool(spec.get("speakerLabels"))
    models = [str(m) for m in spec.get("speechModels") or []]
    model = max(models, key=lambda m: prices.price(provider, m, "audio-hour"), default="")
    return transcription_usage(provider, seconds, labels, model=model)


def _assumed_audio(prices: PriceTable) -> str:
    return f"assuming {prices.assumed_audio_hours:g} h of audio until it is measured"


PRICING_KINDS: dict[str, KindPricing] = {
    p.kind: p
    for p in (
        KindPricing("LoraTraining", "lora-training", _training_seconds, _training_usage),
        KindPricing("ImageGeneration", "image-generation", _image_seconds, _image_usage),
        KindPricing("LoraEvaluation", "likeness-evaluation", _evaluation_seconds, _evaluation_usage),
        KindPricing("VideoGeneration", "video-generation", _video_seconds, _video_usage),
        KindPricing(
            "Transcription", "transcription", _transcription_seconds, _transcription_usage, _assumed_audio
        ),
    )
}


def pricing_kind(kind: str) -> KindPricing:
    """How `kind` is priced; UnknownKind for a kind PRICING_KINDS does not declare (never another
    kind's price)."""
    try:
        return PRICING_KINDS[kind]
    except KeyError:
        raise UnknownKind(
            f"kind {kind!r} has no pricing: declare how it is priced in contentgen.pricing.PRICING_KINDS"
            f" (known: {', '.join(sorted(PRICING_KINDS))})"
        ) from None


def expected_gpu_seconds(
    kind: str, spec: Mapping[str, Any], prices: PriceTable, *, baseline_cached: bool = False
) -> float:
    """provider: cluster: the GPU-seconds a run of `spec` is expected to hold (its seconds, from
    `prices.cluster`, times the GPUs that draw it: its Job's, or where a warm pool draws, the
    pool pod's): the weights' loading (none where a warm pool draws),
    then its kind's work (KindPricing.gpu_seconds; a likeness baseline stored already,
    `baseline_cached`, is not drawn again)."""
    cluster = prices.cluster
    drawn_by_pool = pooled(kind, spec, cluster)
    loading = 0.0 if drawn_by_pool else cluster.startup_seconds
    seconds = pricing_kind(kind).gpu_seconds(spec, prices, baseline_cached, loading)
    gpus = cluster.pool_gpus.get(_model(kind, spec), 1) if drawn_by_pool else held_gpus(kind, spec, cluster)
    return seconds * max(1, gpus)


def held_gpus(kind: str, spec: Mapping[str, Any], cluster: ClusterPrices) -> int:
    """The GPUs a run of `spec` holds: its kind's Job's, or those its spec.resources asks for on
    each of its nodes (a LoraTraining's, docs/cluster-training.md#several-gpus)."""
    resources = spec.get("resources") or {}
    per_node = int(resources.get("gpus") or (1 if one_gpu(spec) else cluster.gpus.get(kind, 1)))
    return max(1, per_node) * max(1, int(resources.get("nodes") or 1))


def expected_usage(
    kind: str, spec: Mapping[str, Any], prices: PriceTable, *, baseline_cached: bool = False
) -> list[UsageLine]:
    """What a run of `spec` should bill, known before it starts (a LoraEvaluation's `spec` with
    the provider it runs on, and whether its baseline is stored already: `baseline_cached`)."""
    provider, declared = str(spec.get("provider", "")), pricing_kind(kind)
    if provider_entry(provider).own_gpus:
        seconds = expected_gpu_seconds(kind, spec, prices, baseline_cached=baseline_cached)
        gpus = None if pooled(kind, spec, prices.cluster) else held_gpus(kind, spec, prices.cluster)
        return gpu_usage(provider, declared.item, seconds, gpus=gpus if gpus and gpus > 1 else None)
    return declared.usage(provider, spec, prices, baseline_cached)


# --- where a price comes from ------------------------------------------------------------------

FAL_API = "fal pricing API"


@dataclass(frozen=True)
class Quote:
    """A unit price, in USD per one of our units, and where and when it was read."""

    usd: float
    source: str
    date: str


def table_source(prices: PriceTable) -> str:
    return f"table, as of {prices.as_of}"


# fal's pricing API gives each endpoint a `unit_price` per `unit` in a `currency`; the unit is a
# free string ("Values are expressed per model's billing unit", the page lists none). These are
# the names read as one of our units, after lowercasing, "_"/"-" as spaces and a plural "s"
# dropped; a leading count divides ("1000 steps": the price of 1000 steps). An image model's
# price "per image" is read per megapixel: fal bills image models "per image or per megapixel of
# output, where higher resolutions cost proportionally more"
# (https://fal.ai/docs/documentation/model-apis/pricing), and the FLUX apps' pages price per
# megapixel, so a 1 MP image costs the unit price and a larger one proportionally more; read so,
# a flat per-image price is never under-counted (every image counts at least 1 MP). Any other
# unit (GPU seconds, tokens, ...) is one a run does not count: the table prices that line.
_FAL_UNITS: dict[str, Unit] = {
    "megapixel": "megapixel",
    "mp": "megapixel",
    "image": "megapixel",
    "step": "step",
    "training step": "step",
    "request": "request",
    "call": "request",
    "run": "request",
    # seconds of video made; a bare "second" may be GPU time (fal's serverless apps): not read
    "video second": "video-second",
}
_FAL_UNIT = re.compile(r"(?:per )?(?:(\d[\d,]*(?:\.\d+)?) ?)?([a-z][a-z ]*?)s?")


def fal_unit_price(entry: Mapping[str, Any], unit: Unit) -> float | None:
    """USD per `unit` from one price of fal's pricing API ({endpoint_id, unit_price, unit,
    currency}); None when it is not in USD, not a price, or per a unit a run does not count."""
    price, name = entry.get("unit_price"), entry.get("unit")
    if isinstance(price, bool) or not isinstance(price, int | float) or not math.isfinite(price):
        return None
    if price < 0 or str(entry.get("currency") or "").strip().upper() != "USD" or not isinstance(name, str):
        return None
    spelled = " ".join(name.lower().replace("_", " ").replace("-", " ").split())
    match = _FAL_UNIT.fullmatch(spelled)
    if match is None or _FAL_UNITS.get(match[2]) != unit:
        return None
    count = float(match[1].replace(",", "")) if match[1] else 1.0
    return float(price) / count if count > 0 else None


def stamped(
    lines: Iterable[UsageLine], quotes: Mapping[tuple[str, str, str], Quote], prices: PriceTable
) -> list[UsageLine]:
    """`lines`, each with its price, source and date: the quote for (provider, item, unit) when
    there is one (the provider's pricing API), else the table's price. A line that has a price
    keeps it; one of a provider without prices (offline) stays as it is: it costs nothing."""
    out = []
    for line in lines:
        quote = quotes.get((line.provider, line.item, line.unit))
        if line.unit_price_usd is not None or (quote is None and not prices.prices(line.provider)):
            out.append(line)
            continue
        quote = quote or Quote(
            prices.price(line.provider, line.item, line.unit), table_source(prices), prices.as_of
        )
        update = {"unit_price_usd": quote.usd, "price_source": quote.source, "price_date": quote.date}
        out.append(line.model_copy(update=update))
    return out


# --- pricing -----------------------------------------------------------------------------------


def _price_of(line: UsageLine, prices: PriceTable) -> tuple[float, str]:
    """The line's own price and where it came from, else the table's."""
    if line.unit_price_usd is None:
        return prices.price(line.provider, line.item, line.unit), table_source(prices)
    source = line.price_source or "as reported"
    if line.price_date and line.price_date not in source:
        source += f", {line.price_date}"
    return line.unit_price_usd, source


def priced(lines: Iterable[UsageLine], prices: PriceTable) -> tuple[float, str]:
    """(USD, how it was reckoned) of usage lines: lines of one item at one price are summed, each
    shown with its price's source and date."""
    total = 0.0
    groups: dict[tuple[str, str, float, str], float] = {}
    walls: dict[tuple[str, str, float, str], tuple[int, float]] = {}  # several GPUs: theirs, the wall time
    for line in lines:
        each, source = _price_of(line, prices)
        total += each * line.quantity
        key = (line.item, line.unit, each, source)
        groups[key] = groups.get(key, 0.0) + line.quantity
        if line.gpus and line.wall_seconds is not None:
            walls[key] = (line.gpus, walls.get(key, (0, 0.0))[1] + line.wall_seconds)
    parts = [
        f"{quantity:.4g} {unit}{'' if quantity == 1 else 's'} of {item} x ${each:g} ({source})"
        + (f" = {walls[key][0]} GPUs x {walls[key][1]:.0f} s" if key in walls else "")
        for key, quantity in groups.items()
        for item, unit, each, source in [key]
    ]
    return round(total, 6), "; ".join(parts) or "nothing billed"


def month_of(when: datetime) -> str:
    return when.strftime("%Y-%m")


def estimated(
    kind: str,
    spec: Mapping[str, Any],
    prices: PriceTable,
    previous: Mapping[str, Any] | None,
    *,
    baseline_cached: bool = False,
) -> Cost:
    """The cost a status shows when a run starts: its estimate, the resource's earlier spend."""
    usd, detail = priced(expected_usage(kind, spec, prices, baseline_cached=baseline_cached), prices)
    assumed = pricing_kind(kind).assumes(prices)
    if assumed and usd > 0:
        detail += f" ({assumed})"
    return Cost(
        estimated_usd=usd,
        by_month=dict((previous or {}).get("byMonth") or {}),
        counted_requests=list((previous or {}).get("countedRequests") or []),
        prices_as_of=prices.as_of,
        detail=f"estimate: {detail}"[:1024],
    )


def settled(cost: Cost, usage: list[UsageLine] | None, prices: PriceTable, started: datetime) -> Cost:
    """The cost once a run has ended: the actual cost from its usage (or, when the provider's
    billing cannot be known, the estimate) added to the month the run started. A request already
    counted (paid output delivered by a later attempt) is not added again."""
    by_month = dict(cost.by_month)
    counted = list(cost.counted_requests)
    if usage is None:
        actual, detail, added = None, f"actual unknown; {cost.detail}", cost.estimated_usd
    else:
        actual, reckoned = priced(usage, prices)
        detail = f"actual: {reckoned}"
        new = [line for line in usage if not line.request or line.request not in counted]
        added, _ = priced(new, prices)
        if len(new) < len(usage):
            detail += " (paid by an earlier attempt, counted then)"
        counted += sorted({line.request for line in new if line.request})
    month = month_of(started)
    by_month[month] = round(by_month.get(month, 0.0) + added, 6)
    update = {
        "actual_usd": actual,
        "by_month": by_month,
        "counted_requests": counted[-100:],
        "prices_as_of": prices.as_of,
        "detail": detail[:1024],
    }
    return cost.model_copy(update=update)


class Budgets(BaseModel):
    """Monthly budgets in USD; unset means no limit. The operator enforces them
    (controller/budget.py); the HTTP API shows them."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    namespace_monthly_usd: float | None = Field(default=None, ge=0, description="For every namespace.")
    owner_monthly_usd: float | None = Field(default=None, ge=0, description="For every owner.")
    namespaces: dict[str, float] = Field(default={}, description="Per namespace, over the default.")
    owners: dict[str, float] = Field(default={}, description="Per owner, over the default.")


@dataclass(frozen=True)
class Limits:
    namespace: float | None
    owner: float | None
    namespace_from: str  # where the namespace's limit comes from, for the message
    owner_from: str


@dataclass(frozen=True)
class Spender:
    """One resource's share of a month's spend."""

    uid: str
    namespace: str
    owner: str
    by_month: Mapping[str, float]
    under_way: float  # the estimate of a run whose Job exists and is not recorded yet


def limits(budgets: Budgets, namespace: str, owner: str, source: str) -> Limits:
    """The limits `budgets` set for a resource of `owner` in `namespace` (`source`: where they are
    set, for messages)."""
    return Limits(
        budgets.namespaces.get(namespace, budgets.namespace_monthly_usd),
        budgets.owners.get(owner, budgets.owner_monthly_usd),
        source,
        source,
    )


def headroom(
    uid: str, namespace: str, owner: str, month: str, spenders: list[Spender], limits: Limits
) -> tuple[float, str] | None:
    """What the monthly limits leave a run this month, at most, and whose limit that is: (USD,
    "namespace NS" or "owner O"); None without limits. The run's own earlier spend counts, as in
    `exceeded`."""
    others = [s for s in spenders if s.uid != uid]
    mine = next((s for s in spenders if s.uid == uid), None)
    own = mine.by_month.get(month, 0.0) if mine is not None else 0.0
    left = [
        (limit - own - sum(s.by_month.get(month, 0.0) + s.under_way for s in share), who)
        for limit, who, share in (
            (limits.namespace, f"namespace {namespace}", [s for s in others if s.namespace == namespace]),
            (limits.owner, f"owner {owner}", [s for s in others if s.owner == owner]),
        )
        if limit is not None
    ]
    return min(left, default=None)


def exceeded(
    uid: str,
    namespace: str,
    owner: str,
    estimate: float,
    month: str,
    spenders: list[Spender],
    limits: Limits,
) -> tuple[float, str, float, str] | None:
    """The first monthly limit a run of `estimate` USD would exceed: (limit, whose, spent, where it is
    set); None when it fits. Pure: the operator (controller/budget.py) and re-evaluations use it."""
    if limits.namespace is None and limits.owner is None:
        return None
    others = [s for s in spenders if s.uid != uid]
    mine = next((s for s in spenders if s.uid == uid), None)
    own = mine.by_month.get(month, 0.0) if mine is not None else 0.0

    def spent(share: Iterable[Spender]) -> float:
        return sum(s.by_month.get(month, 0.0) + s.under_way for s in share)

    checks = (
        (
            limits.namespace,
            f"namespace {namespace}",
            [s for s in others if s.namespace == namespace],
            limits.namespace_from,
        ),
        (limits.owner, f"owner {owner}", [s for s in others if s.owner == owner], limits.owner_from),
    )
    for limit, who, share, source in checks:
        if limit is None:
            continue
        used = spent(share) + own
        if used + estimate > limit + 1e-9:
            return limit, who, used, source
    return None
