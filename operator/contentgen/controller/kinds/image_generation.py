"""ImageGeneration in the controller: a VideoGeneration's imageRef names it (the runs animating
its pictures wait for it)."""

from __future__ import annotations

from typing import Protocol

from ..job_defaults import GpuJob, KindDefaults, Resources
from ._base import ControllerKind, Waiters


class _Holding(Protocol):  # the Operator (state.py), which imports the settings these kinds feed
    image_waiters: Waiters


def waiters(op: _Holding) -> Waiters:
    """The VideoGenerations waiting for its pictures."""
    return op.image_waiters


KIND = ControllerKind(
    "ImageGeneration",
    waiters=waiters,
    job=KindDefaults(
        resources=Resources.sized("250m", ("512Mi", "1Gi"), ("256Mi", "2Gi")),
        active_deadline_seconds=1800,
        work_volume_size="2Gi",
    ),
    gpu_job=GpuJob(resources=Resources.sized("2", ("24Gi", "48Gi"), ("2Gi", "10Gi"))),
)
