"""A test-only model family (training/family.py's Family), one module as every family is: a toy
"transformer" of two linear blocks (a diffusers model, so that peft adapts it as it adapts FLUX's
and Wan's), learning to map each dataset picture's mean colour to itself from noise. It proves the
framework's part is whole: checkpoints, resume, the outcome and the bill, a refusal of several GPUs,
with nothing of it written here. `staged` below writes the staged directory it loads."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.loaders.peft import PeftAdapterMixin
from diffusers.models.modeling_utils import ModelMixin

from contentgen.api.base_models import BaseModelInfo
from contentgen.api.lora.plan import TrainingPlan
from contentgen.providers.cluster.training import adapters
from contentgen.providers.cluster.training.adapters import Expert
from contentgen.providers.cluster.training.family import Job, Sample
from contentgen.providers.cluster.training.loop import fingerprint
from contentgen.providers.cluster.training.state import lora_name

WIDTH = 3  # a picture's mean colour


class Toy(ModelMixin, ConfigMixin, PeftAdapterMixin):  # type: ignore[misc]
    _supports_gradient_checkpointing = True  # nothing to checkpoint in two layers

    @register_to_config  # type: ignore[untyped-decorator]
    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        self.gradient_checkpointing = False
        self.blocks = torch.nn.ModuleList([torch.nn.Linear(width, width) for _ in range(2)])

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            noisy = block(noisy)
        return noisy


def staged(folder: Path) -> Path:
    """The toy's staged directory: its config and weights, made once."""
    if not (folder / "config.json").exists():
        torch.manual_seed(0)
        Toy().save_pretrained(str(folder))
    return folder


@dataclass(frozen=True)
class ToyPlan:
    """Its memory plan: nothing to choose (the framework keeps its `base` in each state)."""

    base: str = "bf16"
    chosen_by: str = "cpu"
    free: int = 0

    def describe(self) -> str:
        return "toy: as it is"


class ToyFamily:
    name = "Toy"
    spreads = False  # its table row says so too: several GPUs are refused at admission
    outputs: tuple[str, ...] = ("model.safetensors",)

    def staged(self, plan: TrainingPlan, flux_model: str) -> str:
        return plan.staged or plan.base.cluster_dir

    def required(self, base: BaseModelInfo) -> tuple[str, ...]:
        return ("config.json",)

    def examples(self, archive: Path, folder: Path, trigger_word: str) -> list[Any]:
        with zipfile.ZipFile(archive) as zf:
            return [np.frombuffer(zf.read(n), np.uint8) for n in sorted(zf.namelist()) if n.endswith(".jpg")]

    def fingerprint(self, job: Job) -> str:
        return fingerprint(["toy", job.staged, job.plan.stated()], [])

    def memory(self, job: Job) -> Callable[[str], Any]:
        return lambda wanted: ToyPlan()

    def load(self, job: Job, chosen: Any) -> ToyModel:
        toy = Toy.from_pretrained(str(job.model_dir))
        expert = adapters.with_adapter("transformer", toy, job.plan, ["blocks.0", "blocks.1"])
        colours = [torch.tensor([float(e.mean()) / 255] * WIDTH) for e in job.examples]
        return ToyModel([expert], None, colours)

    def config(self, job: Job) -> dict[str, Any]:
        return {"examples": len(job.examples)}


FAMILY = ToyFamily()


@dataclass
class ToyModel:
    experts: list[Expert]
    drawer: Any
    colours: list[torch.Tensor]
    seen: list[int] = field(default_factory=list)

    def sample(self, generator: torch.Generator) -> Sample:
        index = int(torch.randint(len(self.colours), (1,), generator=generator))
        return Sample("transformer", 0.0, (index, torch.randn(WIDTH, generator=generator)))

    def loss(self, sample: Sample, expert: Expert) -> torch.Tensor:
        index, noise = sample.drawn
        return torch.nn.functional.mse_loss(
            expert.transformer(noise + self.colours[index]), self.colours[index]
        )

    def place(self, name: str) -> Expert:
        return self.experts[0]

    def files(self, step: int) -> list[tuple[str, dict[str, str]]]:
        return [(lora_name(step), {"contentgen.toy": "true"})]
