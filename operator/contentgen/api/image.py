"""ImageGeneration: a prompt in, images out (optionally styled by trained LoRAs)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field

from .base import ApiModel
from .common import (
    LORA_URL_RULE,
    MAX_URL_LENGTH,
    OWNER_PATTERN,
    CommonSpec,
    CommonStatus,
    LatestVersion,
    NewestVersions,
    ObjectName,
    VersionBase,
)
from .inputs import USES
from .providers import OWN_GPUS, PICTURES_DEFAULT, ByProviders, PictureProvider, Provider, making
from .rules import (
    Absent,
    AtMost,
    Differs,
    Empty,
    Equals,
    FewItems,
    GeneratedRule,
    Is,
    NotDefault,
    OneOf,
    Rule,
    SpecField,
    Term,
    ValueIs,
    generate,
)

# Width and height of each image_size preset (https://fal.ai/docs/documentation/model-apis/model-arguments).
IMAGE_SIZES = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
ImageModel = Literal[
    "flux-pro",
    "flux-dev",
    "flux-schnell",
    "flux-lora",
    "z-image-turbo",
    "z-image",
    "qwen-image-2512",
    "flux.2-klein-4b",
    "flux.2-klein-9b",
]
FLUX_MODELS = ("flux-pro", "flux-dev", "flux-schnell", "flux-lora")
MAX_LORAS = 5  # an ImageGeneration's loras, on any model that loads them


@dataclass(frozen=True)
class Denoising:
    """A model's inference steps and guidance where a request leaves them to it (its model card's
    example call), and the most LoRAs its app takes."""

    steps: int
    guidance: float
    max_loras: int = MAX_LORAS
    source: str = ""


# The newer families' models (FLUX's are left to their apps' own defaults, as before)
MODEL_DEFAULTS = {
    "z-image-turbo": Denoising(8, 0.0, 3, "https://huggingface.co/Tongyi-MAI/Z-Image-Turbo"),
    "z-image": Denoising(50, 4.0, 5, "https://huggingface.co/Tongyi-MAI/Z-Image"),
    "qwen-image-2512": Denoising(50, 4.0, 5, "https://huggingface.co/Qwen/Qwen-Image-2512"),
    "flux.2-klein-4b": Denoising(50, 4.0, 5, "https://huggingface.co/black-forest-labs/FLUX.2-klein-base-4B"),
    "flux.2-klein-9b": Denoising(50, 4.0, 5, "https://huggingface.co/black-forest-labs/FLUX.2-klein-base-9B"),
}
# The models that apply loras: fal's flux-lora, and the newer families' (each loads its own family's
# LoRAs: api/base_models.py's loads_on), which draw with them on every provider that draws them.
LORA_MODELS = ("flux-lora", *MODEL_DEFAULTS)
ImageSize = Literal["square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9"]
# provider cluster: how FLUX is held on the GPU (providers/cluster/memory.py's GENERATION_WANTED:
# the training's training.memoryPlan names, and offload)
ImageMemoryPlan = Literal["auto", "bf16", "offload", "int8", "fp8", "nf4"]
BF16_PLANS = ("auto", "bf16", "offload")  # those of every model the cluster draws (not only FLUX.1's)


LORA_ENTRY_RULES: list[GeneratedRule] = [
    generate(
        Rule(
            None,
            "set exactly one of loraRef (a LoraTraining in this namespace) or url",
            (OneOf(SpecField("loraRef", "object"), SpecField("url", "string")),),
        )
    )
]

MODEL = SpecField("model", "string", "flux-dev")
PROVIDER = SpecField("provider", "string", PICTURES_DEFAULT)
MEMORY_PLAN = SpecField("memoryPlan", "string", "auto")
DENOISING = SpecField("denoising", "string")
NUM_IMAGES = SpecField("numImages", "integer", 1)
LORAS = SpecField("loras", "array")
ON_OWN_GPUS = Is(PROVIDER, OWN_GPUS)

NO_OPEN_WEIGHTS = ("flux-pro",)  # what the cluster's own GPUs cannot draw: nothing to stage


def drawn_by(model: str) -> tuple[str, ...]:
    """The providers that draw `model` (each provider's row: the models it draws, or every one)."""
    return tuple(
        p.name
        for p in making("pictures")
        if (not p.draws or model in p.draws) and not (p.own_gpus and model in NO_OPEN_WEIGHTS)
    )


def _other_than(provider: Provider) -> Term:
    """The spec names another provider (the default's own form where `provider` is the default)."""
    return NotDefault(PROVIDER) if provider.name == PROVIDER.default else Differs(PROVIDER, provider.name)


def _models_rule(provider: Provider) -> Rule:
    """The models a provider's row says it draws (one that lists them)."""
    why = f" ({provider.draws_why})" if provider.draws_why else ""
    return Rule(
        MODEL,
        f"{provider.name} draws {', '.join(provider.draws)} only{why}: use provider offline for this model",
        (_other_than(provider), Equals(MODEL, tuple(provider.draws))),
    )


def _limits(provider: Provider) -> Iterator[Rule]:
    """What a provider's row limits beyond its models: the pictures a request makes, the LoRAs each
    of its apps takes (more would be refused by the provider after admission said yes)."""
    other = _other_than(provider)
    if provider.max_images:
        most = provider.max_images
        yield Rule(
            NUM_IMAGES,
            f"{provider.name}'s apps make at most {most} images per request: ask for {most} or fewer "
            "(create another ImageGeneration for more), or use provider offline",
            (other, AtMost(NUM_IMAGES, most)),
        )
    for model, app in provider.draws.items():
        fewer = MODEL_DEFAULTS.get(model, Denoising(0, 0)).max_loras
        if fewer < MAX_LORAS:
            yield Rule(
                LORAS,
                f"{provider.name}'s {app} takes at most {fewer} LoRAs: give {fewer} or fewer, or use "
                "provider offline",
                (other, Differs(MODEL, model), FewItems(LORAS, fewer)),
            )


def image_rules() -> list[GeneratedRule]:
    """The ImageGeneration spec's rules across fields, the providers' from their rows as they are
    now (a provider registered after this module's import included)."""
    pictures = making("pictures")
    return [
        generate(r)
        for r in (
            Rule(
                LORAS,
                f"loras are allowed only with a model that loads them ({', '.join(LORA_MODELS)})",
                (Equals(MODEL, LORA_MODELS), Empty(LORAS)),
            ),
            *(_models_rule(p) for p in pictures if p.draws),
            Rule(
                MODEL,
                f"{', '.join(NO_OPEN_WEIGHTS)} has no open weights to run on the cluster: use flux-dev, "
                "flux-schnell or flux-lora with provider cluster",
                (Differs(PROVIDER, OWN_GPUS), *(Differs(MODEL, m) for m in NO_OPEN_WEIGHTS)),
            ),
            *(r for p in pictures for r in _limits(p)),
            Rule(
                MEMORY_PLAN,
                "memoryPlan is for provider cluster (how FLUX is held on the cluster's GPU): leave it "
                "auto, or use provider cluster",
                (Absent(MEMORY_PLAN), ValueIs(MEMORY_PLAN, "auto"), ON_OWN_GPUS),
            ),
            Rule(
                MEMORY_PLAN,
                "memoryPlan int8, fp8 and nf4 store FLUX.1's transformer in fewer bits, not the newer "
                "families': use auto, bf16 or offload with this model",
                (Equals(MODEL, FLUX_MODELS), Equals(MEMORY_PLAN, BF16_PLANS)),
            ),
            Rule(
                DENOISING,
                "denoising is for provider cluster (a warm pool or a Job per request on the cluster's "
                "GPUs): leave it out, or use provider cluster",
                (Absent(DENOISING), ON_OWN_GPUS),
            ),
        )
    ]


class LoraRef(ApiModel):
    name: Annotated[
        ObjectName,
        Field(
            description="A LoraTraining in the same namespace (or `namespace`); its latest version is used, "
            "or `version`.",
        ),
    ]
    namespace: (
        Annotated[
            str,
            Field(
                min_length=1,
                max_length=63,
                pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                description="The LoraTraining's namespace, where another owner's LoRA lives in "
                "theirs; unset: this resource's namespace.",
            ),
        ]
        | None
    ) = None
    owner: (
        Annotated[
            str,
            Field(
                min_length=1,
                max_length=63,
                pattern=OWNER_PATTERN,
                description="The LoRA's owner, when it is another owner's: it must have shared it with "
                "this resource's owner for use (its annotation contentgen.io/shared-with, docs/sharing.md); "
                "unset: this resource's owner.",
            ),
        ]
        | None
    ) = None
    version: (
        Annotated[
            int,
            Field(
                ge=1,
                description="Use this version of it (a usable one: trained, not deleted); unset: its "
                "latest version when the run starts.",
            ),
        ]
        | None
    ) = None


class LoraEntry(ApiModel):
    cel_rules = tuple(r.cel for r in LORA_ENTRY_RULES)

    lora_ref: Annotated[LoraRef, Field(description="Use a LoraTraining from this namespace.")] | None = None
    url: (
        Annotated[
            str,
            Field(
                min_length=1,
                max_length=MAX_URL_LENGTH,
                description="Use weights at an https:// or s3:// URL (in a local run, `contentgen run` "
                "or `contentgen api --local`, a local file too).",
            ),
            LORA_URL_RULE,
            USES,  # another owner's LoRA only where it is shared for use (api/inputs.py)
        ]
        | None
    ) = None
    scale: Annotated[float, Field(ge=0, le=2, description="How strongly the LoRA applies.")] = 1.0


class ImageGenerationSpec(CommonSpec):
    cel_rules = ByProviders(lambda: tuple(r.cel for r in image_rules()))

    prompt: Annotated[str, Field(min_length=1, max_length=4000, description="What to draw.")]
    negative_prompt: Annotated[str, Field(max_length=4000, description="What to keep out.")] = ""
    model: Annotated[
        ImageModel,
        Field(
            description="flux-pro, flux-dev, flux-schnell, or flux-lora to apply loras (FLUX.1); "
            "z-image-turbo (fal, offline), z-image, qwen-image-2512, flux.2-klein-4b or flux.2-klein-9b "
            "(offline) for a LoRA of those families (docs/cluster-training.md#families)."
        ),
    ] = "flux-dev"
    num_images: Annotated[
        int,
        Field(
            ge=1,
            le=8,
            description="How many images: 1 to 4 with provider fal (one request), up to 8 offline.",
        ),
    ] = 1
    image_size: Annotated[ImageSize, Field(description="Aspect and size preset.")] = "landscape_4_3"
    seed: Annotated[int, Field(ge=0, le=4294967295, description="Fixes the randomness.")] | None = None
    provider: Annotated[
        PictureProvider,
        Field(
            description="fal generates on fal.ai; cluster on the cluster's own GPUs (docs/cluster-gpus.md); "
            "offline draws labelled placeholders."
        ),
    ] = PICTURES_DEFAULT
    loras: Annotated[
        list[LoraEntry],
        Field(
            max_length=MAX_LORAS,
            description="Up to 5 LoRAs; only with a model that loads them (flux-lora, or a newer family's "
            "model: each loads its own family's LoRAs; fal's z-image-turbo takes 3).",
        ),
    ] = []
    memory_plan: Annotated[
        ImageMemoryPlan,
        Field(
            description="provider cluster: how the model is held on the GPU (training.memoryPlan's names and "
            "offload). auto: every component resident in bf16 where it fits the card's free memory, else "
            "the components taking turns on the card (offload: the T5 encoder off it while the transformer "
            "denoises), else an 8-bit transformer (fp8 on Ada and Hopper, int8 before them; torchao "
            "weight-only), else a 4-bit NF4 one (bitsandbytes; a CUDA GPU only), each taking turns. bf16: "
            "all resident; offload: bf16 taking turns; int8, fp8, nf4: that transformer taking turns. A plan "
            "that cannot fit fails before any load (GpuMemoryTooSmall, with the numbers); the version "
            "records the plan used (memoryPlan). The newer families' models (z-image-turbo, qwen-image-2512, "
            "flux.2-klein-4b, ...): auto, bf16 or offload, their transformer always bf16. Other providers: "
            "auto only.",
        ),
    ] = "auto"
    denoising: (
        Annotated[
            Literal["pool", "job"],
            Field(
                description="provider cluster: where the pictures are drawn. pool: by the warm pool of "
                "the base model (docs/cluster-gpus.md#warm-pools), which keeps it loaded (a Job per request "
                "where the chart made no pool for it); job: by a Job of its own, which loads the base model. "
                "Unset: the chart's pools.denoising. Either way the resource runs, records and bills as its "
                "Job does.",
            ),
        ]
        | None
    ) = None


class GeneratedImage(ApiModel):
    uri: str
    width: Annotated[int, Field(ge=0)]
    height: Annotated[int, Field(ge=0)]
    content_type: str = "image/png"
    size_bytes: Annotated[int, Field(ge=0)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    seed: Annotated[int, Field(ge=0)] | None = None
    thumbnail_uri: Annotated[str, Field(description="A small JPEG of it, beside it in thumbs/.")] = ""


class ResolvedLora(ApiModel):
    """A LoRA applied to the images, with `loraRef` resolved to the version used (the lineage of
    the images: which LoraTraining, uid and version)."""

    uri: Annotated[str, Field(description="The weights used.")]
    scale: float = 1.0
    name: Annotated[str, Field(description="The LoraTraining it came from (loraRef), if any.")] = ""
    uid: Annotated[str, Field(description="That LoraTraining's uid.")] = ""
    version: Annotated[int, Field(ge=0, description="The version of it that was used.")] = 0
    base_model: Annotated[
        str,
        Field(
            description="What it is made for (its LoraTraining's training.baseModel; empty: not known, a "
            "LoRA by url)."
        ),
    ] = ""
    low_noise_uri: Annotated[
        str, Field(description="A Wan 2.2 A14B pair's low-noise expert (uri is the high-noise one's).")
    ] = ""


class ImageVersion(VersionBase):
    """The images one run made (generated-images/{owner}/{uid}/v{n}/)."""

    model: Annotated[str, Field(description="The image model they were made with.")] = ""
    images: Annotated[list[GeneratedImage], Field(description="The images, in order.")] = []
    loras: Annotated[list[ResolvedLora], Field(description="The LoRAs they were made with.")] = []
    memory_plan: Annotated[
        str,
        Field(
            max_length=600,
            description="provider cluster: the memory plan they were drawn with (memoryPlan, or what auto "
            "chose on the card), with the estimate and the free memory it was chosen on; where a retried "
            "run drew some on another card with another plan, each plan once, separated by ' | '.",
        ),
    ] = ""


class PoolPlace(ApiModel):
    """provider cluster, drawn by a warm pool (spec.denoising): where the running request is in it,
    as the pool tells the Job's worker (docs/cluster-gpus.md#warm-pools)."""

    state: Annotated[
        Literal["starting", "loading", "queued", "drawing"],
        Field(
            description="starting: the pool cannot be reached yet (scaled to zero, its pods loading); "
            "loading: the pool loads its base model; queued: waiting in the pool's queue; drawing: its "
            "pictures are being drawn."
        ),
    ]
    position: Annotated[
        int, Field(ge=0, description="Its place in the pool's queue, 1 next; 0 when not queued.")
    ] = 0


class ImageGenerationStatus(CommonStatus):
    provider: Annotated[str, Field(description="The provider that made the latest version's images.")] = ""
    pool: (
        Annotated[
            PoolPlace,
            Field(description="The running request's place in the warm pool drawing it; unset otherwise."),
        ]
        | None
    ) = None
    images: Annotated[list[GeneratedImage], Field(description="The images of the latest version.")] = []
    loras: Annotated[
        list[ResolvedLora], Field(description="The LoRAs the latest version's images were made with.")
    ] = []
    latest_version: LatestVersion = 0
    versions: NewestVersions[ImageVersion] = []


def legacy_version(status: Mapping[str, Any]) -> dict[str, Any] | None:
    """A status from before versions (0.1): its images as version 1's fields (wire form); None
    when it holds none."""
    if not status.get("images"):
        return None
    provider = str(status.get("provider") or "")
    return {"provider": provider, "images": status["images"], "loras": status.get("loras") or []}
