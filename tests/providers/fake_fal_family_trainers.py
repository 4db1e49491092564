"""fal's v2 trainers of the newer picture families, for the fal fake (api/base_models.py names the
pages and what each says):

- fal-ai/qwen-image-2512-trainer-v2 (its llms.txt, read 2026-12-02): image_data_url (required, a
  zip of ROOT.EXT pictures with ROOT.txt captions), steps 10 to 40000 (default 2000),
  default_caption ("If None, missing captions will cause an error"), learning_rate; "$0.00095 per
  step (minimum of 500 steps is charged)".
- fal-ai/z-image-turbo-trainer-v2 (its model page): "$0.85 per 1000-step training run. It scales
  per step"; its input and output schemas were not found to read.

What the pages leave open, the fake varies (`FamilyTrainerVariant`): the Z-Image trainer's inputs
(`z_inputs`: its sibling's names, or trigger_phrase in place of default_caption, which would
refuse what contentgen sends), and each trainer's result (`output`: the LoRA under
diffusers_lora_file or lora_file; `config`: with a config_file or without). Unknown inputs are
refused (extra_forbidden), as the fake's other apps do."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

Z_IMAGE_TURBO = "fal-ai/z-image-turbo-trainer-v2"
QWEN_2512 = "fal-ai/qwen-image-2512-trainer-v2"
FAMILY_TRAINERS = (Z_IMAGE_TURBO, QWEN_2512)
PAGE_PRICES = {Z_IMAGE_TURBO: 0.00085, QWEN_2512: 0.00095}
BILLED_MINIMUM = {QWEN_2512: 500}
_V2 = frozenset({"image_data_url", "steps", "default_caption", "learning_rate"})
STILLS = (".png", ".jpg", ".jpeg", ".webp")


@dataclass
class FamilyTrainerVariant:
    z_inputs: str = "v2"  # "v2" | "trigger_phrase"
    output: str = "diffusers_lora_file"  # "diffusers_lora_file" | "lora_file"
    config: bool = True


def fields(app: str, variant: FamilyTrainerVariant) -> frozenset[str]:
    if app == Z_IMAGE_TURBO and variant.z_inputs == "trigger_phrase":
        return (_V2 - {"default_caption"}) | {"trigger_phrase"}
    return _V2


def captions(data: bytes) -> dict[str, str]:
    """Each picture of the zip with its caption ("" none)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = [n for n in archive.namelist() if not n.endswith("/")]
        texts = {str(PurePosixPath(n).with_suffix("")): n for n in names if n.endswith(".txt")}
        found = {}
        for name in names:
            if PurePosixPath(name).suffix.lower() in STILLS:
                text = texts.get(str(PurePosixPath(name).with_suffix("")))
                found[name] = archive.read(text).decode() if text else ""
        return found


def validate(
    app: str,
    args: dict[str, Any],
    fetch: Callable[[Any], bytes | None],
    variant: FamilyTrainerVariant,
    error: Callable[..., dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    allowed = fields(app, variant)
    errors = [
        error([n], "Extra inputs are not permitted", "extra_forbidden") for n in args if n not in allowed
    ]
    steps = args.get("steps", 2000)
    if not isinstance(steps, int) or isinstance(steps, bool) or not 10 <= steps <= 40000:
        errors.append(error(["steps"], "Input should be between 10 and 40000", "range"))
    if "image_data_url" not in args:
        return [*errors, error(["image_data_url"], "field required", "missing")], {}
    data = fetch(args["image_data_url"])
    if data is None:
        url = args["image_data_url"]
        return [
            *errors,
            error(["image_data_url"], f"Failed to download the file from {url}", "file_download_error"),
        ], {}
    read = captions(data)
    if not read:
        errors.append(error(["image_data_url"], "The archive holds no images", "value_error"))
    if any(not c for c in read.values()) and not args.get("default_caption"):
        errors.append(error(["default_caption"], "missing captions and no default_caption", "value_error"))
    return errors, read


def billed_steps(app: str, args: dict[str, Any]) -> int:
    return max(int(args.get("steps", 2000)), BILLED_MINIMUM.get(app, 0))


def output(
    request_id: str, weights: bytes, config: bytes, variant: FamilyTrainerVariant
) -> tuple[dict[str, Any], dict[str, bytes]]:
    base = f"https://v3.fal.media/files/out/{request_id}"
    files = {f"{base}/lora.safetensors": weights}
    result: dict[str, Any] = {
        variant.output: {
            "url": f"{base}/lora.safetensors",
            "file_name": "lora.safetensors",
            "file_size": len(weights),
        }
    }
    if variant.config:
        files[f"{base}/config.json"] = config
        result["config_file"] = {
            "url": f"{base}/config.json",
            "file_name": "config.json",
            "file_size": len(config),
        }
    return result, files
