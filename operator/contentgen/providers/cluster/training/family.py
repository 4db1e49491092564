"""What a model family is to the training framework (families/: FLUX.1, Wan 2.1, Wan 2.2's expert
pair): a small plugin that loads its model, caches its dataset's inputs, draws a sample, computes
its loss, names the layers its LoRA adapts and the files a checkpoint is, makes the watch's
pictures, and plans its memory. Everything else (the loop, checkpoints, resume, continue, several
processes, the watch, the outcome and the bill) is the framework's (loop.py, trainer.py), the same
for every family.

A new family is one module of families/ whose `FAMILY` has `Family`'s shape, and its rows in the
base-model table (api/base_models.py), whose `cluster_family` names the module: nothing to register
(families.family_of imports it; tests/cluster/toy_family.py is one, defined in the tests)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

from contentgen.api.base_models import BaseModelInfo
from contentgen.providers.base import CheckpointFiles, Continued
from contentgen.providers.watch import TrainingWatch

from ..generation.flux import Device
from .adapters import Expert
from .distributed import SOLO, Team
from .plan import Plan

if TYPE_CHECKING:
    from contentgen.api.lora.plan import TrainingPlan


class Chosen(Protocol):
    """A family's memory plan, as the framework keeps it: the base its transformers are stored as
    (kept in each state: a retry goes on with it), in words for the version."""

    @property
    def base(self) -> str: ...
    def describe(self) -> str: ...


@dataclass(frozen=True)
class Sample:
    """One sample of a step, as the training's generator drew it: the expert it trains, its
    timestep, and what the family drew (its example, noise, noise level), in the family's order."""

    expert: str
    timestep: float
    drawn: Any


@dataclass(frozen=True)
class Job:
    """What one process trains: the family, its staged model and examples, the loop's plan, the
    device, where it works and stores its checkpoints; the memory plan's chooser (the base a stored
    state had, or None); the watch and what draws its pictures (`drawers`: the provider's
    generator), a continued version, the GPUs held and the processes it trains with."""

    family: Family
    model_dir: Path
    examples: Sequence[Any]
    plan: Plan
    on: Device
    work_dir: Path
    files: CheckpointFiles
    base: BaseModelInfo
    metadata: dict[str, str] = field(default_factory=dict)
    choose: Callable[[str | None], Any] | None = None
    watch: TrainingWatch | None = None
    drawers: Any = None
    continued: Continued | None = None
    gpus: int = 1
    team: Team = SOLO

    @property
    def staged(self) -> str:
        return self.metadata.get("contentgen.base_model", self.model_dir.name)


class Model(Protocol):
    """A family's model loaded for training (Family.load)."""

    experts: list[Expert]  # the first's LoRA is the version's model.safetensors
    drawer: Any  # the watch's picture maker (None: no watch, or the family draws none for it)

    def sample(self, generator: torch.Generator) -> Sample: ...
    def loss(self, sample: Sample, expert: Expert) -> torch.Tensor: ...
    def place(self, name: str) -> Expert:
        """The expert `name`, on the card (where experts take turns, the other leaves it)."""

    def files(self, step: int) -> list[tuple[str, dict[str, str]]]:
        """A checkpoint's LoRA files, one per expert in order: each name and its own metadata."""


class Family(Protocol):
    name: str  # in words (FLUX.1, Wan)
    spreads: bool  # whether a training spreads over several processes (the table's `spreads`)
    outputs: tuple[str, ...]  # the version's LoRA files, one per expert (model.safetensors, ...)

    def staged(self, plan: TrainingPlan, flux_model: str) -> str:
        """The staged directory a training of `plan` loads (`flux_model`: the cluster's FLUX)."""

    def required(self, base: BaseModelInfo) -> tuple[str, ...]: ...
    def examples(self, archive: Path, folder: Path, trigger_word: str) -> list[Any]: ...
    def fingerprint(self, job: Job) -> str:
        """What a stored state belongs to: the model, the plan and the dataset."""

    def memory(self, job: Job) -> Callable[[str], Any]:
        """The memory plan for a named base or `auto` on the job's card (GpuMemoryTooSmall with the
        numbers), from the model's sizes counted on the meta device: nothing is loaded."""

    def load(self, job: Job, chosen: Any) -> Model:
        """The model loaded as `chosen` says, its examples' inputs cached, the watch's prompts
        encoded and its drawer made where there is a watch, the adapters added."""

    def config(self, job: Job) -> dict[str, Any]:
        """What the version's config.json says of this family's training beyond the plan."""


class OwnDirectory:
    """A family whose training loads its base's own staged directory (the table's `cluster_dir`),
    or the one its plan names: every family but FLUX.1's, which the cluster's settings name."""

    def staged(self, plan: TrainingPlan, flux_model: str) -> str:
        return plan.staged or plan.base.cluster_dir
