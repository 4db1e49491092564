"""LoraEvaluation in the controller: nothing beyond the lifecycle. That its runs evaluate a LoRA
version's likeness (the LikenessEvaluated gate; a stored baseline left out of its estimate) is its
API declaration's (Kind.likeness_plan)."""

from __future__ import annotations

from ..job_defaults import GpuJob, KindDefaults, Resources
from ._base import ControllerKind

KIND = ControllerKind(
    "LoraEvaluation",
    job=KindDefaults(
        resources=Resources.sized("500m", ("1Gi", "2Gi"), ("1Gi", "4Gi")),
        active_deadline_seconds=3600,
        work_volume_size="4Gi",
    ),
    gpu_job=GpuJob(resources=Resources.sized("2", ("24Gi", "48Gi"), ("2Gi", "10Gi"))),
)
