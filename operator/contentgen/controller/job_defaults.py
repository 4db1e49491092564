"""How a kind's Jobs run by default (its resources, deadline, retries, work volume) and, with
`provider: cluster`, what GPUs they hold: declared by each kind in its controller module
(controller/kinds/), overridden per kind by the operator's settings (the chart's `jobs` and
`gpu.jobs`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Resources(BaseModel):
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}

    @classmethod
    def sized(cls, cpu: str, memory: tuple[str, str], storage: tuple[str, str]) -> Resources:
        """A container's CPU asked for (no limit: it may burst), and its memory and ephemeral
        storage, each (asked for, limit)."""
        return cls(
            requests={"cpu": cpu, "memory": memory[0], "ephemeral-storage": storage[0]},
            limits={"memory": memory[1], "ephemeral-storage": storage[1]},
        )


class KindDefaults(BaseModel):
    """How the Jobs of one kind run."""

    resources: Resources = Resources()
    active_deadline_seconds: int = Field(default=6 * 3600, ge=60)
    backoff_limit: int = Field(default=2, ge=0, le=10)
    ttl_seconds_after_finished: int = Field(default=24 * 3600, ge=0)
    work_volume_size: str = "10Gi"


class GpuJob(BaseModel):
    """How the Jobs of one kind run with `provider: cluster`: on the cluster's own GPUs."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    count: int = Field(default=1, ge=1, le=16, description="GPUs per Job.")
    resource_name: str = Field(
        default="nvidia.com/gpu",
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$",
        description="The extended resource the GPUs are (nvidia.com/gpu, a MIG profile such as "
        "nvidia.com/mig-3g.40gb, amd.com/gpu).",
    )
    node_selector: dict[str, str] = Field(default={}, description="Added to the GPU Jobs' nodeSelector.")
    resources: Resources = Resources()
