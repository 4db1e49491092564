"""FLUX LoRA files as diffusers writes and reads them, the format fal's trainers return and
fal's flux-lora accepts: safetensors, one `lora_A` (down) and `lora_B` (up) weight per adapted
layer, named after the layer in diffusers' FluxTransformer2DModel under `transformer.`
(`transformer.transformer_blocks.0.attn.to_q.lora_A.weight`), alpha equal to the rank (no alpha
tensors: the scale is 1). Kohya-style files (`lora_unet_double_blocks_0_img_attn_qkv.lora_down
.weight`, what ai-toolkit writes) load too: diffusers converts them."""

from __future__ import annotations

import shutil
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote, urlparse

from contentgen.errors import InvalidInput, TransientError

if TYPE_CHECKING:
    import torch

# The layers a LoRA adapts: every attention projection of the double blocks (image and text
# streams) and the single blocks, as diffusers' FLUX LoRA example does by default.
TARGETS = (
    "attn.to_q",
    "attn.to_k",
    "attn.to_v",
    "attn.to_out.0",
    "attn.add_q_proj",
    "attn.add_k_proj",
    "attn.add_v_proj",
    "attn.to_add_out",
)
# The double blocks' feed-forward layers (image and text streams), which diffusers' FLUX LoRA
# example adapts besides the attention by default.
FEEDFORWARD = ("ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2")
Targets = Literal["attention", "attention+feedforward", "all-linear"]
PRESETS: tuple[Targets, ...] = ("attention", "attention+feedforward", "all-linear")
BLOCKS = ("transformer_blocks.", "single_transformer_blocks.")
PREFIX = "transformer."
LIMIT = 2 * 1024**3  # a FLUX LoRA of rank 128 is about 1.2 GB


def target_modules(linear_names: Iterable[str], preset: str) -> list[str]:
    """The names of the transformer's linear layers (`named_modules` of nn.Linear) a preset adapts
    (pure): attention (TARGETS), attention+feedforward (and FEEDFORWARD), all-linear (every linear
    layer of the double and single blocks, their modulation's included, as ai-toolkit)."""
    if preset not in PRESETS:
        raise ValueError(f"training.loraTargets {preset!r} is not one of {', '.join(PRESETS)}")
    suffixes = {"attention": TARGETS, "attention+feedforward": (*TARGETS, *FEEDFORWARD)}.get(preset)
    inside = [n for n in linear_names if n.startswith(BLOCKS)]
    if suffixes is None:
        return inside
    return [n for n in inside if n.endswith(tuple("." + s for s in suffixes))]


Format = Literal["diffusers", "peft", "kohya", "unknown"]


def key_format(keys: Iterable[str]) -> Format:
    """Which naming a LoRA file's tensors follow (pure)."""
    names = list(keys)
    if names and all(k.startswith(PREFIX) and (".lora_A." in k or ".lora_B." in k) for k in names):
        return "diffusers"
    if names and all(".lora_A." in k or ".lora_B." in k for k in names):
        return "peft"  # a bare peft state dict, without the component's prefix
    if names and all(k.startswith("lora_unet_") for k in names):
        return "kohya"
    return "unknown"


def as_file_keys(peft_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A peft state dict of the transformer (`transformer_blocks.0.attn.to_q.lora_A.weight`) as
    the file's tensors, contiguous and on the CPU."""
    return {PREFIX + k: v.detach().to("cpu").contiguous() for k, v in sorted(peft_state.items())}


def as_peft_keys(file_tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix(PREFIX): v for k, v in file_tensors.items()}


def save(path: Path, peft_state: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> Path:
    from safetensors.torch import save_file

    save_file(as_file_keys(peft_state), str(path), metadata={"format": "pt", **metadata})
    return path


def load(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return dict(load_file(str(path)))


def fetch(url: str, work_dir: Path, number: int) -> Path:
    """A LoRA file from a file:// path (a local store) or an http(s) URL (presigned)."""
    target = work_dir / f"lora-{number}.safetensors"
    parsed = urlparse(url)
    if parsed.scheme == "file":
        source = Path(unquote(parsed.path))
        if not source.is_file():
            raise InvalidInput(f"loras[{number}]: {url} does not exist")
        shutil.copyfile(source, target)
        return target
    if parsed.scheme not in ("http", "https"):
        raise InvalidInput(f"loras[{number}]: cannot fetch {url}: use https://, s3:// or a LoraTraining")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, target.open("wb") as out:  # noqa: S310
            copied = 0
            while chunk := response.read(1024 * 1024):
                copied += len(chunk)
                if copied > LIMIT:
                    raise InvalidInput(f"loras[{number}]: {url} is larger than 2 GiB")
                out.write(chunk)
    except OSError as exc:
        raise TransientError(
            f"loras[{number}]: could not fetch {url} ({exc})", reason="SourceUnavailable"
        ) from None
    return target
