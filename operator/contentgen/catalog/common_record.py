"""The part of the record every kind has (JobRecord), and the models it is made of: a kind's own
record (declared in its module of catalog/kinds/) adds its fields and its versions' to these.
Timestamps are RFC 3339 UTC strings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from contentgen.api import CATALOG_TYPES, Timestamp
from contentgen.api.image import PoolPlace


class RecordModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class RecordRef(RecordModel):
    id: str
    kind: str
    name: str
    namespace: str
    owner: str
    status: str


class ArtifactInfo(RecordModel):
    uri: str
    size_bytes: int = 0
    content_type: str = "application/octet-stream"


class ErrorInfo(RecordModel):
    reason: str
    message: str = ""


class CostInfo(RecordModel):
    estimated_usd: float = 0.0
    actual_usd: float | None = None
    by_month: dict[str, float] = Field(
        default={},
        description="Spend by the month runs started (YYYY-MM), and a LoRA's re-evaluations by the month "
        "they ran.",
    )
    evaluations_usd: float = Field(
        default=0.0, description="Of it, what a LoRA's re-evaluations cost (contentgen assets evaluate)."
    )
    currency: str = "USD"
    prices_as_of: str = ""
    detail: str = ""


class RunInfo(RecordModel):
    """The latest run: whether it waits, runs, succeeded, failed or was cancelled, kept apart from
    the versions, which it never hides."""

    version: int = Field(default=0, description="The version it makes (or made); 0 before versions.")
    generation: int = Field(default=0, description="The spec generation it runs.")
    phase: str = Field(
        default="Pending",
        description="Pending, Running, Succeeded, Failed, Cancelled (its resource was deleted first), or "
        "Interrupted (a laptop's run stopped by Ctrl-C or SIGTERM: the same `contentgen run` resumes it).",
    )
    progress: int = Field(default=0, description="Percent done.")
    stage: str = Field(default="", description="The pipeline stage now running.")
    message: str = ""
    reason: str = Field(
        default="",
        description="Why it is where it is, as a word (its Ready condition's reason): Queued, "
        "BudgetExceeded, OwnerNotAllowed, LoraNotReady, JobCreated, Running, ...",
    )
    error: ErrorInfo | None = None
    job_name: str = ""
    started_at: Timestamp | None = None
    completed_at: Timestamp | None = None
    estimated_usd: float | None = Field(default=None, description="What it should cost (USD).")
    actual_usd: float | None = Field(default=None, description="What it cost, once known (USD).")
    pool: PoolPlace | None = Field(
        default=None,
        description="provider cluster, drawn by a warm pool (spec.denoising of an ImageGeneration or a "
        "VideoGeneration): while "
        "it waits or runs, where it is in the pool (the resource's status.pool): starting (the pool "
        "cannot be reached: scaled to zero, or its pods loading or stopping), loading (the pool loads "
        "its base model), queued (with its position, 1 next) or drawing; unset otherwise "
        "(docs/cluster-gpus.md#warm-pools).",
    )


class RunSummary(RecordModel):
    """A run that ended, in the record's run history."""

    version: int = 0
    generation: int = 0
    phase: str
    error: ErrorInfo | None = None
    started_at: Timestamp | None = None
    completed_at: Timestamp | None = None
    actual_usd: float | None = None


class DeletedInfo(RecordModel):
    """The resource is gone."""

    at: Timestamp | None = None
    policy: str = Field(default="", description="Its deletionPolicy: Retain or Delete.")
    outputs_kept: bool = Field(
        description="True when its outputs are still stored (Retain): its versions stay usable."
    )
    by: str = Field(default="", description="Who marked it: operator, cli or api.")


class DeletedVersionInfo(RecordModel):
    """A version whose outputs were removed (prune, delete); kept for history."""

    version: int
    generation: int = 0
    created_at: Timestamp | None = None
    deleted_at: Timestamp | None = None
    by: str = ""
    objects: int = Field(default=0, description="How many stored objects it had.")


class VersionInfo(RecordModel):
    """One usable version: a run that succeeded, under a prefix of its own (…/{uid}/v{n}/)."""

    version: int
    generation: int = 0
    provider: str = ""
    placeholder: bool = False
    started_at: Timestamp | None = None
    created_at: Timestamp | None = Field(default=None, description="When its run finished.")
    cost_usd: float | None = Field(default=None, description="What its run cost (USD), when known.")
    spec: dict[str, Any] | None = Field(
        default=None,
        description="The spec snapshot its run ran (left out of lists); null when no longer known, and "
        "for versions older than the newest 20 (the snapshot stays in the version's result.json).",
    )
    artifacts: list[ArtifactInfo] = []


class ShareInfo(RecordModel):
    """A grant (api/sharing.py): who may see (read) or use (in a loraRef) the asset."""

    to: str = Field(description="owner:NAME or group:NAME.")
    access: Literal["read", "use"] = Field(
        description="read: see and download; use: see, and use in a loraRef (a LoRA), not download."
    )
    by: str = Field(default="", description="Who shared it (empty: from the resource's annotation).")
    at: str = Field(default="", description="When (empty: from the resource's annotation).")


def _describe_type(schema: dict[str, Any]) -> None:
    """JobRecord.type's description: the catalog types as registered when its schema is written."""
    *rest, last = CATALOG_TYPES
    schema["description"] = f"{', '.join(rest)} or {last}." if rest else f"{last}."


class JobRecord(RecordModel):
    id: str = Field(description="The resource's uid.")
    type: str = Field(json_schema_extra=_describe_type)
    kind: str
    name: str
    namespace: str
    owner: str
    status: str = Field(
        description="The record's state: Succeeded when it has a usable version (whatever its latest "
        "run did); else its latest run's phase, Pending, Running or Failed; Deleted when its resource "
        "is gone and none of its outputs are kept."
    )
    latest_run: RunInfo = Field(default_factory=RunInfo, description="The latest run, apart from versions.")
    latest_version: int = Field(default=0, description="The newest usable version; 0 for none.")
    provider: str = ""
    placeholder: bool = Field(default=False, description="True when the offline provider made the outputs.")
    tags: list[str] = []
    description: str = ""
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    completed_at: Timestamp | None = Field(default=None, description="When the latest run ended.")
    deleted: DeletedInfo | None = Field(default=None, description="Set once the resource is gone.")
    deleted_at: Timestamp | None = None
    runs: list[RunSummary] = Field(
        default=[], description="The runs that ended, oldest first: the newest 100 (olderRuns: the rest)."
    )
    older_runs: int = Field(default=0, description="How many earlier ended runs `runs` leaves out.")
    deleted_versions: list[DeletedVersionInfo] = Field(
        default=[], description="Versions whose outputs were removed: the newest 100."
    )
    older_deleted_versions: int = Field(
        default=0, description="How many earlier deleted versions `deletedVersions` leaves out."
    )
    artifacts: list[ArtifactInfo] = Field(default=[], description="Every stored output of its versions.")
    total_bytes: int = 0
    cost: CostInfo | None = Field(default=None, description="Spend at the provider (status.cost).")
    shares: list[ShareInfo] = Field(
        default=[],
        description="Who it is shared with (docs/sharing.md); shown to its owner only. In a cluster, its "
        "resource's annotation contentgen.io/shared-with.",
    )
