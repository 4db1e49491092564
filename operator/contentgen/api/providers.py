"""The providers as the API and every layer above it know them: what each one is, declared once.

Code outside `providers/` never compares a provider's name (tests/providers/test_provider_names.py):
it asks the provider's entry here (`provider_entry(name)`), or, in a run, the provider's outputs, which
carry what they are billed by and whether they are placeholders (providers/base.py). `providers/`
builds each one by name from its own registry, whose entries are these names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema


@dataclass(frozen=True)
class Setting:
    """One of a provider's own settings beyond its key: its field of the workers' settings
    (providers/settings.py's ProviderSettings, read from CONTENTGEN_ and the field's name in
    capitals), which the operator passes into each of the provider's Jobs, and the chart value under
    the provider's section that sets it (`fal.storeIO`; '': the chart sets it elsewhere, as its GPU
    section does the cluster's)."""

    field: str
    value: str = ""

    @property
    def variable(self) -> str:
        return f"CONTENTGEN_{self.field.upper()}"


@dataclass(frozen=True)
class Provider:
    name: str
    # labelled placeholders, made without network or keys: nothing is paid for them (offline)
    placeholders: bool = False
    # the cluster's own GPUs: a GPU Job in the platform's queues, billed by the GPU time it holds,
    # with the settings only its own models take (memory plans, trainer settings, checkpoints)
    own_gpus: bool = False
    # the environment variable of its API key, for a paid provider reached over the network
    key: str = ""
    # its price list names its apps, not our models, and counts each app's units its own way (fal)
    prices_by_app: bool = False
    # the most pictures one request makes (0: no limit)
    max_images: int = 0
    # the ImageGeneration models it draws (api/image.py's ImageModel), each by the app it runs on,
    # which names its price where it prices by app; empty: every model (the cluster refuses one
    # that has no open weights, api/image.py's NO_OPEN_WEIGHTS)
    draws: Mapping[str, str] = field(default_factory=dict, hash=False)
    # why it draws those alone, said where another is refused
    draws_why: str = ""
    # whether its transcripts can say who speaks (the cluster stages no diarisation model)
    speaker_labels: bool = True
    # whether a request in flight can be cancelled at the provider (fal's queue)
    cancels: bool = False
    # whether its trainer stores checkpoints as it trains and scores each between steps, so that a
    # training can stop early, be stopped and kept, and go on from a version (the cluster's own;
    # offline simulates it); fal's trainers return one LoRA at the end
    trains_live: bool = False
    # what it makes: pictures (images, clips, LoRAs and the pictures that judge them), transcripts
    makes: tuple[str, ...] = ("pictures",)
    # what the web UI's create forms say beside its name ('': its name alone)
    note: str = ""
    # its published prices, the price table's defaults (pricing/): USD per unit, per item
    # ({item: {unit: usd}}; the chart's `prices` replaces them); none: free, or priced by GPU time
    prices: Mapping[str, Mapping[str, float]] = field(default_factory=dict, hash=False)
    # its own settings beyond its key: the chart, the operator and its Jobs' workers pass them on
    settings: tuple[Setting, ...] = ()

    @property
    def key_secret_variable(self) -> str:
        """The operator's setting naming the Secret that holds its key (__NAME, __KEY beside it)."""
        return f"CONTENTGEN_{self.name.upper()}_KEY_SECRET"

    @property
    def chart_secret(self) -> str:
        """The chart's value that names that Secret."""
        return f"{self.name}.existingSecret"


OFFLINE = Provider(
    "offline",
    placeholders=True,
    trains_live=True,
    makes=("pictures", "transcripts"),
    note="free, labelled placeholders",
    settings=(Setting("offline_step_seconds"),),
)
# max_images: on every FLUX app fal serves. Its prices: each app's page; its LoRA trainers' per
# step are the base models' table's (api/base_models.py), added by pricing/.
FAL = Provider(
    "fal",
    key="FAL_KEY",
    prices_by_app=True,
    max_images=4,
    # https://fal.ai/docs/model-api-reference/image-generation-api/
    draws={
        "flux-dev": "fal-ai/flux/dev",
        "flux-schnell": "fal-ai/flux/schnell",
        "flux-pro": "fal-ai/flux-pro/v1.1",
        "flux-lora": "fal-ai/flux-lora",
        # https://fal.ai/docs/model-api-reference/image-generation-api/z-image-turbo-lora: up to 3
        # LoRAs, 1 to 8 inference steps (8 by default), up to 4 images a request
        "z-image-turbo": "fal-ai/z-image/turbo/lora",
    },
    draws_why="fal's apps for the other models were not read",
    cancels=True,
    settings=(Setting("fal_store_io", "storeIO"), Setting("fal_pricing_api", "pricingApi")),
    prices={
        "fal-ai/flux/dev": {"megapixel": 0.025},
        "fal-ai/flux/schnell": {"megapixel": 0.003},
        "fal-ai/flux-pro/v1.1": {"megapixel": 0.04},
        "fal-ai/flux-lora": {"megapixel": 0.035},
        # https://fal.ai/docs/model-api-reference/image-generation-api/z-image-turbo-lora: "Cost per
        # Megapixel $0.0085"
        "fal-ai/z-image/turbo/lora": {"megapixel": 0.0085},
        # the dataset's captions (api/lora's FAL_CAPTION_APP)
        "openrouter/router/vision": {"request": 0.001},
        # video (api/video/table.py's models): per second of video, as each app's page prices it
        "fal-ai/wan/v2.2-a14b/text-to-video/lora": {"video-second": 0.10},
        "fal-ai/wan/v2.2-a14b/image-to-video 480p": {"video-second": 0.04},
        "fal-ai/wan/v2.2-a14b/image-to-video 580p": {"video-second": 0.06},
        "fal-ai/wan/v2.2-a14b/image-to-video 720p": {"video-second": 0.08},
        "fal-ai/ltxv-13b-098-distilled": {"video-second": 0.02},
        "fal-ai/ltxv-13b-098-distilled/image-to-video": {"video-second": 0.02},
        "fal-ai/kling-video/v2.5-turbo/pro/text-to-video": {"video-second": 0.07},
        "fal-ai/kling-video/v2.5-turbo/pro/image-to-video": {"video-second": 0.07},
    },
)
ASSEMBLYAI = Provider(
    "assemblyai",
    key="ASSEMBLYAI_API_KEY",
    makes=("transcripts",),
    settings=(
        Setting("assemblyai_resolve_window_seconds", "resolveWindowSeconds"),
        Setting("assemblyai_unresolved", "unresolved"),
    ),
    prices={
        "universal-3-5-pro": {"audio-hour": 0.21},
        "universal-3-pro": {"audio-hour": 0.21},
        "universal-2": {"audio-hour": 0.15},
        "speaker-labels": {"audio-hour": 0.02},
    },
)
CLUSTER = Provider(
    "cluster",
    own_gpus=True,
    speaker_labels=False,
    trains_live=True,
    makes=("pictures", "transcripts"),
    note="the cluster's own GPUs",
    settings=tuple(  # the chart's GPU section sets them (gpu.fluxModel, ...)
        Setting(f"cluster_{name}")
        for name in ("flux_model", "flux_schnell_model", "inference_steps", "whisper_batch_size")
    ),
)

# What a spec's `provider` is when it names none: the paid provider for the work it makes.
PICTURES_DEFAULT, TRANSCRIPTS_DEFAULT = FAL.name, ASSEMBLYAI.name

# In the order a spec's schema lists them: the paid provider first, then offline, then the cluster's.
PROVIDERS: dict[str, Provider] = {p.name: p for p in (FAL, ASSEMBLYAI, OFFLINE, CLUSTER)}
# The one provider on the cluster's own GPUs: the API's rules refuse its settings with any other.
(OWN_GPUS,) = (p.name for p in PROVIDERS.values() if p.own_gpus)
# The providers whose trainers score checkpoints while they train (training.stopWhen, continueFrom).
TRAINS_LIVE = tuple(p.name for p in PROVIDERS.values() if p.trains_live)


def making(makes: str) -> tuple[Provider, ...]:
    """The providers that make `makes` (pictures or transcripts), in PROVIDERS' order."""
    return tuple(p for p in PROVIDERS.values() if makes in p.makes)


def choices(makes: str, own_gpus: bool = True) -> tuple[str, ...]:
    """The providers a spec's `provider` may name for work that `makes` pictures or transcripts
    (without the cluster's own GPUs, where `own_gpus` is False)."""
    return tuple(p.name for p in making(makes) if own_gpus or not p.own_gpus)


@dataclass(frozen=True)
class ProviderName:
    """A spec's `provider`: one of `choices(makes, own_gpus)`, read from PROVIDERS when it is
    checked and when a schema is written (so that a provider registered after this module, a
    test's, is accepted and listed alike). Its error is pydantic's own for a Literal's."""

    makes: str
    own_gpus: bool = True

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, core_schema.str_schema())

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {**handler(schema), "enum": list(choices(self.makes, self.own_gpus))}

    def _check(self, name: str) -> str:
        allowed = choices(self.makes, self.own_gpus)
        if name not in allowed:
            quoted = [repr(n) for n in allowed]
            expected = f"{', '.join(quoted[:-1])} or {quoted[-1]}" if len(quoted) > 1 else quoted[0]
            raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
        return name


# The types of the API's `provider` fields, from the entries above: a new provider is declared once.
PictureProvider = Annotated[str, ProviderName("pictures")]
TranscriptProvider = Annotated[str, ProviderName("transcripts")]
PaidOrOfflinePictures = Annotated[str, ProviderName("pictures", own_gpus=False)]


def provider_entry(name: str) -> Provider:
    """The entry of the provider called `name`; one with no traits for a name no provider has
    (a record from before it, a test's fake)."""
    return PROVIDERS.get(name) or Provider(name)


def placeholders(name: str) -> bool:
    """Whether what the provider `name` makes is a labelled placeholder (nothing paid for)."""
    return provider_entry(name).placeholders


T = TypeVar("T")


class ByProviders(Generic[T]):
    """A class attribute made from the providers' rows when it is read, and made again once they
    change: a model's rules that name providers (api/image.py) judge a provider registered after
    the model's import by its own row."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._made: tuple[tuple[Provider, ...], T] | None = None

    def __get__(self, instance: object, owner: type | None = None) -> T:
        rows = tuple(PROVIDERS.values())
        if self._made is None or self._made[0] != rows:
            self._made = (rows, self._make())
        return self._made[1]
