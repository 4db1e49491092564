"""LoraTraining in the controller: loraRefs name it (the runs waiting for it, its index by name,
its grants mirrored for admission); its promoted checkpoints, chosen verdicts, likeness and a
person's stop in its status."""

from __future__ import annotations

from typing import Protocol

from ..job_defaults import GpuJob, KindDefaults, Resources
from ._base import ControllerKind, Waiters


class _Holding(Protocol):  # the Operator (state.py), which imports the settings these kinds feed
    lora_waiters: Waiters


def waiters(op: _Holding) -> Waiters:
    """The ImageGenerations, VideoGenerations and LoraEvaluations waiting for its versions."""
    return op.lora_waiters


KIND = ControllerKind(
    "LoraTraining",
    waiters=waiters,
    by_name="loras_by_name",
    promotions=True,
    verdicts=True,
    likeness=True,
    stops=True,
    numbered_before_run_version=True,
    job=KindDefaults(
        resources=Resources(
            requests={"cpu": "2", "memory": "2Gi", "ephemeral-storage": "2Gi"},
            limits={"memory": "6Gi", "ephemeral-storage": "20Gi"},
        ),
        active_deadline_seconds=6 * 3600,
        work_volume_size="20Gi",
    ),
    gpu_job=GpuJob(
        resources=Resources(
            requests={"cpu": "4", "memory": "32Gi", "ephemeral-storage": "20Gi"},
            limits={"memory": "64Gi", "ephemeral-storage": "60Gi"},
        )
    ),
)
