"""What a GPU check measures: a short LoRA training and one generation with a given model
directory (the tests' tiny FLUX, or a staged one) on a given device, with the device's peak
memory and the mean training step's time. `make gpu-check` runs it where a GPU is present."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from contentgen.api.base_models import base_model

from .families.flux_training import FLUX, Example
from .files import FolderFiles
from .generation import flux, generation
from .training import loop
from .training.family import Job
from .training.plan import Plan


@dataclass(frozen=True)
class Report:
    device: str
    seconds_per_step: float
    generate_seconds: float
    peak_memory_bytes: int  # 0 on the CPU (not measured there)


def check(
    model_dir: Path, pictures: list[tuple[Path, str]], device: str, *, steps: int = 4, resolution: int = 64
) -> Report:
    on = flux.device(device)
    with tempfile.TemporaryDirectory(prefix="contentgen-selfcheck-") as scratch:
        work = Path(scratch)
        examples = [Example(path, caption) for path, caption in pictures]
        plan = Plan(steps=steps, rank=4, resolution=resolution, checkpoint_every=steps)
        checkpoints = FolderFiles(work / "checkpoints")
        trained = loop.train(
            Job(FLUX, model_dir, examples, plan, on, work, checkpoints, base_model("flux.1"))
        )
        if on.cuda:
            torch.cuda.reset_peak_memory_stats(on.where)
        began = time.monotonic()
        pipe = flux.load_pipeline(model_dir, on)
        picture = generation.Picture(prompt=examples[0].caption, width=resolution, height=resolution, steps=2)
        with generation.loras_loaded(pipe, [(trained.final, 1.0)]):
            generation.draw(pipe, picture, work / "picture.png")
        seconds = time.monotonic() - began
        peak = max(
            trained.peak_memory_bytes, int(torch.cuda.max_memory_allocated(on.where)) if on.cuda else 0
        )
    return Report(str(on.where), trained.seconds_per_step, seconds, peak)
