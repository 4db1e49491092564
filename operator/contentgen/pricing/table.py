"""The price table: the providers' published prices (their rows' defaults), the cluster's GPU
prices and the seconds its work is estimated to take; a contract's prices over them
(CONTENTGEN_PRICES)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from contentgen.api.base_models import FAL_TRAINERS
from contentgen.api.image import ImageModel
from contentgen.api.providers import CLUSTER, FAL, PROVIDERS, provider_entry
from contentgen.api.video import MODELS as VIDEO_MODELS

PRICES_AS_OF = "2026-11-22"
MEGAPIXEL = 1_000_000


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
