"""FLUX.1 (dev or schnell) from a staged diffusers model directory: loading it on a device, the
text and picture encodings the trainer caches, and the packing FLUX's transformer reads.

bf16 on a GPU (FLUX's own precision, half the memory of fp32), fp32 on the CPU (where bf16 is
slow and the tests run). Nothing is fetched: every load is `local_files_only`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

# What a diffusers FLUX directory holds (model_index.json names them); checked before any work.
REQUIRED = (
    "model_index.json",
    "scheduler",
    "text_encoder",
    "text_encoder_2",
    "tokenizer",
    "tokenizer_2",
    "transformer",
    "vae",
)
# T5's tokens per prompt: FLUX.1-dev was trained on 512 (schnell 256); a model whose tokenizer
# says less (the tests' tiny one) uses its own length.
MAX_SEQUENCE = 512


@dataclass(frozen=True)
class Device:
    where: torch.device
    dtype: torch.dtype

    @property
    def cuda(self) -> bool:
        return self.where.type == "cuda"


def device(name: str = "") -> Device:
    """`name` (cpu, cuda, cuda:1), or the GPU when there is one: bf16 on a GPU, fp32 on the CPU."""
    chosen = torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))
    return Device(chosen, torch.bfloat16 if chosen.type == "cuda" else torch.float32)


def load_pipeline(model_dir: Path, on: Device) -> Any:
    """The FluxPipeline of `model_dir`, on the device in its dtype."""
    from diffusers import FluxPipeline

    pipe = FluxPipeline.from_pretrained(  # type: ignore[no-untyped-call]
        str(model_dir), dtype=on.dtype, local_files_only=True
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(on.where)


def max_sequence(pipe: Any) -> int:
    return int(min(MAX_SEQUENCE, pipe.tokenizer_2.model_max_length))


@torch.no_grad()
def encode_prompt(pipe: Any, prompt: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(T5's sequence, CLIP's pooled vector, the text's position ids) of one prompt."""
    embeds, pooled, text_ids = pipe.encode_prompt(
        prompt=prompt, prompt_2=prompt, device=pipe.transformer.device, max_sequence_length=max_sequence(pipe)
    )
    return embeds, pooled, text_ids


@torch.no_grad()
def encode_picture(pipe: Any, pixels: torch.Tensor) -> torch.Tensor:
    """The VAE's latents of a picture (1 × 3 × H × W in [-1, 1]), shifted and scaled as FLUX's
    transformer sees them; the distribution's mean, so a cached latent is the same every epoch."""
    vae = pipe.vae
    latents = vae.encode(pixels.to(vae.device, vae.dtype)).latent_dist.mean
    scaled: torch.Tensor = (latents - vae.config.shift_factor) * vae.config.scaling_factor
    return scaled


def pack(latents: torch.Tensor) -> torch.Tensor:
    """B × C × H × W latents as FLUX's tokens: 2 × 2 patches, B × (H/2 · W/2) × 4C."""
    b, c, h, w = latents.shape
    patches = latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return patches.reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """`pack`'s inverse, for latents of `height` × `width`."""
    b, _, channels = tokens.shape
    grid = tokens.view(b, height // 2, width // 2, channels // 4, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return grid.reshape(b, channels // 4, height, width)


def image_ids(height: int, width: int, on: Device) -> torch.Tensor:
    """The position ids of `pack`'s tokens (row, column in the second and third axis)."""
    ids = torch.zeros(height // 2, width // 2, 3)
    ids[..., 1] = torch.arange(height // 2)[:, None]
    ids[..., 2] = torch.arange(width // 2)[None, :]
    return ids.reshape(-1, 3).to(on.where, on.dtype)
