"""What the operator reads off Jobs and the resources a spec references, as plain values (pure
parsing; a referenced resource's status read as its kind's model, controller/status.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from contentgen.api import ImageGenerationStatus, Kind
from contentgen.api.common import CommonStatus, VersionBase
from contentgen.api.kinds.image_generation import KIND as IMAGE_GENERATION
from contentgen.api.kinds.lora_training import KIND as LORA_TRAINING
from contentgen.api.lora import PROMOTED_ANNOTATION, LoraTrainingStatus, promotions_of
from contentgen.api.reading import Condition

# What a reference resolves against (api/references.py), as the operator reads it off the cluster
from contentgen.api.references import ImageState as ImageState
from contentgen.api.references import LoraState as LoraState
from contentgen.api.references import UsableVersion as UsableVersion
from contentgen.api.sharing import ANNOTATION as SHARED_ANNOTATION
from contentgen.api.sharing import parse_annotation

from .naming import (
    ANNOTATION_GPUS,
    ANNOTATION_INPUTS,
    ANNOTATION_PROVIDER,
    LABEL_GENERATION,
    LABEL_QUEUE,
    LABEL_UID,
    LABEL_VERSION,
)
from .objects import CustomResource, Job, JobStatus, Meta
from .status import StatusT, read_part, read_status, ready_reason


@dataclass(frozen=True)
class JobState:
    name: str
    namespace: str
    uid: str  # the owning resource's uid
    generation: int
    version: int
    active: int = 0
    ready: int = 0
    succeeded: int = 0
    failed: int = 0
    complete: bool = False  # its Complete condition, or SuccessCriteriaMet before it
    # the Job's Failed condition, or FailureTarget before it: BackoffLimitExceeded, DeadlineExceeded, ...
    failed_reason: str = ""
    failed_message: str = ""
    start_time: str | None = None
    completion_time: str | None = None
    # when it finished: its completionTime, or its (interim) condition's lastTransitionTime
    finished_at: str | None = None
    deleting: bool = False
    inputs: str = ""  # what it runs: a digest of its spec (supersede.inputs_digest); "" if unknown
    provider: str = ""  # the provider it runs on
    gpus: str = ""  # the GPUs its pod asks for ("1 nvidia.com/gpu"); "" for none
    queue: str = ""  # the Kueue LocalQueue it was submitted to
    suspended: bool = False  # spec.suspend: held (by Kueue) with no pod until it is admitted
    job_uid: str = ""  # the Job's own uid (Kueue labels the Job's Workload with it); "" until created
    snapshot: str = ""  # the SpecSnapshot its worker runs (its CONTENTGEN_SPEC), as JSON; "" if none
    what: str = "Job"  # what runs its pods: a Job, or across nodes a JobSet or a TrainJob (jobsets.py)
    restarts: int = 0  # a JobSet's restarts of its whole group so far

    @property
    def finished(self) -> bool:
        return self.complete or bool(self.failed_reason)

    @classmethod
    def of_meta(cls, meta: Meta) -> JobState:
        """What the labels and annotations the operator put on a run say of it (a Job, a JobSet or a
        TrainJob alike); the counts and conditions left at their defaults for the reader to add."""
        return cls(
            name=meta.name,
            namespace=meta.namespace,
            uid=meta.labels[LABEL_UID],
            generation=number(meta.labels, LABEL_GENERATION),
            version=number(meta.labels, LABEL_VERSION),
            deleting=bool(meta.deletion_timestamp),
            inputs=meta.annotations.get(ANNOTATION_INPUTS, ""),
            provider=meta.annotations.get(ANNOTATION_PROVIDER, ""),
            gpus=meta.annotations.get(ANNOTATION_GPUS, ""),
            queue=meta.labels.get(LABEL_QUEUE, ""),
            job_uid=meta.uid,
        )


def job_state(raw: Mapping[str, Any]) -> JobState | None:
    """None for Jobs not made by this operator."""
    job = Job.of(raw)
    meta, status = job.metadata, job.status
    if LABEL_UID not in meta.labels:
        return None
    failed, succeeded = _ended(status)
    return replace(
        JobState.of_meta(meta),
        active=status.active,
        ready=status.ready,
        succeeded=status.succeeded,
        failed=status.failed,
        complete=succeeded is not None,
        failed_reason=(failed.reason or "Failed") if failed is not None else "",
        failed_message=failed.message if failed is not None else "",
        start_time=status.start_time,
        completion_time=status.completion_time,
        finished_at=status.completion_time or since(succeeded) or since(failed),
        suspended=job.spec.suspend,
        snapshot=_worker_spec(job),
    )


def _ended(status: JobStatus) -> tuple[Condition | None, Condition | None]:
    """The condition that failed the Job and the one that completed it (None for none).
    Kubernetes 1.31+ sets Failed and Complete only once every pod has ended, FailureTarget and
    SuccessCriteriaMet as soon as the Job's end is decided: a pod that never ends (stuck on a lost
    node) holds back the terminal one for ever, and the run ends at the interim one."""
    true = {c.type: c for c in status.conditions if c.true}
    failed = true.get("Failed") or true.get("FailureTarget")
    succeeded = true.get("Complete") or true.get("SuccessCriteriaMet")
    return failed, succeeded


def since(condition: Condition | None) -> str | None:
    return condition.last_transition_time if condition is not None else None


def number(labels: Mapping[str, str], key: str) -> int:
    """A number label: 0 where it is missing or empty."""
    return int(labels.get(key) or 0)


def _worker_spec(job: Job) -> str:
    """The run's SpecSnapshot as the Job hands it to its worker (controller/jobs.worker_env)."""
    for container in job.spec.template.spec.containers:
        for entry in container.env:
            if entry.name == "CONTENTGEN_SPEC":
                return entry.value
    return ""


class ReferencedVersion(VersionBase):
    """A LoraTraining version as a reference reads it: its model, not its likeness report or its
    dataset's details (LoraVersion's fields of the same names and types; a test holds them so)."""

    model_config = ConfigDict(extra="ignore")

    model_uri: str
    size_bytes: Annotated[int, Field(ge=0)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    dataset_uri: str = ""
    trigger_word: str
    base_model: str = ""
    low_noise_model_uri: str = ""


class ReferencedLora(CommonStatus):
    """A LoraTraining's status as a reference reads it (LoraTrainingStatus's fields of the same
    names): read on every event of every LoraTraining (the kopf index of references), where the
    whole status, each version's likeness curve and report included, took a millisecond per 100
    versions (bench/README.md)."""

    model_config = ConfigDict(extra="ignore")

    latest_version: Annotated[int, Field(ge=0)] = 0
    versions: list[ReferencedVersion] = []


def lora_state(body: Mapping[str, Any]) -> LoraState:
    """What a loraRef to the LoraTraining `body` resolves to: each version's model, or where a
    person promoted a checkpoint (its annotation, api/lora.promotions_of), that checkpoint's LoRA."""
    resource = CustomResource.of(body)
    status = read_part(LORA_TRAINING, ReferencedLora, resource.status)
    meta = resource.metadata
    asked = meta.annotations.get(PROMOTED_ANNOTATION)
    # Only a promotion reads the likeness curves (its checkpoints' LoRAs), from the whole status.
    whole = _status(LORA_TRAINING, LoraTrainingStatus, resource) if asked else None
    promoted, _ = promotions_of(asked, [v.wire() for v in whole.versions] if whole else [])
    usable = tuple(
        UsableVersion(
            v.version,
            promoted[v.version].model_uri if v.version in promoted else v.model_uri,
            v.provider,
            v.trigger_word,
            v.dataset_uri,
            v.base_model,
            v.low_noise_model_uri,
        )
        for v in status.versions
    )
    usable = tuple(v for v in usable if v.model_uri)
    latest = status.latest_version
    return LoraState(
        name=meta.name,
        owner=resource.spec.get("owner", ""),
        phase=str(status.phase or ""),
        latest_version=latest,
        latest_model_uri=next((v.model_uri for v in usable if v.number == latest), ""),
        uid=meta.uid,
        reason=ready_reason(status),
        message=status.message,
        model_uris=tuple((v.number, v.model_uri) for v in usable),
        older_versions=status.older_versions,
        usable=usable,
        namespace=meta.namespace,
        grants=parse_annotation(meta.annotations.get(SHARED_ANNOTATION))[0],
    )


def image_state(body: Mapping[str, Any]) -> ImageState:
    """What an imageRef to the ImageGeneration `body` resolves to (from its status)."""
    resource = CustomResource.of(body)
    status = _status(IMAGE_GENERATION, ImageGenerationStatus, resource)
    meta = resource.metadata
    return ImageState(
        name=meta.name,
        owner=str(resource.spec.get("owner", "")),
        phase=str(status.phase or ""),
        uid=meta.uid,
        latest_version=status.latest_version,
        versions=tuple((v.version, tuple(i.uri for i in v.images)) for v in status.versions),
        loras=tuple((v.version, tuple(v.loras)) for v in status.versions),
    )


def _status(kind: Kind, model: type[StatusT], resource: CustomResource) -> StatusT:
    """The status of `resource`, a `kind`, read where it enters (controller/status.py: leniently)."""
    status = read_status(kind, resource.status)
    return status if isinstance(status, model) else model()
