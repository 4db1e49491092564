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

from .base import Captioner, ImageGenerator, LoraTrainer, Transcriber, VideoGenerator
from .settings import ClusterWorkerSettings, ProviderSettings, from_environment

if TYPE_CHECKING:
    from .cluster.provider import ClusterProvider

FAL_KEY_ENV = "FAL_KEY"
ASSEMBLYAI_KEY_ENV = "ASSEMBLYAI_API_KEY"

TRAINERS = ("fal", "offline", "cluster")
IMAGE_GENERATORS = ("fal", "offline", "cluster")
TRANSCRIBERS = ("assemblyai", "offline", "cluster")
CAPTIONERS = ("fal", "offline")
# Video: fal's apps (providers/fal/video.py), the cluster's Wan and LTX-Video pipelines
# (providers/cluster/video.py) and offline; api/video.py's MODELS says what each model takes.
VIDEO_GENERATORS = ("fal", "offline", "cluster")

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
        from .cluster.staging import staged
        from .cluster.whisper import WhisperTranscriber

        worker = from_environment(ClusterWorkerSettings, env)
        return WhisperTranscriber(
            lambda model, required: staged(
                model, required, root=worker.cluster_models_dir, url=worker.cluster_models_store
            ),
            gpus=worker.gpu_count,
            device=worker.cluster_device,  # as training and generation take it
            batch_size=_settings(env).cluster_whisper_batch_size,
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


def video_generator(name: str, *, env: Mapping[str, str] | None = None) -> VideoGenerator:
    """The video generator called `name`: fal, cluster or offline."""
    if name == "fal":
        from .fal import FalProvider
        from .fal.video import FalVideoGenerator

        return FalVideoGenerator(FalProvider(_key(FAL_KEY_ENV, env), store_io=_settings(env).fal_store_io))
    if name == "offline":
        from .offline_video import OfflineVideoGenerator

        return OfflineVideoGenerator()
    if name == "cluster":  # Wan and LTX-Video on the staged models' root (providers/cluster/video.py)
        from .cluster.video import ClusterVideoGenerator

        worker = from_environment(ClusterWorkerSettings, env)
        return ClusterVideoGenerator(
            worker.cluster_models_dir,
            device=worker.cluster_device,
            gpus=worker.gpu_count,
            inference_steps=_settings(env).cluster_inference_steps or None,
            models_store=worker.cluster_models_store,
        )
    raise InvalidInput(f"no video generator is called {name!r}; choose one of {', '.join(VIDEO_GENERATORS)}")


def cluster_provider(env: Mapping[str, str] | None = None) -> ClusterProvider:
    """The cluster's own GPUs (docs/cluster-training.md): the staged models and inference steps
    (`ProviderSettings.cluster_*`), the models' root and store, the device and the GPUs held
    (`ClusterWorkerSettings`)."""
    from .cluster.provider import ClusterProvider

    settings, worker = _settings(env), from_environment(ClusterWorkerSettings, env)
    return ClusterProvider(
        worker.cluster_models_dir,
        flux_model=settings.cluster_flux_model,
        schnell_model=settings.cluster_flux_schnell_model,
        device=worker.cluster_device,
        gpus=worker.gpu_count,
        inference_steps=settings.cluster_inference_steps or None,
        models_store=worker.cluster_models_store,
        pool_url=worker.cluster_pool_url,
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
    return from_environment(ProviderSettings, env)


def _key(variable: str, env: Mapping[str, str] | None) -> str:
    key = (os.environ if env is None else env).get(variable, "").strip()
    if not key:
        raise MissingCredentials(
            f"{variable} is not set: set it (in the cluster, through the chart's "
            f"{_CHART_SECRETS[variable]}) or {MissingCredentials.OFFLINE}"
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
    "video_generator",
]
