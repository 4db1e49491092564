"""How far apart two LoRAs' tensors are, as the trainer's tests compare them. On the CPU the same
operations in the same order give the same bits, so a resumed training must equal an uninterrupted
one exactly. On a GPU, kernels may sum in another order from run to run: two such trainings agree
to a small part of each tensor's own size, not bit for bit. The part is relative because a fixed
one cannot tell a training that moved from one that did not: lora_B starts at zero and is about
1e-4 after the tiny FLUX's four steps, under the 1e-3 an absolute tolerance would allow."""

from __future__ import annotations

import math

import torch

from .conftest import DEVICE

# the most two trainings of the same steps may differ by, as a part of each tensor's largest value
TOLERANCE = 0.0 if DEVICE == "cpu" else 2e-2


def apart(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """The largest difference of any tensor, as a part of that tensor's largest value (0.0: the
    same bits; infinity: not the same tensors)."""
    if a.keys() != b.keys():
        return math.inf
    return max((_apart(a[k].float(), b[k].float()) for k in a), default=0.0)


def _apart(x: torch.Tensor, y: torch.Tensor) -> float:
    if x.shape != y.shape:
        return math.inf
    difference = (x - y).abs().max().item() if x.numel() else 0.0
    if difference == 0.0:
        return 0.0
    scale = max(x.abs().max().item(), y.abs().max().item())
    return difference / scale if scale else math.inf


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return apart(a, b) <= TOLERANCE
