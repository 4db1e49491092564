"""Transcription in the controller: nothing beyond every kind's lifecycle."""

from __future__ import annotations

from ..job_defaults import GpuJob, KindDefaults, Resources
from ._base import ControllerKind

KIND = ControllerKind(
    "Transcription",
    job=KindDefaults(
        resources=Resources.sized("250m", ("512Mi", "2Gi"), ("1Gi", "10Gi")),
        active_deadline_seconds=4 * 3600,
        work_volume_size="10Gi",
    ),
    gpu_job=GpuJob(resources=Resources.sized("2", ("8Gi", "16Gi"), ("2Gi", "20Gi"))),
)
