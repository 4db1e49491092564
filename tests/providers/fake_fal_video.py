"""fal's video apps, as their pages document them (read 2026-11-24), for the fal fake:

- fal-ai/wan/v2.2-a14b/text-to-video/lora and .../image-to-video
  (https://fal.ai/models/fal-ai/wan/v2.2-a14b/image-to-video/llms.txt): prompt (required),
  image_url (required on image-to-video), num_frames 17 to 161 (default 81), frames_per_second
  4 to 60 (default 16), resolution 480p | 580p | 720p (default 480p), aspect_ratio 16:9 | 9:16 |
  1:1 (and auto on image-to-video), seed, negative_prompt, loras [{path, scale, transformer}] on the
  LoRA app (LoRAWeight: transformer high | low | both, default high: which expert it loads into,
  https://fal.ai/models/fal-ai/wan/v2.7/pro/edit/api#type-LoRAWeight),
  num_interpolated_frames 0 to 4 (default 1) with adjust_fps_for_interpolation (default true): "the
  final FPS will be multiplied by the number of interpolated frames plus one". A picture of another
  aspect ratio is resized and centre-cropped.
- fal-ai/ltxv-13b-098-distilled and .../image-to-video: prompt, negative_prompt, loras, resolution
  480p | 720p (default 720p), aspect_ratio 9:16 | 1:1 | 16:9 | auto, seed, num_frames 9 to 1441
  (default 121); 24 frames a second.
- fal-ai/kling-video/v2.5-turbo/pro/text-to-video and .../image-to-video: prompt (required),
  image_url (required on image-to-video), duration "5" | "10" (strings, default "5"),
  negative_prompt, cfg_scale; aspect_ratio 16:9 | 9:16 | 1:1 on text-to-video only.
- Output: {video: File {url, content_type, file_name, file_size}, seed, prompt} (Kling: video only).

Unknown fields are refused (extra_forbidden), as the fake's trainers do: a misspelt field is a
request fal would run on its defaults. Where the pages are silent the fake varies (`VideoVariant`):
whether File carries content_type and file_size, whether the seed comes back, and the picture
size it makes for a resolution and aspect ratio ("listed": the sizes below; "rounded": each side
to a multiple of 32, as some implementations do), and what the video is encoded as (H.264 in MP4,
VP9 in WebM, HEVC in MP4: fal documents a File, not its codec). The video is really encoded (an
MP4's index at the end, as a plain encoder writes it), so the caller measures what it got.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import av
import numpy as np

WAN_T2V = "fal-ai/wan/v2.2-a14b/text-to-video/lora"
WAN_I2V = "fal-ai/wan/v2.2-a14b/image-to-video"
LTX_T2V = "fal-ai/ltxv-13b-098-distilled"
LTX_I2V = "fal-ai/ltxv-13b-098-distilled/image-to-video"
KLING_T2V = "fal-ai/kling-video/v2.5-turbo/pro/text-to-video"
KLING_I2V = "fal-ai/kling-video/v2.5-turbo/pro/image-to-video"


@dataclass(frozen=True)
class App:
    family: str  # wan | ltx | kling
    image: bool
    loras: bool
    fields: frozenset[str]


_WAN = {"prompt", "negative_prompt", "num_frames", "frames_per_second", "resolution", "aspect_ratio", "seed"}
_WAN |= {"num_interpolated_frames", "adjust_fps_for_interpolation", "num_inference_steps", "guidance_scale"}
_LTX = {"prompt", "negative_prompt", "loras", "resolution", "aspect_ratio", "seed", "num_frames"}
_KLING = {"prompt", "duration", "negative_prompt", "cfg_scale"}
VIDEO_APPS = {
    WAN_T2V: App("wan", False, True, frozenset(_WAN | {"loras"})),
    WAN_I2V: App("wan", True, False, frozenset(_WAN | {"image_url"})),
    LTX_T2V: App("ltx", False, True, frozenset(_LTX)),
    LTX_I2V: App("ltx", True, True, frozenset(_LTX | {"image_url"})),
    KLING_T2V: App("kling", False, False, frozenset(_KLING | {"aspect_ratio"})),
    KLING_I2V: App("kling", True, False, frozenset(_KLING | {"image_url"})),
}
HEIGHTS = {"480p": 480, "580p": 576, "720p": 720}
SIDES = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1)}
KLING_SIZE = (1280, 720)  # Kling's own, at 24 frames a second
KLING_FPS = 24


@dataclass
class VideoVariant:
    file_fields: bool = True  # File carries content_type and file_size
    returns_seed: bool = True
    sizes: str = "listed"  # "listed" | "rounded"
    # What the video is encoded as: fal's pages promise a File, not a codec. "h264": H.264 in MP4;
    # "webm": VP9 in WebM (File's content_type video/webm); "hevc": HEVC in MP4. The URL keeps
    # its .mp4 either way: contentgen reads the bytes, not the name.
    codec: str = "h264"


Error = Callable[..., dict[str, Any]]


def validate(
    app: str, args: dict[str, Any], fetchable: Callable[[Any], bool], error: Error
) -> list[dict[str, Any]]:
    spec = VIDEO_APPS[app]
    errors = [
        error([name], "Extra inputs are not permitted", "extra_forbidden")
        for name in args
        if name not in spec.fields
    ]
    if not isinstance(args.get("prompt"), str) or not args["prompt"]:
        errors.append(error(["prompt"], "field required", "missing"))
    if spec.image:
        if "image_url" not in args:
            errors.append(error(["image_url"], "field required", "missing"))
        elif not fetchable(args["image_url"]):
            errors.append(
                error(
                    ["image_url"],
                    f"Failed to download the file from {args['image_url']}",
                    "file_download_error",
                )
            )

    def ranged(name: str, low: int, high: int) -> None:
        value = args.get(name)
        if name in args and (
            not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high
        ):
            errors.append(error([name], f"Input should be between {low} and {high}", "range"))

    def choice(name: str, options: tuple[str, ...]) -> None:
        if name in args and args[name] not in options:
            errors.append(error([name], f"Input should be {' or '.join(repr(o) for o in options)}", "enum"))

    if spec.family == "kling":
        choice("duration", ("5", "10"))
        choice("aspect_ratio", ("16:9", "9:16", "1:1"))
        return errors
    if spec.family == "wan":
        ranged("num_frames", 17, 161)
        ranged("frames_per_second", 4, 60)
        ranged("num_interpolated_frames", 0, 4)
        choice("resolution", ("480p", "580p", "720p"))
        choice("aspect_ratio", ("16:9", "9:16", "1:1", "auto") if spec.image else ("16:9", "9:16", "1:1"))
    else:
        ranged("num_frames", 9, 1441)
        choice("resolution", ("480p", "720p"))
        choice("aspect_ratio", ("9:16", "1:1", "16:9", "auto"))
    for i, lora in enumerate(args.get("loras") or []):
        if not spec.loras:
            break
        if spec.family == "wan" and lora.get("transformer", "high") not in ("high", "low", "both"):
            said = "Input should be 'high', 'low' or 'both'"
            errors.append(error(["loras", i, "transformer"], said, "enum"))
        if not fetchable(lora.get("path")):
            errors.append(
                error(
                    ["loras", i, "path"],
                    f"Failed to download the file from {lora.get('path')}",
                    "file_download_error",
                )
            )
    return errors


def shape(app: str, args: dict[str, Any], sizes: str) -> tuple[int, int, int, int]:
    """(frames, fps, width, height) of the video the app makes for `args`."""
    spec = VIDEO_APPS[app]
    if spec.family == "kling":
        return int(args.get("duration", "5")) * KLING_FPS, KLING_FPS, *KLING_SIZE
    if spec.family == "wan":
        frames, fps = int(args.get("num_frames", 81)), int(args.get("frames_per_second", 16))
        between = int(args.get("num_interpolated_frames", 1))
        frames = (frames - 1) * (between + 1) + 1
        if args.get("adjust_fps_for_interpolation", True):
            fps *= between + 1
        height = HEIGHTS[args.get("resolution", "480p")]
    else:
        frames, fps = int(args.get("num_frames", 121)), 24
        height = HEIGHTS[args.get("resolution", "720p")]
    across, down = SIDES.get(args.get("aspect_ratio", "16:9"), (16, 9))
    width = round(height * across / down)
    if across < down:
        width, height = height, round(height * down / across)
    if sizes == "rounded":
        width, height = 32 * round(width / 32), 32 * round(height / 32)
    return frames, fps, width - width % 2, height - height % 2


def output(
    app: str, args: dict[str, Any], url: str, seed: int, variant: VideoVariant
) -> tuple[dict[str, Any], bytes]:
    """The app's result for `args`, its video at `url`, and the video's bytes."""
    frames, fps, width, height = shape(app, args, variant.sizes)
    data = encode(frames, fps, width, height, seed, variant.codec)
    file: dict[str, Any] = {"url": url}
    if variant.file_fields:
        webm = variant.codec == "webm"
        name = url.rsplit("/", 1)[-1].replace(".mp4", ".webm" if webm else ".mp4")
        file.update(content_type=f"video/{'webm' if webm else 'mp4'}", file_name=name, file_size=len(data))
    result: dict[str, Any] = {"video": file}
    if VIDEO_APPS[app].family != "kling":
        result["prompt"] = args["prompt"]
        if variant.returns_seed:
            result["seed"] = args.get("seed", seed)
    return result, data


ENCODERS = {  # codec variant: (container format, encoder, its options)
    "h264": ("mp4", "libx264", {"preset": "ultrafast"}),
    "webm": ("webm", "libvpx-vp9", {"deadline": "realtime", "cpu-used": "8"}),
    "hevc": ("mp4", "libx265", {"preset": "ultrafast", "x265-params": "log-level=error"}),
}


def encode(frames: int, fps: int, width: int, height: int, seed: int, codec: str = "h264") -> bytes:
    """A real video of `frames` frames (H.264 in MP4 unless `codec` says): a square moving across
    a flat colour."""
    colour = np.random.default_rng(seed).integers(40, 200, size=3, dtype=np.uint8)
    fmt, encoder, options = ENCODERS[codec]
    with TemporaryDirectory() as folder:
        path = Path(folder) / f"video.{fmt}"
        with av.open(str(path), "w", format=fmt) as container:
            stream = container.add_stream(encoder, rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = options
            for n in range(frames):
                image = np.empty((height, width, 3), np.uint8)
                image[:] = colour
                x = (width - height // 4) * n // max(1, frames - 1)
                image[height // 3 : height // 3 + height // 4, x : x + height // 4] = 255
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return path.read_bytes()
