"""Pictures from FLUX with LoRAs: the resource's LoRA files loaded as named adapters at their
scales (scale 0 adds nothing), one generator seeded once for the request's pictures (the same
seed, prompt, size and LoRAs give the same pictures on one machine)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import flux

# Steps and guidance as the model cards give them: dev is guidance-distilled (28 steps at 3.5),
# schnell is timestep-distilled (4 steps, no guidance).
DEV_STEPS, DEV_GUIDANCE = 28, 3.5
SCHNELL_STEPS = 4


@dataclass(frozen=True)
class Picture:
    prompt: str
    width: int
    height: int
    count: int = 1
    seed: int = 0
    steps: int = DEV_STEPS
    guidance: float = DEV_GUIDANCE
    loras: Sequence[tuple[Path, float]] = ()  # LoRA files and their scales


def generate(pipe: Any, picture: Picture, out_dir: Path) -> list[Path]:
    """PNG files of the pictures, in order."""
    names = []
    if hasattr(pipe, "unload_lora_weights"):
        pipe.unload_lora_weights()
    for number, (path, _) in enumerate(picture.loras):
        name = f"lora{number}"
        pipe.load_lora_weights(str(path), adapter_name=name)
        names.append(name)
    if names:
        pipe.set_adapters(names, adapter_weights=[scale for _, scale in picture.loras])
    generator = torch.Generator("cpu").manual_seed(picture.seed)
    with torch.inference_mode():
        images = pipe(
            prompt=picture.prompt,
            width=picture.width,
            height=picture.height,
            num_images_per_prompt=picture.count,
            num_inference_steps=picture.steps,
            guidance_scale=picture.guidance,
            max_sequence_length=flux.max_sequence(pipe),
            generator=generator,
            output_type="pil",
        ).images
    if names:
        pipe.unload_lora_weights()
    paths = []
    for number, image in enumerate(images, start=1):
        path = out_dir / f"image-{number}.png"
        image.save(path, format="PNG")
        paths.append(path)
    return paths
