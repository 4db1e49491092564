"""Transcription in the controller: nothing beyond every kind's lifecycle."""

from __future__ import annotations

from ..job_defaults import GpuJob, KindDefaults, Resources
from ._base import ControllerKind

KIND = ControllerKind(
    "Transcription",
    job=KindDefaults(
        resources=Resources(
            requests={"cpu": "250m", "memory": "512Mi", "ephemeral-storage": "1Gi"},
            limits={"memory": "2Gi", "ephemeral-storage": "10Gi"},
        ),
        active_deadline_seconds=4 * 3600,
        work_volume_size="10Gi",
    ),
    gpu_job=GpuJob(
        resources=Resources(
            requests={"cpu": "2", "memory": "8Gi", "ephemeral-storage": "2Gi"},
            limits={"memory": "16Gi", "ephemeral-storage": "20Gi"},
        )
    ),
)
