"""The providers behind the pipeline's interfaces (see `base`), chosen by name.

`trainer(name)`, `image_generator(name)`, `transcriber(name)` and `captioner(name)` build one,
reading keys from the environment: FAL_KEY for `fal`, ASSEMBLYAI_API_KEY for `assemblyai`;
`offline` needs none; `cluster` a staged model and its device settings (providers/cluster). A live
provider whose key is missing fails at once with `MissingCredentials`, before any work is done.

The provider modules are imported on demand: their SDKs are in the worker's dependencies only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from contentgen.api.cost import Unit
from contentgen.errors import InvalidInput, MissingCredentials
from contentgen.pricing import Quote

from .base import Captioner, ImageGenerator, LoraTrainer, Transcriber
from .settings import ProviderSettings

if TYPE_CHECKING:
    from .cluster.provider import ClusterProvider

FAL_KEY_ENV = "FAL_KEY"
ASSEMBLYAI_KEY_ENV = "ASSEMBLYAI_API_KEY"
GPU_COUNT_ENV = "CONTENTGEN_GPU_COUNT"

TRAINERS = ("fal", "offline", "cluster")
IMAGE_GENERATORS = ("fal", "offline", "cluster")
TRANSCRIBERS = ("assemblyai", "offline", "cluster")
CAPTIONERS = ("fal", "offline")

# where the Helm chart takes each key from
_CHART_SECRETS = {FAL_KEY_ENV: "fal.existingSecret", ASSEMBLYAI_KEY_ENV: "assemblyai.existingSecret"}


def trainer(name: str, *, env: Mapping[str, str] | None = None) -> LoraTrainer:
    """The LoRA trainer called `name`: fal, offline or cluster."""
    if name == "cluster":
        return cluster_provider(env)
    if name == "fal":
        from .fal import FalProvider

        return FalProvider(_key(FAL_KEY_ENV, env), store_io=_settings(env).fal_store_io)
    if name == "offline":
        from .offline import OfflineProvider

        return OfflineProvider()
    raise InvalidInput(f"no LoRA trainer is called {name!r}; choose one of {', '.join(TRAINERS)}")


def image_generator(name: str, *, env: Mapping[str, str] | None = None) -> ImageGenerator:
    """The image generator called `name`: fal, offline or cluster."""
    if name == "cluster":
        return cluster_provider(env)
    if name == "fal":
        from .fal import FalProvider

        return FalProvider(_key(FAL_KEY_ENV, env), store_io=_settings(env).fal_store_io)
    if name == "offline":
        from .offline import OfflineProvider

        return OfflineProvider()
    raise InvalidInput(f"no image generator is called {name!r}; choose one of {', '.join(IMAGE_GENERATORS)}")


def transcriber(name: str, *, env: Mapping[str, str] | None = None) -> Transcriber:
    """The transcriber called `name`: assemblyai, cluster (faster-whisper on a staged model) or
    offline."""
    if name == "assemblyai":
        from .assemblyai import AssemblyAIProvider

        settings = _settings(env)
        return AssemblyAIProvider(
            _key(ASSEMBLYAI_KEY_ENV, env),
            resolve_window=settings.assemblyai_resolve_window_seconds,
            resubmit_unresolved=settings.assemblyai_unresolved == "resubmit",
        )
    if name == "cluster":
        from .cluster.gpus import gpu_count
        from .cluster.staging import locate
        from .cluster.whisper import WhisperTranscriber

        return WhisperTranscriber(
            lambda model, required: locate(model, required, env=env), gpus=gpu_count(env)
        )
    if name == "offline":
        from .offline import OfflineProvider

        return OfflineProvider()
    raise InvalidInput(f"no transcriber is called {name!r}; choose one of {', '.join(TRANSCRIBERS)}")


def captioner(name: str, *, env: Mapping[str, str] | None = None) -> Captioner:
    """The dataset captioner called `name`: fal (a vision-language model) or offline."""
    if name == "fal":
        from .fal import FalProvider
        from .fal.captions import FalCaptioner

        # A caption takes seconds, not minutes: poll every second rather than every five.
        key, store_io = _key(FAL_KEY_ENV, env), _settings(env).fal_store_io
        return FalCaptioner(FalProvider(key, poll_interval=1.0, store_io=store_io))
    if name == "offline":
        from .offline import OfflineProvider

        return OfflineProvider()
    raise InvalidInput(f"no captioner is called {name!r}; choose one of {', '.join(CAPTIONERS)}")


def cluster_provider(env: Mapping[str, str] | None = None) -> ClusterProvider:
    """The cluster's own GPUs (docs/cluster-training.md): CONTENTGEN_CLUSTER_MODELS_DIR (the models'
    root), CONTENTGEN_CLUSTER_FLUX_MODEL and CONTENTGEN_CLUSTER_FLUX_SCHNELL_MODEL (directory names
    under it), CONTENTGEN_CLUSTER_DEVICE (cpu, cuda; unset: the GPU when there is one),
    CONTENTGEN_CLUSTER_INFERENCE_STEPS (unset: the model's own), CONTENTGEN_GPU_COUNT (GPUs the
    worker holds, for its GPU-seconds; 1)."""
    from .cluster.models import models_root
    from .cluster.provider import ClusterProvider

    values = os.environ if env is None else env

    def number(variable: str, default: int | None) -> int | None:
        text = values.get(variable, "").strip()
        if not text:
            return default
        if not text.isdigit() or int(text) < 1:
            raise InvalidInput(f"{variable} is {text!r}: set a whole number of at least 1, or unset it")
        return int(text)

    return ClusterProvider(
        models_root(values),
        flux_model=values.get("CONTENTGEN_CLUSTER_FLUX_MODEL", "").strip() or "FLUX.1-dev",
        schnell_model=values.get("CONTENTGEN_CLUSTER_FLUX_SCHNELL_MODEL", "").strip() or "FLUX.1-schnell",
        device=values.get("CONTENTGEN_CLUSTER_DEVICE", "").strip(),
        gpus=number(GPU_COUNT_ENV, 1) or 1,
        inference_steps=number("CONTENTGEN_CLUSTER_INFERENCE_STEPS", None),
        models_store=values.get("CONTENTGEN_CLUSTER_MODELS_STORE", "").strip(),
    )


def price_quotes(
    provider: str, wanted: Iterable[tuple[str, Unit]], *, env: Mapping[str, str] | None = None
) -> dict[tuple[str, str, str], Quote]:
    """The provider's own prices for (item, unit) pairs, where it publishes them through an API
    (fal's pricing API, unless CONTENTGEN_FAL_PRICING_API=false); {} otherwise. Never raises: a
    price missing here is the price table's."""
    wanted = list(wanted)
    if provider != "fal" or not wanted:
        return {}
    try:
        key = (os.environ if env is None else env).get(FAL_KEY_ENV, "").strip()
        if not key or not _settings(env).fal_pricing_api:
            return {}
        from .fal.pricing import FalPricing

        return FalPricing(key).quotes(wanted)
    except Exception as exc:  # a price is never worth failing a paid run for
        logging.getLogger(__name__).warning("could not read %s's prices: %s", provider, type(exc).__name__)
        return {}


def _settings(env: Mapping[str, str] | None) -> ProviderSettings:
    if env is None:
        return ProviderSettings()
    prefix = "CONTENTGEN_"
    fields = ProviderSettings.model_fields
    given = {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}
    return ProviderSettings.model_validate({k: v for k, v in given.items() if k in fields})


def _key(variable: str, env: Mapping[str, str] | None) -> str:
    key = (os.environ if env is None else env).get(variable, "").strip()
    if not key:
        raise MissingCredentials(
            f"{variable} is not set: set it (in the cluster, through the chart's "
            f"{_CHART_SECRETS[variable]}) or run with --offline"
        )
    return key


__all__ = [
    "ASSEMBLYAI_KEY_ENV",
    "FAL_KEY_ENV",
    "captioner",
    "cluster_provider",
    "image_generator",
    "price_quotes",
    "trainer",
    "transcriber",
]
