"""LoraTraining in the controller: loraRefs name it (the runs waiting for it, its index by name,
its grants mirrored for admission); its promoted checkpoints, chosen verdicts, likeness and a
person's stop in its status."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._base import ControllerKind, Waiters

if TYPE_CHECKING:
    from ..state import Operator


def waiters(op: Operator) -> Waiters:
    """The ImageGenerations, VideoGenerations and LoraEvaluations waiting for its versions."""
    return op.lora_waiters


KIND = ControllerKind(
    "LoraTraining",
    waiters=waiters,
    by_name="loras_by_name",
    grants_mirrored=True,
    promotions=True,
    verdicts=True,
    likeness=True,
    stops=True,
    numbered_before_run_version=True,
)
