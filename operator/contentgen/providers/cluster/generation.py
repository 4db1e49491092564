"""Pictures from FLUX with LoRAs: the resource's LoRA files loaded as named adapters at their
scales (scale 0 adds nothing), then one picture at a time, each from a generator of its own
seeded with its own seed (`picture_seed`): picture k of a request seeded S is the picture a
one-picture request seeded S + k - 1 makes, whether it was made in one go or after a retry.
The same seed, prompt, size, steps and LoRAs give the same picture on one machine."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Steps and guidance as the model cards give them: dev is guidance-distilled (28 steps at 3.5),
# schnell is timestep-distilled (4 steps, no guidance).
DEV_STEPS, DEV_GUIDANCE = 28, 3.5
SCHNELL_STEPS = 4
SEEDS = 2**32  # the API's seeds are 0 to 2**32 - 1


@dataclass(frozen=True)
class Picture:
    prompt: str
    width: int
    height: int
    seed: int = 0
    steps: int = DEV_STEPS
    guidance: float = DEV_GUIDANCE


def picture_seed(seed: int, number: int) -> int:
    """The seed of picture `number` (1, 2, ...) of a request seeded `seed` (pure)."""
    return (seed + number - 1) % SEEDS


@contextmanager
def loras_loaded(pipe: Any, loras: Sequence[tuple[Path, float]]) -> Iterator[None]:
    """The LoRA files loaded as adapters at their scales while the block runs; none after it
    (nothing stays loaded from one request to the next)."""
    if hasattr(pipe, "unload_lora_weights"):
        pipe.unload_lora_weights()
    names = []
    for number, (path, _) in enumerate(loras):
        name = f"lora{number}"
        pipe.load_lora_weights(str(path), adapter_name=name)
        names.append(name)
    if names:
        pipe.set_adapters(names, adapter_weights=[scale for _, scale in loras])
    try:
        yield
    finally:
        if names:
            pipe.unload_lora_weights()


def draw(pipe: Any, picture: Picture, path: Path, cancelled: Callable[[], bool] = lambda: False) -> Path:
    """One picture, as a PNG file at `path`; once `cancelled()` says so after a denoising step,
    the remaining steps are skipped (the picture is then not the one asked for: drop it)."""
    # here, not above: a worker whose pictures a pool draws reads this module's steps and seeds
    # and never draws (issue 47: torch is seconds of CPU at its start)
    import torch

    from . import flux

    def step_ended(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        if cancelled():
            pipe._interrupt = True  # diffusers' own way out of its loop: the steps left are skipped
        return tensors

    generator = torch.Generator("cpu").manual_seed(picture.seed)
    with torch.inference_mode():
        [image] = pipe(
            prompt=picture.prompt,
            width=picture.width,
            height=picture.height,
            num_images_per_prompt=1,
            num_inference_steps=picture.steps,
            guidance_scale=picture.guidance,
            max_sequence_length=flux.max_sequence(pipe),
            generator=generator,
            output_type="pil",
            callback_on_step_end=step_ended,
        ).images
    image.save(path, format="PNG")
    return path
