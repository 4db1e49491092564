"""Haiku in the controller: nothing beyond every kind's lifecycle, and its own Jobs' defaults."""

from __future__ import annotations

from contentgen.controller.job_defaults import KindDefaults, Resources
from contentgen.controller.kinds import ControllerKind

KIND = ControllerKind(
    "Haiku",
    job=KindDefaults(
        resources=Resources(requests={"cpu": "50m", "memory": "64Mi"}, limits={"memory": "128Mi"}),
        active_deadline_seconds=120,
        work_volume_size="64Mi",
    ),
)
