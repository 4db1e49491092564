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
        resources=Resources.sized("2", ("2Gi", "6Gi"), ("2Gi", "20Gi")),
        active_deadline_seconds=6 * 3600,
        work_volume_size="20Gi",
    ),
    gpu_job=GpuJob(resources=Resources.sized("4", ("32Gi", "64Gi"), ("20Gi", "60Gi"))),
)
