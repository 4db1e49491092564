"""fal's Wan trainers, as their pages document them, for the fal fake (api/base_models.py names the
pages and what each says):

- fal-ai/wan-trainer: training_data_url (required), number_of_steps 100 to 20000 (default 400),
  learning_rate 0.000001 to 1 (default 0.0002), trigger_phrase (default ""), auto_scale_input
  (boolean); a zip of "images and/or videos", a caption in a text file "with the same name as the
  image/video file"; output {lora_file, config_file}; $0.005 a step.
- fal-ai/wan-22-image-trainer: training_data_url and trigger_phrase required,
  include_synthetic_captions, use_face_detection, use_face_cropping; stills; $0.0045 a step,
  "minimum of 100 steps is charged".
- fal-ai/wan-22-trainer/t2v-a14b and .../i2v-a14b (fal's guide): "10 or more images or short clips
  with matching .txt captions", "billed per step ... with a 100-step minimum", returns "a
  .safetensors LoRA file"; the image-to-video trainer "requires video training data".

The media a zip may hold, by fal's Wan LoRA training example
(https://fal.ai/docs/examples/image-generation/deploy-wan-lora-training): .png, .jpg, .jpeg, .gif,
.mp4, a caption .txt beside each. Unknown inputs are refused (extra_forbidden), as the fake's
other apps do.

What the pages leave open, the fake varies (`TrainerVariant`): whether a trainer reads the zip's
top level only or every folder (`layout`); whether a medium without a caption is refused or
trained on the trigger phrase alone (`captions`); whether fewer than 10 items are refused
(`few`: "try to use at least 10" is advice); whether the stills-only trainer refuses a video or
leaves it out (`videos_on_stills`); the Wan 2.2 trainers' per-step price (`wan22_price`); and
what the Wan 2.2 trainers return (`wan22_output`: one file under diffusers_lora_file or lora_file,
or a high- and low-noise pair, named by key or by file name), and under which names a trained
LoRA's tensors are (`names`: diffusers' `transformer.blocks.0.attn1.to_q`, Wan's own
`diffusion_model.blocks.0.self_attn.q`, or kohya's `lora_unet_blocks_0_self_attn_q`).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np
from safetensors.numpy import save

WAN_TRAINER = "fal-ai/wan-trainer"
WAN22_T2V = "fal-ai/wan-22-trainer/t2v-a14b"
WAN22_I2V = "fal-ai/wan-22-trainer/i2v-a14b"
WAN22_IMAGE = "fal-ai/wan-22-image-trainer"
WAN_TRAINERS = (WAN_TRAINER, WAN22_T2V, WAN22_I2V, WAN22_IMAGE)

STILLS = (".png", ".jpg", ".jpeg")
VIDEOS = (".gif", ".mp4")
_COMMON = {"training_data_url", "trigger_phrase", "number_of_steps", "learning_rate"}
FIELDS = {
    WAN_TRAINER: frozenset(_COMMON | {"auto_scale_input"}),
    WAN22_IMAGE: frozenset(
        _COMMON | {"include_synthetic_captions", "use_face_detection", "use_face_cropping"}
    ),
    WAN22_T2V: frozenset(_COMMON),
    WAN22_I2V: frozenset(_COMMON),
}
REQUIRED = {WAN22_IMAGE: ("training_data_url", "trigger_phrase")}
STEPS = {WAN_TRAINER: (100, 20000)}  # the others' pages were not read: the API's own range
PAGE_PRICES = {WAN_TRAINER: 0.005, WAN22_IMAGE: 0.0045}
BILLED_MINIMUM = {WAN22_T2V: 100, WAN22_I2V: 100, WAN22_IMAGE: 100}


@dataclass
class TrainerVariant:
    layout: str = "recursive"  # "recursive" | "top"
    captions: str = "optional"  # "optional" | "required"
    few: str = "allowed"  # "allowed" | "refused" (fewer than 10 items)
    videos_on_stills: str = "ignored"  # "ignored" | "refused"
    wan22_price: float = 0.0045
    wan22_output: str = "single"  # "single" | "single-lora_file" | "pair" | "pair-by-name"
    names: str = "diffusers"  # "diffusers" | "wan" | "kohya"


@dataclass
class Trained:
    """What a trainer read of the zip: its media by name, each with its caption ("" none)."""

    stills: dict[str, str]
    videos: dict[str, str]


def read_zip(data: bytes, variant: TrainerVariant) -> Trained:
    stills: dict[str, str] = {}
    videos: dict[str, str] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = [n for n in archive.namelist() if not n.endswith("/")]
        if variant.layout == "top":
            names = [n for n in names if "/" not in n]
        texts = {str(PurePosixPath(n).with_suffix("")): n for n in names if n.lower().endswith(".txt")}
        for name in names:
            suffix = PurePosixPath(name).suffix.lower()
            if suffix not in STILLS + VIDEOS:
                continue
            caption_file = texts.get(str(PurePosixPath(name).with_suffix("")))
            caption = archive.read(caption_file).decode() if caption_file else ""
            (videos if suffix in VIDEOS else stills)[name] = caption
    return Trained(stills, videos)


Error = Callable[..., dict[str, Any]]


def validate(
    app: str,
    args: dict[str, Any],
    fetch: Callable[[Any], bytes | None],
    variant: TrainerVariant,
    error: Error,
) -> tuple[list[dict[str, Any]], Trained | None]:
    errors = [
        error([name], "Extra inputs are not permitted", "extra_forbidden")
        for name in args
        if name not in FIELDS[app]
    ]
    errors += [
        error([name], "field required", "missing") for name in REQUIRED.get(app, ()) if name not in args
    ]
    low, high = STEPS.get(app, (1, 10000))
    steps = args.get("number_of_steps", 400)
    if not isinstance(steps, int) or isinstance(steps, bool) or not low <= steps <= high:
        errors.append(error(["number_of_steps"], f"Input should be between {low} and {high}", "range"))
    data = fetch(args.get("training_data_url")) if "training_data_url" in args else None
    if "training_data_url" not in args:
        errors.append(error(["training_data_url"], "field required", "missing"))
        return errors, None
    if data is None:
        url = args["training_data_url"]
        errors.append(
            error(["training_data_url"], f"Failed to download the file from {url}", "file_download_error")
        )
        return errors, None
    trained = read_zip(data, variant)
    media = {**trained.stills, **trained.videos}
    if not media:
        errors.append(error(["training_data_url"], "The archive holds no images or videos", "value_error"))
    if variant.few == "refused" and 0 < len(media) < 10:
        errors.append(error(["training_data_url"], "At least 10 images or videos are needed", "value_error"))
    if variant.captions == "required" and any(not caption for caption in media.values()):
        errors.append(
            error(["training_data_url"], "Every image and video needs a caption file", "value_error")
        )
    if app == WAN22_I2V and not trained.videos:
        errors.append(
            error(
                ["training_data_url"], "The image-to-video trainer needs video training data", "value_error"
            )
        )
    if app == WAN22_IMAGE and trained.videos:
        if variant.videos_on_stills == "refused":
            errors.append(error(["training_data_url"], "This trainer takes images only", "value_error"))
        else:
            trained.videos.clear()
    return errors, trained


def billed_steps(app: str, args: dict[str, Any]) -> int:
    return max(int(args.get("number_of_steps", 400)), BILLED_MINIMUM.get(app, 0))


def price(app: str, variant: TrainerVariant) -> float:
    return PAGE_PRICES.get(app, variant.wan22_price)


_NAMES = {  # a block's self-attention query, as each trainer may name it
    "diffusers": ("transformer.blocks.{b}.attn1.to_q.lora_{p}.weight", {"A": "A", "B": "B"}),
    "wan": ("diffusion_model.blocks.{b}.self_attn.q.lora_{p}.weight", {"A": "A", "B": "B"}),
    "kohya": ("lora_unet_blocks_{b}_self_attn_q.lora_{p}.weight", {"A": "down", "B": "up"}),
}


def wan_lora(names: str, fill: float) -> bytes:
    """A small Wan LoRA under `names` (see TrainerVariant), its values `fill`."""
    pattern, parts = _NAMES[names]
    tensors = {
        pattern.format(b=block, p=parts[part]): np.full(shape, fill, np.float32)
        for block in range(2)
        for part, shape in (("A", (4, 16)), ("B", (16, 4)))
    }
    return save(tensors, metadata={"format": "pt"})


def output(
    app: str, request_id: str, config: bytes, variant: TrainerVariant
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The trainer's result (a LoRA of values 1.0, and a pair's low-noise one of 2.0), and the files
    it points at by URL."""
    weights, low_noise = wan_lora(variant.names, 1.0), wan_lora(variant.names, 2.0)
    base = f"https://v3.fal.media/files/out/{request_id}"

    def file(name: str, data: bytes) -> dict[str, Any]:
        return {
            "url": f"{base}/{name}",
            "content_type": "application/octet-stream",
            "file_name": name,
            "file_size": len(data),
        }

    files: dict[str, bytes] = {}

    def put(name: str, data: bytes) -> dict[str, Any]:
        files[f"{base}/{name}"] = data
        return file(name, data)

    if app == WAN_TRAINER:
        return {
            "lora_file": put("lora.safetensors", weights),
            "config_file": put("config.json", config),
        }, files
    shape = variant.wan22_output
    if shape == "pair":
        return {
            "high_noise_lora": put("high_noise_lora.safetensors", weights),
            "low_noise_lora": put("low_noise_lora.safetensors", low_noise),
            "config_file": put("config.json", config),
        }, files
    if shape == "pair-by-name":
        return {
            "lora_file": put("wan22_lora_high_noise.safetensors", weights),
            "lora_file_2": put("wan22_lora_low_noise.safetensors", low_noise),
        }, files
    key = "lora_file" if shape == "single-lora_file" else "diffusers_lora_file"
    return {
        key: put("pytorch_lora_weights.safetensors", weights),
        "config_file": put("config.json", config),
    }, files
