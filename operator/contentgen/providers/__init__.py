"""The providers behind the pipeline's interfaces (see `base`), chosen by name from one registry.

Each provider is registered once (`REGISTRY`): its entry (api/providers.py, what every layer may
know of it) and a function per thing it makes. `trainer(name)`, `image_generator(name)`,
`transcriber(name)`, `captioner(name)` and `video_generator(name)` look one up and build it,
reading keys from the environment: FAL_KEY for `fal`, ASSEMBLYAI_API_KEY for `assemblyai`; `offline`
needs none; `cluster` a staged model and its device settings (providers/cluster). A live provider
whose key is missing fails at once with `MissingCredentials`, before any work is done.

The provider modules are imported on demand: their SDKs are in the worker's dependencies only.
"""

from __future__ import annotations

import importlib.util
import logging
import operator
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from contentgen.api.cost import Unit
from contentgen.api.providers import ASSEMBLYAI, CLUSTER, FAL, OFFLINE, PROVIDERS, Provider
from contentgen.errors import InvalidInput, MissingCredentials
from contentgen.pricing import Quote

from .base import Captioner, ImageGenerator, LoraTrainer, Transcriber, VideoGenerator
from .settings import ClusterWorkerSettings, ProviderSettings, from_environment

if TYPE_CHECKING:
    from .cluster.provider import ClusterProvider
    from .fal import FalProvider
    from .offline import OfflineProvider

FAL_KEY_ENV = FAL.key
ASSEMBLYAI_KEY_ENV = ASSEMBLYAI.key

Env = Mapping[str, str] | None
T = TypeVar("T")


@dataclass(frozen=True)
class Registered:
    """A provider as the pipeline builds it: its entry (api/providers.py) and what it makes, each
    by a function of the environment; None for what it does not make."""

    provider: Provider
    trainer: Callable[[Env], LoraTrainer] | None = None
    image_generator: Callable[[Env], ImageGenerator] | None = None
    transcriber: Callable[[Env], Transcriber] | None = None
    captioner: Callable[[Env], Captioner] | None = None
    video_generator: Callable[[Env], VideoGenerator] | None = None
    # its own prices for (item, unit) pairs, read from its pricing API (None: it publishes none)
    quotes: Callable[[list[tuple[str, Unit]], Env], dict[tuple[str, str, str], Quote]] | None = None


def _fal(env: Env) -> FalProvider:
    from .fal import FalProvider

    return FalProvider(api_key(FAL, env), store_io=_settings(env).fal_store_io)


def _fal_captioner(env: Env) -> Captioner:
    from .fal import FalProvider
    from .fal.captions import FalCaptioner

    # A caption takes seconds, not minutes: poll every second rather than every five.
    key, store_io = api_key(FAL, env), _settings(env).fal_store_io
    return FalCaptioner(FalProvider(key, poll_interval=1.0, store_io=store_io))


def _fal_video(env: Env) -> VideoGenerator:
    from .fal.video import FalVideoGenerator

    return FalVideoGenerator(_fal(env))


def _fal_quotes(wanted: list[tuple[str, Unit]], env: Env) -> dict[tuple[str, str, str], Quote]:
    key = (os.environ if env is None else env).get(FAL_KEY_ENV, "").strip()
    if not key or not _settings(env).fal_pricing_api:
        return {}
    from .fal.pricing import FalPricing

    return FalPricing(key).quotes(wanted)


def _assemblyai(env: Env) -> Transcriber:
    from .assemblyai import AssemblyAIProvider

    settings = _settings(env)
    return AssemblyAIProvider(
        api_key(ASSEMBLYAI, env),
        resolve_window=settings.assemblyai_resolve_window_seconds,
        resubmit_unresolved=settings.assemblyai_unresolved == "resubmit",
    )


def _offline(env: Env) -> OfflineProvider:
    from .offline import OfflineProvider

    return OfflineProvider()


def _offline_video(env: Env) -> VideoGenerator:
    from .offline_video import OfflineVideoGenerator

    return OfflineVideoGenerator()


def _cluster_whisper(env: Env) -> Transcriber:
    from .cluster.staging import staged
    from .cluster.transcription.whisper import WhisperTranscriber

    worker = from_environment(ClusterWorkerSettings, env)
    return WhisperTranscriber(
        lambda model, required: staged(
            model, required, root=worker.cluster_models_dir, url=worker.cluster_models_store
        ),
        gpus=worker.gpu_count,
        device=worker.cluster_device,  # as training and generation take it
        batch_size=_settings(env).cluster_whisper_batch_size,
    )


def _cluster_video(env: Env) -> VideoGenerator:
    # Wan and LTX-Video on the staged models' root (providers/cluster/generation/video.py)
    from .cluster.generation.video import ClusterVideoGenerator

    worker = from_environment(ClusterWorkerSettings, env)
    return ClusterVideoGenerator(
        worker.cluster_models_dir,
        device=worker.cluster_device,
        gpus=worker.gpu_count,
        inference_steps=_settings(env).cluster_inference_steps or None,
        models_store=worker.cluster_models_store,
        pool_url=worker.cluster_pool_url,
    )


def _pooled(env: Env) -> bool:
    return bool(from_environment(ClusterWorkerSettings, env).cluster_pool_url)


def _in_gpu_image(
    make: Callable[[Env], T], *modules: str, elsewhere: Callable[[Env], bool] = lambda env: False
) -> Callable[[Env], T]:
    """`make`, once this image is found to hold `modules`: provider cluster's work runs in the GPU
    worker image, and the worker image (the chart's gpu.image set to it) lacks them. Said in
    one line, a refusal that is not retried, rather than an ImportError's traceback, retried.
    `elsewhere(env)`: the work is done elsewhere (a warm pool draws a pooled Job's pictures, and
    that Job runs the worker image), so nothing is asked of this image."""

    def made(env: Env) -> T:
        missing = [] if elsewhere(env) else [m for m in modules if importlib.util.find_spec(m) is None]
        if missing:
            raise InvalidInput(
                f"provider cluster: this worker image has no {' or '.join(missing)}; its Jobs run the "
                "GPU worker image (the chart's gpu.image, ghcr.io/contentgen/contentgen-worker-gpu)"
            )
        return make(env)

    return made


# Each provider once, in the order the choices are named in messages. Video: fal's apps
# (providers/fal/video.py), the cluster's Wan and LTX-Video pipelines (providers/cluster/generation/video.py)
# and offline; api/video/table.py's MODELS says what each model takes.
REGISTRY: dict[str, Registered] = {
    r.provider.name: r
    for r in (
        Registered(
            FAL,
            trainer=_fal,
            image_generator=_fal,
            captioner=_fal_captioner,
            video_generator=_fal_video,
            quotes=_fal_quotes,
        ),
        Registered(ASSEMBLYAI, transcriber=_assemblyai),
        Registered(
            OFFLINE,
            trainer=_offline,
            image_generator=_offline,
            transcriber=_offline,
            captioner=_offline,
            video_generator=_offline_video,
        ),
        Registered(
            CLUSTER,
            trainer=_in_gpu_image(lambda env: cluster_provider(env), "torch", "diffusers"),
            image_generator=_in_gpu_image(
                lambda env: cluster_provider(env), "torch", "diffusers", elsewhere=_pooled
            ),
            transcriber=_in_gpu_image(_cluster_whisper, "faster_whisper"),
            video_generator=_in_gpu_image(_cluster_video, "torch", "diffusers", elsewhere=_pooled),
        ),
    )
}


def _offering(made: Callable[[Registered], object | None]) -> tuple[str, ...]:
    return tuple(name for name, registered in REGISTRY.items() if made(registered) is not None)


TRAINERS = _offering(lambda r: r.trainer)
IMAGE_GENERATORS = _offering(lambda r: r.image_generator)
TRANSCRIBERS = _offering(lambda r: r.transcriber)
CAPTIONERS = _offering(lambda r: r.captioner)
VIDEO_GENERATORS = _offering(lambda r: r.video_generator)


def _built(name: str, what: str, made: Callable[[Registered], Callable[[Env], T] | None], env: Env) -> T:
    registered = REGISTRY.get(name)
    factory = made(registered) if registered is not None else None
    if factory is None:
        raise InvalidInput(f"no {what} is called {name!r}; choose one of {', '.join(_offering(made))}")
    return factory(env)


def trainer(name: str, *, env: Mapping[str, str] | None = None) -> LoraTrainer:
    """The LoRA trainer called `name`: fal, offline or cluster."""
    return _built(name, "LoRA trainer", lambda r: r.trainer, env)


def image_generator(name: str, *, env: Mapping[str, str] | None = None) -> ImageGenerator:
    """The image generator called `name`: fal, offline or cluster."""
    return _built(name, "image generator", lambda r: r.image_generator, env)


def transcriber(name: str, *, env: Mapping[str, str] | None = None) -> Transcriber:
    """The transcriber called `name`: assemblyai, cluster (faster-whisper on a staged model) or
    offline."""
    return _built(name, "transcriber", lambda r: r.transcriber, env)


def captioner(name: str, *, env: Mapping[str, str] | None = None) -> Captioner:
    """The dataset captioner called `name`: fal (a vision-language model) or offline."""
    return _built(name, "captioner", lambda r: r.captioner, env)


def video_generator(name: str, *, env: Mapping[str, str] | None = None) -> VideoGenerator:
    """The video generator called `name`: fal, cluster or offline."""
    return _built(name, "video generator", lambda r: r.video_generator, env)


def cluster_provider(env: Mapping[str, str] | None = None) -> ClusterProvider:
    """The cluster's own GPUs (docs/cluster-training.md): the staged models and inference steps
    (`ProviderSettings.cluster_*`), the models' root and store, the device and the GPUs held
    (`ClusterWorkerSettings`)."""
    from .cluster.provider import ClusterProvider

    return ClusterProvider.from_environment(env)


def add(registered: Registered, put: Callable[[Any, Any, Any], object] = operator.setitem) -> None:
    """A provider declared outside the package, made one of the providers by one call: its row
    (what every layer knows of it) into api/providers.py's PROVIDERS, and what it makes into
    REGISTRY. `put` sets one entry (a test's `monkeypatch.setitem`, undone when the test ends).
    A name that is a provider's already is refused, and nothing is changed."""
    name = registered.provider.name
    if name in PROVIDERS or name in REGISTRY:
        raise InvalidInput(f"provider {name!r} is declared already: give yours a name of its own")
    put(PROVIDERS, name, registered.provider)
    put(REGISTRY, name, registered)


def price_quotes(
    provider: str, wanted: Iterable[tuple[str, Unit]], *, env: Mapping[str, str] | None = None
) -> dict[tuple[str, str, str], Quote]:
    """The provider's own prices for (item, unit) pairs, where it publishes them through an API
    (fal's pricing API, unless CONTENTGEN_FAL_PRICING_API=false); {} otherwise. Never raises: a
    price missing here is the price table's."""
    wanted = list(wanted)
    registered = REGISTRY.get(provider)
    if registered is None or registered.quotes is None or not wanted:
        return {}
    try:
        return registered.quotes(wanted, env)
    except Exception as exc:  # a price is never worth failing a paid run for
        logging.getLogger(__name__).warning("could not read %s's prices: %s", provider, type(exc).__name__)
        return {}


def _settings(env: Mapping[str, str] | None) -> ProviderSettings:
    return from_environment(ProviderSettings, env)


def api_key(provider: Provider, env: Mapping[str, str] | None = None) -> str:
    """`provider`'s API key, from its variable (Provider.key) in `env` (the process's when None);
    MissingCredentials, naming the variable and the chart's value that sets it, when it is unset."""
    key = (os.environ if env is None else env).get(provider.key, "").strip()
    if not key:
        raise MissingCredentials(
            f"{provider.key} is not set: set it (in the cluster, through the chart's "
            f"{provider.chart_secret}) or {MissingCredentials.OFFLINE}"
        )
    return key


__all__ = [
    "ASSEMBLYAI_KEY_ENV",
    "CAPTIONERS",
    "FAL_KEY_ENV",
    "IMAGE_GENERATORS",
    "REGISTRY",
    "TRAINERS",
    "TRANSCRIBERS",
    "VIDEO_GENERATORS",
    "Registered",
    "add",
    "api_key",
    "captioner",
    "cluster_provider",
    "image_generator",
    "price_quotes",
    "trainer",
    "transcriber",
    "video_generator",
]
