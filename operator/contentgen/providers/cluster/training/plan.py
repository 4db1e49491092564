"""The loop's plan: what the training framework does step by step, made once from the run's training
plan (api/lora/plan.py) and the processes that train it, whatever the family."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

from contentgen.api.lora.plan import TrainingPlan

from ..generation.lora_files import Targets

DEFAULT_LEARNING_RATE = 1e-4  # the cluster's, where training.learningRate is unset
# FLUX.1-dev's distilled guidance while training: 1.0, as the recommended commands of diffusers'
# FLUX example (its README's --guidance_scale=1) and ai-toolkit's FLUX configs (pictures are drawn
# at 3.5). A family without a guidance input (Wan) ignores it.
GUIDANCE = 1.0
MAX_GRAD_NORM = 1.0  # diffusers' FLUX example's --max_grad_norm
TimestepSampling = Literal["shift", "logit-normal", "uniform"]
Optimizer = Literal["adamw", "adamw8bit"]


@dataclass(frozen=True)
class Plan:
    steps: int
    rank: int = 16
    learning_rate: float = DEFAULT_LEARNING_RATE
    resolution: int = 512
    checkpoint_every: int = 0  # 0: only the last step
    optimizer: Optimizer = "adamw"
    gradient_checkpointing: bool = True
    seed: int = 0
    targets: Targets = "attention+feedforward"
    guidance: float = GUIDANCE
    timestep_sampling: TimestepSampling = "shift"
    max_grad_norm: float = MAX_GRAD_NORM  # 0: no clipping
    first: int = 0  # the step it starts after: a continued state's (its steps end at `steps`)
    batch: int = 1  # samples each step learns from, shared among the processes (distributed.share)

    def checkpoint_steps(self) -> list[int]:
        """The steps whose state is stored: every `checkpoint_every`-th after `first`, and the last
        (pure)."""
        every = self.checkpoint_every or self.steps - self.first
        return sorted({*range(self.first + every, self.steps + 1, every), self.steps})

    def stated(self, *left_at_default: str) -> dict[str, Any]:
        """The plan as a state and a fingerprint keep it, the fields named left out where they are at
        their default (as states stored before those fields were kept them)."""
        planned = asdict(self)
        for key in left_at_default:
            if planned[key] == getattr(Plan, key):
                del planned[key]
        return planned


def loop_plan(plan: TrainingPlan, processes: int = 1) -> Plan:
    """The loop's plan of a run's training plan: its batch the spec's, else one sample per process."""
    return Plan(
        batch=plan.batch_size or processes,
        steps=plan.steps,
        rank=plan.rank,
        learning_rate=plan.learning_rate or DEFAULT_LEARNING_RATE,
        resolution=plan.resolution,
        checkpoint_every=plan.checkpoint_every,
        optimizer="adamw8bit" if plan.optimizer == "adamw8bit" else "adamw",
        targets=cast(Targets, plan.lora_targets),
        guidance=plan.guidance,
        timestep_sampling=cast(TimestepSampling, plan.timestep_sampling),
        max_grad_norm=plan.max_grad_norm,
    )
