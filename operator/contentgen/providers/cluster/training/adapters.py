"""What every family's transformer gets to train: a rank-r LoRA (alpha = r) on the layers its family
names, in fp32 on frozen base weights, gradient checkpointing, its optimizer; and each step's noise
level, drawn as `training.timestepSampling` says with the family's own shift."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from contentgen.errors import InvalidInput

from ..generation.flux import Device
from .plan import Plan

WEIGHT_DECAY = 1e-4
# diffusers' compute_density_for_timestep_sampling(weighting_scheme="logit_normal") defaults
LOGIT_MEAN, LOGIT_STD = 0.0, 1.0


@dataclass
class Expert:
    """One transformer that trains (FLUX's and Wan 2.1's one; each of Wan 2.2's pair): its LoRA's
    parameters and their optimizer."""

    name: str
    transformer: Any
    params: list[torch.nn.Parameter]
    optimizer: torch.optim.Optimizer


def with_adapter(name: str, transformer: Any, plan: Plan, targets: Sequence[str]) -> Expert:
    """The LoRA added to `targets` (its initial weights from the plan's seed), in float32, with
    gradient checkpointing; the expert that trains it."""
    from peft import LoraConfig

    transformer.requires_grad_(False)
    torch.manual_seed(plan.seed)  # the LoRA's initial weights
    transformer.add_adapter(
        LoraConfig(
            r=plan.rank, lora_alpha=plan.rank, init_lora_weights="gaussian", target_modules=list(targets)
        )
    )
    params = [p for p in transformer.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.to(torch.float32)
    if plan.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    transformer.train()
    return Expert(name, transformer, params, optimizer(plan, params))


def linear_layers(transformer: Any) -> list[str]:
    return [n for n, m in transformer.named_modules() if isinstance(m, torch.nn.Linear)]


def optimizer(plan: Plan, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    if plan.optimizer == "adamw8bit":
        try:
            from bitsandbytes.optim.adamw import AdamW8bit
        except ImportError:
            raise InvalidInput(
                "training.optimizer adamw8bit needs bitsandbytes, which this worker does not have: use adamw"
            ) from None
        eight_bit: torch.optim.Optimizer = AdamW8bit(params, lr=plan.learning_rate, weight_decay=WEIGHT_DECAY)
        return eight_bit
    return torch.optim.AdamW(params, lr=plan.learning_rate, weight_decay=WEIGHT_DECAY)


def moved(expert: Expert, where: torch.device) -> None:
    """An expert's transformer and its optimizer's moments to `where` (AdamW's step counts stay)."""
    expert.transformer.to(where)
    for state in expert.optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and key != "step":
                state[key] = value.to(where)


def attention_for_training(on: Device) -> None:
    """On a GPU, the transformer's attention without cuDNN's fused kernel, for this process.

    torch 2.11 made cuDNN's attention the default on Hopper, and its backward failed FLUX.1-dev's
    training step on an H100 (an illegal memory access) and an H200 (`mha_graph.execute(...)
    .is_good()`) in `make gpu-check FULL=1` (2026-11-26, torch 2.11.0+cu130), as in pytorch/pytorch
    #196678 and #190321, whose mitigation this is; flash and memory-efficient attention trained it
    (docs/cluster-gpus.md). The image's torch 2.10 does not choose cuDNN's first (#196678 calls it
    2.11's regression): there this changes nothing, and a move to 2.11 keeps training."""
    if on.cuda:
        torch.backends.cuda.enable_cudnn_sdp(False)


def noise_level(
    sampling: str,
    generator: torch.Generator,
    shifted: Callable[[torch.Tensor], torch.Tensor],
    scale: float,
    uniform: Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One sample's noise level σ and its timestep (σ × `scale`, the training timesteps), from
    `generator`:

    - uniform: σ uniform in (0, 1], or the family's own (`uniform`: FLUX draws a timestep of its
      scheduler's schedule);
    - logit-normal: sigmoid of a normal draw (mean LOGIT_MEAN, std LOGIT_STD), diffusers'
      `compute_density_for_timestep_sampling(weighting_scheme="logit_normal")`: most draws mid-way;
    - shift: a uniform draw shifted as the family's sampler shifts its schedule (`shifted`)."""
    if sampling == "uniform" and uniform is not None:
        return uniform(generator)
    if sampling == "uniform":
        sigma = torch.rand(1, generator=generator)[0].clamp(min=1e-6)
    elif sampling == "logit-normal":
        sigma = torch.sigmoid(torch.randn(1, generator=generator)[0] * LOGIT_STD + LOGIT_MEAN)
    elif sampling == "shift":
        sigma = shifted(torch.rand(1, generator=generator)[0].clamp(min=1e-6))
    else:
        raise InvalidInput(f"training.timestepSampling {sampling!r} is not shift, logit-normal or uniform")
    return sigma.to(torch.float32), (sigma * scale).to(torch.float32)
