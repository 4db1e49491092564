"""The video models VideoGeneration runs on and what each takes, as one table (`MODELS`): the rules
(limits.py), the docs' models table and a run's shape (shape.py) are all made from it, so a limit is
said once.

Each model's limits are what its provider documents: fal's app pages (the input schema of each app,
read 2026-11-24), diffusers' Wan and LTX-Video pipelines for provider cluster. Where a page leaves a
value out, the table is narrower than the provider may be (a request the provider would refuse is
never admitted), and says so in `notes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..providers import FAL, OWN_GPUS, PICTURES_DEFAULT, PictureProvider

VideoModel = Literal[
    "wan-2.2-t2v",
    "wan-2.2-i2v",
    "ltx-video-13b",
    "kling-2.5-turbo",
    "wan-1.3b-t2v",
    "wan-14b-i2v",
    "wan-2.2-a14b-t2v",
    "ltx-video",
    "ltx-2",
]
Resolution = Literal["480p", "580p", "720p", "1080p"]
AspectRatio = Literal["16:9", "9:16", "1:1", "4:3", "3:4", "auto"]
Mode = Literal["text", "image"]
DEFAULT_MODEL: VideoModel = "wan-2.2-t2v"
DEFAULT_PROVIDER: PictureProvider = PICTURES_DEFAULT
# The family of a LoraTraining's LoRA by default (training.baseModel flux.1), which no video model
# loads (their layers are not FLUX's); a video LoRA's base model is api/base_models.py's.
LORA_TRAINING_FAMILY = "FLUX.1"
# A video's frames when neither numFrames nor durationSeconds says, for a model that takes
# durations only (Kling): its default duration at the frame rate assumed for it.
ASSUMED_FPS = 24


@dataclass(frozen=True)
class VideoModelInfo:
    """One model: the provider that runs it and what it takes, as that provider documents it."""

    name: str
    provider: str  # the provider that runs it: a paid one, or the cluster's own GPUs
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
    price: str  # in words, for the docs; the table's numbers are in pricing/
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
_DIFFUSERS_LTX2 = "https://huggingface.co/docs/diffusers/api/pipelines/ltx2"
_GPU_TIME = "GPU time (the cluster's GPU-hour price)"


def _wan_on_own_gpus(
    name: str, apps: dict[str, str], resolutions: tuple[Resolution, ...], family: str, notes: str
) -> VideoModelInfo:
    """A Wan model on the cluster's GPUs, through diffusers' Wan pipelines: 4k+1 frames up to 81 at
    16 a second by default, at 480p by default, taking LoRAs; a picture's aspect where it animates one."""
    modes: tuple[Mode, ...] = tuple(m for m in ("text", "image") if m in apps)
    animates = "image" in apps
    return VideoModelInfo(
        name=name,
        provider=OWN_GPUS,
        modes=modes,
        apps=apps,
        frames=(5, 81),
        frame_step=4,
        default_frames=81,
        fps=(4, 60),
        fps_range=True,
        default_fps=16,
        durations=(),
        resolutions=resolutions,
        default_resolution="480p",
        aspect_ratios=("auto", "16:9", "9:16", "1:1") if animates else ("16:9", "9:16", "1:1"),
        default_aspect_ratio="auto" if animates else "16:9",
        loras=True,
        family=family,
        price=_GPU_TIME,
        source=_DIFFUSERS_WAN,
        notes=notes,
    )


def _ltx_on_own_gpus(name: str, pipeline: str, family: str, source: str, notes: str) -> VideoModelInfo:
    """An LTX model on the cluster's GPUs, through diffusers' `<pipeline>Pipeline` and its
    image-to-video twin: 8k+1 frames up to 257 at 24 a second by default, at 480p by default,
    sides on multiples of 32, taking LoRAs of its family."""
    return VideoModelInfo(
        name=name,
        provider=OWN_GPUS,
        modes=("text", "image"),
        apps={
            "text": f"diffusers {pipeline}Pipeline, {family}",
            "image": f"diffusers {pipeline}ImageToVideoPipeline, {family}",
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
        family=family,
        price=_GPU_TIME,
        source=source,
        notes=f"{notes}numFrames 8k+1; width and height multiples of 32",
    )


MODELS: dict[str, VideoModelInfo] = {
    m.name: m
    for m in (
        VideoModelInfo(
            name="wan-2.2-t2v",
            provider=FAL.name,
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
            provider=FAL.name,
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
            provider=FAL.name,
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
            provider=FAL.name,
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
        _wan_on_own_gpus(
            "wan-1.3b-t2v",
            {"text": "diffusers WanPipeline, Wan2.1-T2V-1.3B"},
            ("480p",),
            "Wan 2.1",
            notes="trained at 480p; numFrames 4k+1",
        ),
        _wan_on_own_gpus(
            "wan-14b-i2v",
            {"image": "diffusers WanImageToVideoPipeline, Wan2.1-I2V-14B"},
            ("480p", "720p"),
            "Wan 2.1",
            notes="numFrames 4k+1; 720p wants a card of 80 GB or CPU offload",
        ),
        _wan_on_own_gpus(
            "wan-2.2-a14b-t2v",
            {"text": "diffusers WanPipeline, Wan2.2-T2V-A14B (two experts)"},
            ("480p", "720p"),
            "Wan 2.2",
            notes="numFrames 4k+1; two 14B experts (a Wan 2.2 LoRA pair loads into both); 720p wants a card "
            "of 80 GB",
        ),
        _ltx_on_own_gpus("ltx-video", "LTX", "LTX-Video", _DIFFUSERS_LTX, ""),
        _ltx_on_own_gpus(
            "ltx-2",
            "LTX2",
            "LTX-2",
            _DIFFUSERS_LTX2,
            "with its sound (LTX-2 draws the audio with the frames); ",
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
