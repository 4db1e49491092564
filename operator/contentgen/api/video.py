"""VideoGeneration: a prompt, optionally a picture (by URL or an ImageGeneration's output), in; a
video out. The models it runs on and what each takes are one table (`MODELS`): the CEL rules, their
Python twins, their JSON Schema twins (httpapi/request_rules.py) and the docs' models table are all
made from it, so a limit is said once.

Each model's limits are what its provider documents: fal's app pages (the input schema of each app,
read 2026-11-24), diffusers' Wan and LTX-Video pipelines for provider cluster. Where a page leaves a
value out, the table is narrower than the provider may be (a request the provider would refuse is
never admitted), and says so in `notes`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field

from .base import ApiModel, CelRule
from .common import NAME_PATTERN, CommonSpec, CommonStatus, SourceUrl, VersionBase
from .image import LoraEntry, ResolvedLora
from .providers import placeholders

JsonDict = dict[str, Any]

VideoModel = Literal[
    "wan-2.2-t2v",
    "wan-2.2-i2v",
    "ltx-video-13b",
    "kling-2.5-turbo",
    "wan-1.3b-t2v",
    "wan-14b-i2v",
    "ltx-video",
]
Resolution = Literal["480p", "580p", "720p", "1080p"]
AspectRatio = Literal["16:9", "9:16", "1:1", "4:3", "3:4", "auto"]
Mode = Literal["text", "image"]
DEFAULT_MODEL: VideoModel = "wan-2.2-t2v"
DEFAULT_PROVIDER: Literal["fal", "offline", "cluster"] = "fal"
# The family every LoraTraining's LoRA is made for: fal's two trainers (flux-lora-fast-training,
# flux-lora-portrait-trainer) and the cluster's trainer all train FLUX.1 LoRAs, which no video model
# can load (their layers are not FLUX's), so a video's loraRef is refused at admission.
LORA_TRAINING_FAMILY = "FLUX.1"
# A video's frames when neither numFrames nor durationSeconds says, for a model that takes
# durations only (Kling): its default duration at the frame rate assumed for it.
ASSUMED_FPS = 24


@dataclass(frozen=True)
class VideoModelInfo:
    """One model: the provider that runs it and what it takes, as that provider documents it."""

    name: str
    provider: Literal["fal", "cluster"]
    modes: tuple[Mode, ...]  # text: from the prompt alone; image: animates a picture
    apps: dict[str, str]  # mode -> fal's app, or the diffusers pipeline on the cluster
    frames: tuple[int, int] | None  # numFrames' range (inclusive); None: durations only
    frame_step: int  # numFrames is frame_step·k + 1 (the VAE's temporal stride); 1: any
    default_frames: int
    fps: tuple[int, ...] | tuple[int, int] | None  # fps_range's (min, max), or the only choices
    fps_range: bool  # fps is a range (True) or a set of choices (False)
    default_fps: int | None  # None: the provider's own, not settable
    durations: tuple[int, ...]  # seconds a model with durations only takes
    resolutions: tuple[Resolution, ...]  # () : not settable
    default_resolution: Resolution | None
    aspect_ratios: tuple[AspectRatio, ...]
    default_aspect_ratio: AspectRatio
    loras: bool
    family: str  # the model family its LoRAs are made for (Wan 2.2, Wan 2.1, LTX-Video, Kling)
    price: str  # in words, for the docs; the table's numbers are in pricing.py
    source: str  # where the limits were read
    notes: str = ""

    def takes(self, mode: Mode) -> bool:
        return mode in self.modes


_FAL_WAN_T2V = "https://fal.ai/models/fal-ai/wan/v2.2-a14b/text-to-video/lora/llms.txt"
_FAL_WAN_I2V = "https://fal.ai/models/fal-ai/wan/v2.2-a14b/image-to-video/llms.txt"
_FAL_LTX = "https://fal.ai/models/fal-ai/ltxv-13b-098-distilled/extend/llms.txt"
_FAL_KLING = "https://fal.ai/models/fal-ai/kling-video/v2.5-turbo/pro/image-to-video/llms.txt"
_DIFFUSERS_WAN = "https://huggingface.co/docs/diffusers/api/pipelines/wan"
_DIFFUSERS_LTX = "https://huggingface.co/docs/diffusers/api/pipelines/ltx_video"

MODELS: dict[str, VideoModelInfo] = {
    m.name: m
    for m in (
        VideoModelInfo(
            name="wan-2.2-t2v",
            provider="fal",
            modes=("text",),
            apps={"text": "fal-ai/wan/v2.2-a14b/text-to-video/lora"},
            frames=(17, 161),
            frame_step=1,
            default_frames=81,
            fps=(4, 60),
            fps_range=True,
            default_fps=16,
            durations=(),
            resolutions=("480p", "580p", "720p"),
            default_resolution="480p",
            aspect_ratios=("16:9", "9:16", "1:1"),
            default_aspect_ratio="16:9",
            loras=True,
            family="Wan 2.2",
            price="$0.10 per second of video",
            source=_FAL_WAN_T2V,
            notes="the app that takes LoRAs made for Wan 2.2",
        ),
        VideoModelInfo(
            name="wan-2.2-i2v",
            provider="fal",
            modes=("image",),
            apps={"image": "fal-ai/wan/v2.2-a14b/image-to-video"},
            frames=(17, 161),
            frame_step=1,
            default_frames=81,
            fps=(4, 60),
            fps_range=True,
            default_fps=16,
            durations=(),
            resolutions=("480p", "580p", "720p"),
            default_resolution="480p",
            aspect_ratios=("auto", "16:9", "9:16", "1:1"),
            default_aspect_ratio="auto",
            loras=False,
            family="Wan 2.2",
            price="$0.04 (480p), $0.06 (580p), $0.08 (720p) per second of video, counted at 16 frames "
            "a second",
            source=_FAL_WAN_I2V,
            notes="a picture of another aspect ratio is resized and centre-cropped",
        ),
        VideoModelInfo(
            name="ltx-video-13b",
            provider="fal",
            modes=("text", "image"),
            apps={
                "text": "fal-ai/ltxv-13b-098-distilled",
                "image": "fal-ai/ltxv-13b-098-distilled/image-to-video",
            },
            frames=(9, 1441),
            frame_step=1,
            default_frames=121,
            fps=(24,),
            fps_range=False,
            default_fps=24,
            durations=(),
            resolutions=("480p", "720p"),
            default_resolution="720p",
            aspect_ratios=("16:9", "9:16", "1:1", "auto"),
            default_aspect_ratio="16:9",
            loras=True,
            family="LTX-Video",
            price="$0.02 per second of video, counted at 24 frames a second",
            source=_FAL_LTX,
            notes="fal's pages document no range for its frame rate: 24, the rate it bills at, only",
        ),
        VideoModelInfo(
            name="kling-2.5-turbo",
            provider="fal",
            modes=("text", "image"),
            apps={
                "text": "fal-ai/kling-video/v2.5-turbo/pro/text-to-video",
                "image": "fal-ai/kling-video/v2.5-turbo/pro/image-to-video",
            },
            frames=None,
            frame_step=1,
            default_frames=5 * ASSUMED_FPS,
            fps=None,
            fps_range=False,
            default_fps=None,
            durations=(5, 10),
            resolutions=(),
            default_resolution=None,
            aspect_ratios=("16:9", "9:16", "1:1"),
            default_aspect_ratio="16:9",
            loras=False,
            family="Kling",
            price="$0.35 for 5 seconds, $0.07 for each second more",
            source=_FAL_KLING,
            notes="durationSeconds 5 or 10 only; frame rate and resolution are Kling's own",
        ),
        VideoModelInfo(
            name="wan-1.3b-t2v",
            provider="cluster",
            modes=("text",),
            apps={"text": "diffusers WanPipeline, Wan2.1-T2V-1.3B"},
            frames=(5, 81),
            frame_step=4,
            default_frames=81,
            fps=(4, 60),
            fps_range=True,
            default_fps=16,
            durations=(),
            resolutions=("480p",),
            default_resolution="480p",
            aspect_ratios=("16:9", "9:16", "1:1"),
            default_aspect_ratio="16:9",
            loras=True,
            family="Wan 2.1",
            price="GPU time (the cluster's GPU-hour price)",
            source=_DIFFUSERS_WAN,
            notes="trained at 480p; numFrames 4k+1",
        ),
        VideoModelInfo(
            name="wan-14b-i2v",
            provider="cluster",
            modes=("image",),
            apps={"image": "diffusers WanImageToVideoPipeline, Wan2.1-I2V-14B"},
            frames=(5, 81),
            frame_step=4,
            default_frames=81,
            fps=(4, 60),
            fps_range=True,
            default_fps=16,
            durations=(),
            resolutions=("480p", "720p"),
            default_resolution="480p",
            aspect_ratios=("auto", "16:9", "9:16", "1:1"),
            default_aspect_ratio="auto",
            loras=True,
            family="Wan 2.1",
            price="GPU time (the cluster's GPU-hour price)",
            source=_DIFFUSERS_WAN,
            notes="numFrames 4k+1; 720p wants a card of 80 GB or CPU offload",
        ),
        VideoModelInfo(
            name="ltx-video",
            provider="cluster",
            modes=("text", "image"),
            apps={
                "text": "diffusers LTXPipeline, LTX-Video",
                "image": "diffusers LTXImageToVideoPipeline, LTX-Video",
            },
            frames=(9, 257),
            frame_step=8,
            default_frames=121,
            fps=(4, 60),
            fps_range=True,
            default_fps=24,
            durations=(),
            resolutions=("480p", "720p"),
            default_resolution="480p",
            aspect_ratios=("16:9", "9:16", "1:1", "auto"),
            default_aspect_ratio="16:9",
            loras=True,
            family="LTX-Video",
            price="GPU time (the cluster's GPU-hour price)",
            source=_DIFFUSERS_LTX,
            notes="numFrames 8k+1; width and height multiples of 32",
        ),
    )
}

# The short side of each resolution, and the sides of its 16:9 frame (as Wan and LTX make them:
# multiples of 16).
_SIZES_16_9 = {"480p": (832, 480), "580p": (1024, 576), "720p": (1280, 720), "1080p": (1920, 1088)}


def frame_size(resolution: str, aspect_ratio: str, picture: tuple[int, int] | None = None) -> tuple[int, int]:
    """(width, height) of a video's frames: `auto` takes the picture's aspect (16:9 without one)."""
    long_side, short = _SIZES_16_9.get(resolution, _SIZES_16_9["720p"])
    ratio = aspect_ratio
    if ratio == "auto":
        if picture is None or picture[0] >= picture[1]:
            ratio = "16:9" if picture is None or picture[0] * 9 >= picture[1] * 16 else "4:3"
        else:
            ratio = "9:16" if picture[1] * 9 >= picture[0] * 16 else "3:4"
    sides = {
        "16:9": (long_side, short),
        "9:16": (short, long_side),
        "1:1": (short, short),
        "4:3": (_even16(short * 4 / 3), short),
        "3:4": (short, _even16(short * 4 / 3)),
    }
    return sides[ratio]


def _even16(value: float) -> int:
    return round(value / 16) * 16


# --- the spec ------------------------------------------------------------------------------------


class VideoImage(ApiModel):
    url: SourceUrl


class ImageRef(ApiModel):
    name: Annotated[
        str,
        Field(
            min_length=1,
            max_length=253,
            pattern=NAME_PATTERN,
            description="An ImageGeneration in the same namespace; its latest version is used, or `version`.",
        ),
    ]
    version: (
        Annotated[
            int,
            Field(ge=1, description="Use this version of it; unset: its latest version when the run starts."),
        ]
        | None
    ) = None
    image: Annotated[
        int, Field(ge=1, le=8, description="Which of that version's images (1 for the first).")
    ] = 1


@dataclass(frozen=True)
class VideoRule:
    """A CEL rule made from the models table, with its JSON Schema twin (None: JSON Schema cannot
    say it)."""

    cel: CelRule
    json_schema: JsonDict | None


def _has(field: str, type_: str) -> JsonDict:
    return {"required": [field], "properties": {field: {"type": type_}}}


def _is(field: str, value: str, default: str) -> JsonDict:
    """`self.field == value` where the field defaults to `default` when left out."""
    named: JsonDict = {"required": [field], "properties": {field: {"const": value}}}
    return {"anyOf": [{"not": {"required": [field]}}, named]} if value == default else named


def _cel_list(values: tuple[Any, ...]) -> str:
    return "[" + ", ".join(f"'{v}'" if isinstance(v, str) else repr(v) for v in values) + "]"


def _model_rules(m: VideoModelInfo) -> list[VideoRule]:
    name = m.name
    is_model: JsonDict = _is("model", name, DEFAULT_MODEL)
    other = f"self.model != '{name}'"
    rules: list[VideoRule] = []

    def add(
        rule: str, message: str, field: str, check: Callable[[Any], bool], schema: JsonDict | None
    ) -> None:
        rules.append(
            VideoRule(CelRule(rule=rule, message=message, check=check, field_path=f".{field}"), schema)
        )

    add(
        f"self.provider == 'offline' || self.provider == '{m.provider}' || {other}",
        f"model {name} runs on provider {m.provider} (or offline, as a placeholder): use provider "
        f"{m.provider} or offline, or another model (docs/videos.md#models)",
        "model",
        lambda s: placeholders(s.provider) or s.provider == m.provider or s.model != name,
        {
            "anyOf": [
                {"required": ["provider"], "properties": {"provider": {"enum": ["offline", m.provider]}}},
                *([{"not": {"required": ["provider"]}}] if m.provider == DEFAULT_PROVIDER else []),
                {"not": is_model},
            ]
        },
    )
    picture = "has(self.image) || has(self.imageRef)"
    has_picture: JsonDict = {"anyOf": [_has("image", "object"), _has("imageRef", "object")]}
    if not m.takes("image"):
        add(
            f"!({picture}) || {other}",
            f"model {name} makes videos from text only: leave image and imageRef out, or use a model "
            "that animates a picture (docs/videos.md#models)",
            "image",
            lambda s: (s.image is None and s.image_ref is None) or s.model != name,
            {"anyOf": [{"not": has_picture}, {"not": is_model}]},
        )
    if not m.takes("text"):
        add(
            f"{picture} || {other}",
            f"model {name} animates a picture: set image.url or imageRef (an ImageGeneration's output)",
            "model",
            lambda s: s.image is not None or s.image_ref is not None or s.model != name,
            {"anyOf": [has_picture, {"not": is_model}]},
        )
    if m.frames is None:
        add(
            f"!has(self.numFrames) || {other}",
            f"model {name} takes no numFrames: give durationSeconds ({' or '.join(map(str, m.durations))})",
            "numFrames",
            lambda s: s.num_frames is None or s.model != name,
            {"anyOf": [{"not": _has("numFrames", "integer")}, {"not": is_model}]},
        )
        add(
            f"!has(self.durationSeconds) || {other} || self.durationSeconds in "
            f"{_cel_list(tuple(float(d) for d in m.durations))}",
            f"model {name} makes videos of {' or '.join(map(str, m.durations))} seconds: set durationSeconds "
            "to one of them",
            "durationSeconds",
            lambda s: s.duration_seconds is None or s.model != name or s.duration_seconds in m.durations,
            {
                "anyOf": [
                    {"not": _has("durationSeconds", "number")},
                    {"not": is_model},
                    {"properties": {"durationSeconds": {"enum": list(m.durations)}}},
                ]
            },
        )
    else:
        low, high = m.frames
        step = m.frame_step
        grid = f" and {step}k+1" if step > 1 else ""
        step_cel = f" && (self.numFrames - 1) % {step} == 0" if step > 1 else ""
        frames_schema: JsonDict = {"minimum": low, "maximum": high}
        add(
            f"!has(self.numFrames) || {other} || "
            f"(self.numFrames >= {low} && self.numFrames <= {high}{step_cel})",
            f"model {name} makes numFrames {low} to {high}{grid}",
            "numFrames",
            lambda s: (
                s.num_frames is None
                or s.model != name
                or (low <= s.num_frames <= high and (s.num_frames - 1) % step == 0)
            ),
            # (numFrames - 1) % step: JSON Schema's multipleOf cannot shift by one
            None
            if step > 1
            else {
                "anyOf": [
                    {"not": _has("numFrames", "integer")},
                    {"not": is_model},
                    {"properties": {"numFrames": frames_schema}},
                ]
            },
        )
        fps_default = float(m.default_fps or ASSUMED_FPS)
        fps_cel = f"(has(self.fps) ? double(self.fps) : {fps_default})"
        add(
            f"!has(self.durationSeconds) || {other} || (self.durationSeconds * {fps_cel} >= {float(low)} "
            f"&& self.durationSeconds * {fps_cel} <= {float(high)})",
            f"model {name} makes {low} to {high} frames: durationSeconds times fps (default "
            f"{int(fps_default)}) must be in that range",
            "durationSeconds",
            lambda s: (
                s.duration_seconds is None
                or s.model != name
                or low <= s.duration_seconds * float(s.fps if s.fps is not None else fps_default) <= high
            ),
            None,  # two values multiplied
        )
    if m.fps is None:
        add(
            f"!has(self.fps) || {other}",
            f"model {name} sets its own frame rate: leave fps out",
            "fps",
            lambda s: s.fps is None or s.model != name,
            {"anyOf": [{"not": _has("fps", "integer")}, {"not": is_model}]},
        )
    elif m.fps_range:
        lo, hi = m.fps[0], m.fps[-1]
        add(
            f"!has(self.fps) || {other} || (self.fps >= {lo} && self.fps <= {hi})",
            f"model {name} takes fps {lo} to {hi}",
            "fps",
            lambda s: s.fps is None or s.model != name or lo <= s.fps <= hi,
            {
                "anyOf": [
                    {"not": _has("fps", "integer")},
                    {"not": is_model},
                    {"properties": {"fps": {"minimum": lo, "maximum": hi}}},
                ]
            },
        )
    else:
        choices = m.fps
        add(
            f"!has(self.fps) || {other} || self.fps in {_cel_list(choices)}",
            f"model {name} takes fps {' or '.join(map(str, choices))}",
            "fps",
            lambda s: s.fps is None or s.model != name or s.fps in choices,
            {
                "anyOf": [
                    {"not": _has("fps", "integer")},
                    {"not": is_model},
                    {"properties": {"fps": {"enum": list(choices)}}},
                ]
            },
        )
    for field, allowed, attr in (
        ("resolution", m.resolutions, "resolution"),
        ("aspectRatio", m.aspect_ratios, "aspect_ratio"),
    ):
        if allowed:
            words = ", ".join(allowed)
            rule = f"!has(self.{field}) || {other} || self.{field} in {_cel_list(allowed)}"
            message = f"model {name} takes {field} {words}"
            ok: JsonDict = {"properties": {field: {"enum": list(allowed)}}}
        else:
            rule, message, ok = (
                f"!has(self.{field}) || {other}",
                f"model {name} sets its own {field}: leave it out",
                {},
            )

        def check(s: Any, attr: str = attr, allowed: tuple[str, ...] = allowed) -> bool:
            value = getattr(s, attr)
            return value is None or s.model != name or (bool(allowed) and value in allowed)

        add(
            rule,
            message,
            field,
            check,
            {"anyOf": [{"not": _has(field, "string")}, {"not": is_model}, *([ok] if ok else [])]},
        )
    if m.loras and m.family != LORA_TRAINING_FAMILY:
        add(
            f"!has(self.loras) || self.loras.all(l, !has(l.loraRef)) || {other}",
            f"loras[].loraRef: a LoraTraining makes {LORA_TRAINING_FAMILY} LoRAs, and model {name} loads "
            f"{m.family} LoRAs only: give one made for {m.family} by url, or animate a picture made with "
            "the LoRA (imageRef) instead (docs/videos.md#loras)",
            "loras",
            lambda s: s.model != name or all(entry.lora_ref is None for entry in s.loras),
            {
                "anyOf": [
                    {"not": is_model},
                    {"properties": {"loras": {"items": {"not": {"required": ["loraRef"]}}}}},
                ]
            },
        )
    if not m.loras:
        add(
            f"!has(self.loras) || size(self.loras) == 0 || {other}",
            f"model {name} takes no LoRAs: leave loras out, or use a model that takes them "
            "(docs/videos.md#models)",
            "loras",
            lambda s: not s.loras or s.model != name,
            {"anyOf": [{"properties": {"loras": {"maxItems": 0}}}, {"not": is_model}]},
        )
    return rules


_COMMON_RULES = [
    VideoRule(
        CelRule(
            rule="!(has(self.image) && has(self.imageRef))",
            message="set at most one of image (a URL) and imageRef (an ImageGeneration's output)",
            check=lambda s: s.image is None or s.image_ref is None,
            field_path=".imageRef",
        ),
        {"not": {"allOf": [_has("image", "object"), _has("imageRef", "object")]}},
    ),
    VideoRule(
        CelRule(
            rule="!(has(self.durationSeconds) && has(self.numFrames))",
            message="set at most one of durationSeconds and numFrames",
            check=lambda s: s.duration_seconds is None or s.num_frames is None,
            field_path=".numFrames",
        ),
        {"not": {"allOf": [_has("durationSeconds", "number"), _has("numFrames", "integer")]}},
    ),
]

VIDEO_RULES: list[VideoRule] = [*_COMMON_RULES, *(r for m in MODELS.values() for r in _model_rules(m))]


class VideoGenerationSpec(CommonSpec):
    cel_rules = tuple(r.cel for r in VIDEO_RULES)

    prompt: Annotated[str, Field(min_length=1, max_length=4000, description="What happens in the video.")]
    negative_prompt: Annotated[str, Field(max_length=4000, description="What to keep out.")] = ""
    model: Annotated[
        VideoModel,
        Field(
            description="The video model (docs/videos.md#models): fal's wan-2.2-t2v, wan-2.2-i2v, "
            "ltx-video-13b, kling-2.5-turbo; the cluster's wan-1.3b-t2v, wan-14b-i2v, ltx-video. Each "
            "takes what its provider documents, checked at admission."
        ),
    ] = DEFAULT_MODEL
    image: (
        Annotated[VideoImage, Field(description="Animate the picture at this URL (image-to-video).")] | None
    ) = None
    image_ref: (
        Annotated[
            ImageRef,
            Field(
                description="Animate an ImageGeneration's picture (image-to-video): its lineage (the LoRA, "
                "its dataset and source video) becomes the video's."
            ),
        ]
        | None
    ) = None
    duration_seconds: (
        Annotated[
            float,
            Field(
                gt=0,
                le=120,
                description="How long the video is; or numFrames. Unset: the model's default length.",
            ),
        ]
        | None
    ) = None
    num_frames: (
        Annotated[int, Field(ge=1, le=2000, description="How many frames; or durationSeconds.")] | None
    ) = None
    fps: Annotated[int, Field(ge=1, le=60, description="Frames a second; unset: the model's.")] | None = None
    resolution: (
        Annotated[
            Resolution,
            Field(description="480p, 580p, 720p or 1080p, as the model takes; unset: its default."),
        ]
        | None
    ) = None
    aspect_ratio: (
        Annotated[
            AspectRatio,
            Field(description="16:9, 9:16, 1:1, 4:3, 3:4, or auto (the picture's), as the model takes."),
        ]
        | None
    ) = None
    seed: Annotated[int, Field(ge=0, le=4294967295, description="Fixes the randomness.")] | None = None
    loras: Annotated[
        list[LoraEntry],
        Field(
            max_length=5,
            description="Up to 5 LoRAs made for the video model's family (Wan 2.2, Wan 2.1, LTX-Video), "
            "by url; only for models that take them. A loraRef is refused: every LoraTraining makes a "
            "FLUX.1 LoRA, which no video model loads (animate a picture made with it instead).",
        ),
    ] = []
    provider: Annotated[
        Literal["fal", "offline", "cluster"],
        Field(
            description="fal generates on fal.ai; cluster on the cluster's own GPUs (docs/cluster-gpus.md); "
            "offline encodes a labelled placeholder video of the asked shape."
        ),
    ] = DEFAULT_PROVIDER


# --- what a run made -------------------------------------------------------------------------------


class LikenessSample(ApiModel):
    time_seconds: Annotated[float, Field(ge=0, description="Where in the video the frame is.")]
    score: (
        Annotated[
            float,
            Field(
                ge=-1, le=1, description="Its face's similarity to the person (cosine, SFace); null: no face."
            ),
        ]
        | None
    ) = None
    faces: Annotated[int, Field(ge=0, description="Faces found in the frame.")] = 0


class VideoLikeness(ApiModel):
    """Whether the face in a video made from a LoRA (or from a picture made with one) stays that
    LoRA's person along the clip (docs/videos.md#likeness-over-time)."""

    verdict: Annotated[
        Literal["good", "poor", "no-faces", "unmeasured"],
        Field(description="good, poor (not the person, or drifts away from them), no-faces, unmeasured."),
    ]
    reasons: Annotated[list[Annotated[str, Field(max_length=400)]], Field(max_length=8)] = []
    median: Annotated[float, Field(description="The median similarity of the frames with a face.")] | None = (
        None
    )
    lowest: Annotated[float, Field(description="The lowest similarity of a frame.")] | None = None
    lowest_at_seconds: Annotated[float, Field(ge=0, description="Where that frame is.")] | None = None
    drift: (
        Annotated[
            float,
            Field(
                description="The first third's median minus the last third's: above 0, the face moves away."
            ),
        ]
        | None
    ) = None
    percent: (
        Annotated[
            float,
            Field(
                description="The median from strangers (0) to the person's own photographs' likeness (100)."
            ),
        ]
        | None
    ) = None
    upper_bound: (
        Annotated[
            float, Field(description="The person's own photographs' likeness to each other (leave-one-out).")
        ]
        | None
    ) = None
    threshold: Annotated[float, Field(description="At or above it a face is the person.")] = 0.0
    samples: Annotated[
        list[LikenessSample], Field(max_length=32, description="The frames scored, evenly across the video.")
    ] = []
    lora: Annotated[ResolvedLora, Field(description="The LoRA whose person was looked for.")] | None = None


class GeneratedVideo(ApiModel):
    uri: Annotated[str, Field(description="The MP4 (H.264, yuv420p, its index at the front: faststart).")]
    content_type: str = "video/mp4"
    size_bytes: Annotated[int, Field(ge=0)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    duration_seconds: Annotated[float, Field(ge=0, description="Its length, as decoded.")]
    frames: Annotated[int, Field(ge=0, description="Its frames, as decoded.")]
    fps: Annotated[float, Field(ge=0, description="Frames a second.")]
    width: Annotated[int, Field(ge=0)]
    height: Annotated[int, Field(ge=0)]
    codec: Annotated[str, Field(max_length=32, description="The video codec, e.g. h264.")] = "h264"
    original_uri: Annotated[
        str,
        Field(
            description="The file the provider delivered (original.webm or original.mp4), kept as it was "
            "paid for where the video is a transcode of it (it was not H.264, yuv420p, in an MP4); "
            "empty otherwise."
        ),
    ] = ""
    original_codec: Annotated[
        str,
        Field(max_length=64, description="That file's codec and pixel format (vp9/yuv420p, say)."),
    ] = ""
    seed: Annotated[int, Field(ge=0)] | None = None
    poster_uri: Annotated[str, Field(description="Its first frame as a JPEG (poster.jpg).")] = ""
    thumbnail_uri: Annotated[str, Field(description="A small JPEG of the poster (thumbs/poster.jpg).")] = ""
    strip_uri: Annotated[
        str, Field(description="A strip of frames across the video, one JPEG (strip.jpg).")
    ] = ""
    likeness: (
        Annotated[
            VideoLikeness,
            Field(
                description="Whether the face stays the LoRA's person along the video, when made with one."
            ),
        ]
        | None
    ) = None


class ResolvedImage(ApiModel):
    """The picture a video animates: an imageRef resolved to the version used (the lineage of the
    video: which ImageGeneration, uid, version and image), or a URL."""

    uri: Annotated[str, Field(description="The picture used.")]
    name: Annotated[str, Field(description="The ImageGeneration it came from (imageRef), if any.")] = ""
    uid: Annotated[str, Field(description="That ImageGeneration's uid.")] = ""
    version: Annotated[int, Field(ge=0, description="Its version that was used.")] = 0
    image: Annotated[int, Field(ge=0, description="Which of that version's images (1 for the first).")] = 0
    loras: Annotated[
        list[ResolvedLora],
        Field(max_length=8, description="The LoRAs that picture was made with (its lineage)."),
    ] = []


class VideoVersion(VersionBase):
    """The video one run made (generated-videos/{owner}/{uid}/v{n}/)."""

    model: Annotated[str, Field(description="The video model it was made with.")] = ""
    video: GeneratedVideo
    image: Annotated[ResolvedImage, Field(description="The picture it animates, if any.")] | None = None
    loras: Annotated[list[ResolvedLora], Field(description="The LoRAs it was made with.")] = []


class VideoGenerationStatus(CommonStatus):
    provider: Annotated[str, Field(description="The provider that made the latest version's video.")] = ""
    video: Annotated[GeneratedVideo, Field(description="The latest version's video.")] | None = None
    image: Annotated[ResolvedImage, Field(description="The picture the latest version animates.")] | None = (
        None
    )
    loras: Annotated[
        list[ResolvedLora], Field(description="The LoRAs the latest version was made with.")
    ] = []
    latest_version: Annotated[int, Field(ge=0, description="The newest version; 0 before the first.")] = 0
    versions: Annotated[
        list[VideoVersion],
        Field(
            description="The newest 100 versions, oldest first: a run for a new spec generation adds one "
            "(olderVersions counts the rest; the catalog keeps every one)."
        ),
    ] = []


# --- what a run of a spec makes ------------------------------------------------------------------


@dataclass(frozen=True)
class VideoShape:
    """The video a spec asks for, its unset fields filled in from its model."""

    model: VideoModelInfo
    mode: Mode
    frames: int
    fps: int
    resolution: str
    aspect_ratio: str

    @property
    def duration_seconds(self) -> float:
        return self.frames / self.fps

    @property
    def app(self) -> str:
        return self.model.apps[self.mode]


def shape_of(spec: VideoGenerationSpec) -> VideoShape:
    """What a run of `spec` makes: its frames (numFrames; durationSeconds at the frame rate, on the
    model's grid of frame counts; else the model's default), frame rate, resolution and aspect."""
    return shape_of_wire(spec.wire())


def shape_of_wire(spec: Mapping[str, Any]) -> VideoShape:
    """`shape_of` of a spec as on the wire (a resource's, admitted already)."""
    model = MODELS.get(str(spec.get("model") or DEFAULT_MODEL), MODELS[DEFAULT_MODEL])
    mode: Mode = "image" if spec.get("image") or spec.get("imageRef") else "text"
    fps = int(spec.get("fps") or model.default_fps or ASSUMED_FPS)
    if spec.get("numFrames"):
        frames = int(spec["numFrames"])
    elif spec.get("durationSeconds"):
        frames = on_grid(model, round(float(spec["durationSeconds"]) * fps))
    else:
        frames = model.default_frames
    return VideoShape(
        model=model,
        mode=mode if model.takes(mode) else model.modes[0],
        frames=frames,
        fps=fps,
        resolution=str(spec.get("resolution") or model.default_resolution or "720p"),
        aspect_ratio=str(spec.get("aspectRatio") or model.default_aspect_ratio),
    )


def unloadable_lora(model: str, loras: Sequence[ResolvedLora], trained: Sequence[bool] = ()) -> str | None:
    """Why `model` cannot load one of `loras`, or None: a LoraTraining's LoRA (by loraRef, or by
    its stored file's URL, so with its lineage: `trained[i]` where the caller knows it otherwise)
    is a FLUX.1 LoRA, and no video model is FLUX.1. Said before anything is paid or drawn."""
    info = MODELS.get(model)
    if info is None or info.family == LORA_TRAINING_FAMILY:
        return None
    for n, lora in enumerate(loras):
        if lora.name or lora.uid or (n < len(trained) and trained[n]):
            what = f"loraRef {lora.name!r}" if lora.name else lora.uri.split("?", 1)[0]
            return (
                f"loras[{n}]: {what} is a LoraTraining's LoRA, made for {LORA_TRAINING_FAMILY}, and model "
                f"{model} loads {info.family} LoRAs only: remove it, give a {info.family} LoRA by url, or "
                "animate a picture made with it (imageRef) (docs/videos.md#loras)"
            )
    return None


def on_grid(model: VideoModelInfo, frames: int) -> int:
    """The frame count nearest `frames` that the model makes (step·k + 1, within its range)."""
    if model.frames is None:
        return max(1, frames)
    low, high = model.frames
    step = model.frame_step
    nearest = step * round((frames - 1) / step) + 1
    while nearest < low:
        nearest += step
    while nearest > high:
        nearest -= step
    return nearest
