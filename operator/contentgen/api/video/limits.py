"""What each video model takes, as rules on VideoGenerationSpec: each declared once, from the models
table, and made into CEL, its Python check and its JSON Schema by api/rules.py. A model's rule holds
for any other model, so every spec is checked against its own model's limits only."""

from __future__ import annotations

from collections.abc import Sequence

from ..base_models import BASE_MODELS, loading, lora_fits, misfit
from ..image import ResolvedLora
from ..providers import OWN_GPUS, PROVIDERS
from ..rules import (
    Absent,
    Between,
    Both,
    Either,
    Empty,
    Equals,
    ForModel,
    GeneratedRule,
    Has,
    In,
    Is,
    NoneHas,
    Not,
    ProductBetween,
    Rule,
    SpecField,
    generate,
)
from .table import ASSUMED_FPS, DEFAULT_MODEL, DEFAULT_PROVIDER, MODELS, VideoModelInfo

MODEL = SpecField("model", "string", DEFAULT_MODEL)
PROVIDER = SpecField("provider", "string", DEFAULT_PROVIDER)
IMAGE = SpecField("image", "object")
IMAGE_REF = SpecField("imageRef", "object")
NUM_FRAMES = SpecField("numFrames", "integer")
DURATION = SpecField("durationSeconds", "number")
FPS = SpecField("fps", "integer")
RESOLUTION = SpecField("resolution", "string")
ASPECT_RATIO = SpecField("aspectRatio", "string")
LORAS = SpecField("loras", "array")
DENOISING = SpecField("denoising", "string")

PICTURE = Either((Has(IMAGE), Has(IMAGE_REF)))
# Providers whose videos are labelled placeholders run every model.
PLACEHOLDER_PROVIDERS = tuple(p.name for p in PROVIDERS.values() if p.placeholders)

COMMON_RULES = (
    Rule(
        IMAGE_REF,
        "set at most one of image (a URL) and imageRef (an ImageGeneration's output)",
        (Not(Both((Has(IMAGE), Has(IMAGE_REF)))),),
    ),
    Rule(
        NUM_FRAMES,
        "set at most one of durationSeconds and numFrames",
        (Not(Both((Has(DURATION), Has(NUM_FRAMES)))),),
    ),
    Rule(
        DENOISING,
        "denoising is for provider cluster (a warm pool or a Job per request on the cluster's "
        "GPUs): leave it out, or use provider cluster",
        (Absent(DENOISING), Is(PROVIDER, OWN_GPUS)),
    ),
)


def _or(values: Sequence[object]) -> str:
    return " or ".join(map(str, values))


def _provider_rules(m: VideoModelInfo, rule: ForModel) -> list[Rule]:
    placeholders = _or(PLACEHOLDER_PROVIDERS)
    return [
        rule.needs(
            MODEL,
            f"model {m.name} runs on provider {m.provider} (or {placeholders}, as a placeholder): use "
            f"provider {m.provider} or {placeholders}, or another model (docs/videos.md#models)",
            Equals(PROVIDER, (*PLACEHOLDER_PROVIDERS, m.provider)),
        )
    ]


def _picture_rules(m: VideoModelInfo, rule: ForModel) -> list[Rule]:
    if not m.takes("image"):
        message = (
            f"model {m.name} makes videos from text only: leave image and imageRef out, or use a model "
            "that animates a picture (docs/videos.md#models)"
        )
        return [rule.needs(IMAGE, message, Not(PICTURE))]
    if not m.takes("text"):
        message = (
            f"model {m.name} animates a picture: set image.url or imageRef (an ImageGeneration's output)"
        )
        return [rule.needs(MODEL, message, PICTURE)]
    return []


def _length_rules(m: VideoModelInfo, rule: ForModel) -> list[Rule]:
    if m.frames is None:
        durations = _or(m.durations)
        return [
            rule.takes(
                NUM_FRAMES,
                f"model {m.name} takes no numFrames: give durationSeconds ({durations})",
            ),
            rule.takes(
                DURATION,
                f"model {m.name} makes videos of {durations} seconds: set durationSeconds to one of them",
                In(DURATION, m.durations),
            ),
        ]
    low, high = m.frames
    grid = f" and {m.frame_step}k+1" if m.frame_step > 1 else ""
    fps = float(m.default_fps or ASSUMED_FPS)
    return [
        rule.takes(
            NUM_FRAMES,
            f"model {m.name} makes numFrames {low} to {high}{grid}",
            Between(NUM_FRAMES, low, high, m.frame_step),
        ),
        rule.takes(
            DURATION,
            f"model {m.name} makes {low} to {high} frames: durationSeconds times fps (default {int(fps)}) "
            "must be in that range",
            ProductBetween(DURATION, FPS, fps, low, high),
        ),
    ]


def _fps_rules(m: VideoModelInfo, rule: ForModel) -> list[Rule]:
    if m.fps is None:
        return [rule.takes(FPS, f"model {m.name} sets its own frame rate: leave fps out")]
    if m.fps_range:
        low, high = m.fps[0], m.fps[-1]
        return [rule.takes(FPS, f"model {m.name} takes fps {low} to {high}", Between(FPS, low, high))]
    return [rule.takes(FPS, f"model {m.name} takes fps {_or(m.fps)}", In(FPS, m.fps))]


def _choice_rules(m: VideoModelInfo, rule: ForModel) -> list[Rule]:
    rules: list[Rule] = []
    for field, allowed in ((RESOLUTION, m.resolutions), (ASPECT_RATIO, m.aspect_ratios)):
        if allowed:
            message = f"model {m.name} takes {field.name} {', '.join(allowed)}"
            rules.append(rule.takes(field, message, In(field, allowed)))
        else:
            message = f"model {m.name} sets its own {field.name}: leave it out"
            rules.append(rule.takes(field, message))
    return rules


def _lora_rules(m: VideoModelInfo, rule: ForModel) -> list[Rule]:
    if not m.loras:
        message = (
            f"model {m.name} takes no LoRAs: leave loras out, or use a model that takes them "
            "(docs/videos.md#models)"
        )
        return [rule.needs(LORAS, message, Empty(LORAS))]
    if loading(m.name):  # a LoraTraining makes LoRAs it loads: its version is checked as it resolves
        return []
    message = (
        f"loras[].loraRef: no LoraTraining makes {m.family} LoRAs (training.baseModel: "
        f"{', '.join(BASE_MODELS)}), and model {m.name} loads those only: give one made for {m.family} by "
        "url, or animate a picture made with the LoRA (imageRef) instead (docs/videos.md#loras)"
    )
    return [rule.needs(LORAS, message, NoneHas(LORAS, "loraRef"))]


def model_rules(m: VideoModelInfo) -> list[Rule]:
    """Model `m`'s limits, as its table entry says them."""
    rule = ForModel(MODEL, m.name)
    return [
        *_provider_rules(m, rule),
        *_picture_rules(m, rule),
        *_length_rules(m, rule),
        *_fps_rules(m, rule),
        *_choice_rules(m, rule),
        *_lora_rules(m, rule),
    ]


VIDEO_RULES: list[GeneratedRule] = [
    generate(r) for r in (*COMMON_RULES, *(r for m in MODELS.values() for r in model_rules(m)))
]


def unloadable_lora(model: str, loras: Sequence[ResolvedLora], trained: Sequence[bool] = ()) -> str | None:
    """Why `model` cannot load one of `loras`, or None, said before anything is paid or drawn (the
    run's twin of the loraRef rules): a LoraTraining's LoRA (by loraRef, or by its stored file's
    URL, so with its lineage: `trained[i]` where the caller knows it otherwise) made for another
    model (its `base_model`, api/base_models.py), or one whose base model is not known on a model
    no LoraTraining makes LoRAs for."""
    if model not in MODELS:
        return None
    for n, lora in enumerate(loras):
        if not (lora.name or lora.uid or (n < len(trained) and trained[n])):
            continue  # a LoRA from elsewhere, by url: what it is made for is the user's to check
        what = f"loraRef {lora.name!r}" if lora.name else lora.uri.split("?", 1)[0]
        if lora.base_model:
            if not lora_fits(lora.base_model, model):
                return f"loras[{n}]: {misfit(lora.base_model, model, what)}"
        elif not loading(model):
            return (
                f"loras[{n}]: {what} is a LoraTraining's LoRA, and model {model} loads "
                f"{MODELS[model].family} LoRAs, which no LoraTraining makes: remove it, give a "
                f"{MODELS[model].family} LoRA by url, or animate a picture made with it (imageRef) "
                "(docs/videos.md#loras)"
            )
    return None
