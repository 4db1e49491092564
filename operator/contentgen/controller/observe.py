"""What the operator reads off Jobs and the resources a spec references, as plain values (pure
parsing; a referenced resource's status read as its kind's model, controller/status.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from contentgen.api import ImageGenerationStatus, Kind
from contentgen.api.common import CommonStatus, VersionBase
from contentgen.api.kinds import IMAGE_GENERATION, LORA_TRAINING
from contentgen.api.lora import PROMOTED_ANNOTATION, LoraTrainingStatus, promotions_of

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

    @property
    def finished(self) -> bool:
        return self.complete or bool(self.failed_reason)


def job_state(job: dict[str, Any]) -> JobState | None:
    """None for Jobs not made by this operator."""
    meta = job.get("metadata", {})
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    if LABEL_UID not in labels:
        return None
    status = job.get("status") or {}
    failed, succeeded = _ended(status)
    return JobState(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        uid=labels[LABEL_UID],
        generation=_count(labels, LABEL_GENERATION),
        version=_count(labels, LABEL_VERSION),
        active=_count(status, "active"),
        ready=_count(status, "ready"),
        succeeded=_count(status, "succeeded"),
        failed=_count(status, "failed"),
        complete=bool(succeeded),
        failed_reason=_text(failed, "reason") or ("Failed" if failed else ""),
        failed_message=_text(failed, "message"),
        start_time=status.get("startTime"),
        completion_time=status.get("completionTime"),
        finished_at=status.get("completionTime")
        or succeeded.get("lastTransitionTime")
        or failed.get("lastTransitionTime"),
        deleting=bool(meta.get("deletionTimestamp")),
        inputs=_text(annotations, ANNOTATION_INPUTS),
        provider=_text(annotations, ANNOTATION_PROVIDER),
        gpus=_text(annotations, ANNOTATION_GPUS),
        queue=_text(labels, LABEL_QUEUE),
        suspended=bool((job.get("spec") or {}).get("suspend")),
        job_uid=_text(meta, "uid"),
        snapshot=_worker_spec(job),
    )


def _ended(status: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The condition that failed the Job and the one that completed it ({} for none).
    Kubernetes 1.31+ sets Failed and Complete only once every pod has ended, FailureTarget and
    SuccessCriteriaMet as soon as the Job's end is decided: a pod that never ends (stuck on a lost
    node) holds back the terminal one for ever, and the run ends at the interim one."""
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
    failed = conditions.get("Failed") or conditions.get("FailureTarget") or {}
    succeeded = conditions.get("Complete") or conditions.get("SuccessCriteriaMet") or {}
    return failed, succeeded


def _count(fields: dict[str, Any], key: str) -> int:
    """A count or a number label: 0 where it is missing, null or empty."""
    return int(fields.get(key) or 0)


def _text(fields: dict[str, Any], key: str) -> str:
    return str(fields.get(key) or "")


def _worker_spec(job: dict[str, Any]) -> str:
    """The run's SpecSnapshot as the Job hands it to its worker (controller/jobs.worker_env)."""
    pod = (((job.get("spec") or {}).get("template") or {}).get("spec")) or {}
    for container in pod.get("containers") or []:
        for entry in container.get("env") or []:
            if entry.get("name") == "CONTENTGEN_SPEC":
                return str(entry.get("value") or "")
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
    status = read_part(LORA_TRAINING, ReferencedLora, body.get("status") or {})
    meta = body.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    asked = annotations.get(PROMOTED_ANNOTATION)
    # Only a promotion reads the likeness curves (its checkpoints' LoRAs), from the whole status.
    whole = _status(LORA_TRAINING, LoraTrainingStatus, body) if asked else None
    promoted, _ = promotions_of(asked, [v.wire() for v in whole.versions] if whole else [])
    usable = tuple(
        UsableVersion(
            v.version,
            promoted[v.version].model_uri if v.version in promoted else v.model_uri,
            v.provider,
            v.trigger_word,
            v.dataset_uri,
        )
        for v in status.versions
    )
    usable = tuple(v for v in usable if v.model_uri)
    latest = status.latest_version
    return LoraState(
        name=meta.get("name", ""),
        owner=(body.get("spec") or {}).get("owner", ""),
        phase=str(status.phase or ""),
        latest_version=latest,
        latest_model_uri=next((v.model_uri for v in usable if v.number == latest), ""),
        uid=meta.get("uid", ""),
        reason=ready_reason(status),
        message=status.message,
        model_uris=tuple((v.number, v.model_uri) for v in usable),
        older_versions=status.older_versions,
        usable=usable,
        namespace=meta.get("namespace", ""),
        grants=parse_annotation(annotations.get(SHARED_ANNOTATION))[0],
    )


def image_state(body: Mapping[str, Any]) -> ImageState:
    """What an imageRef to the ImageGeneration `body` resolves to (from its status)."""
    status = _status(IMAGE_GENERATION, ImageGenerationStatus, body)
    meta = body.get("metadata") or {}
    return ImageState(
        name=str(meta.get("name", "")),
        owner=str((body.get("spec") or {}).get("owner", "")),
        phase=str(status.phase or ""),
        uid=str(meta.get("uid", "")),
        latest_version=status.latest_version,
        versions=tuple((v.version, tuple(i.uri for i in v.images)) for v in status.versions),
        loras=tuple((v.version, tuple(v.loras)) for v in status.versions),
    )


def _status(kind: Kind, model: type[StatusT], body: Mapping[str, Any]) -> StatusT:
    """The status of `body`, a `kind`, read where it enters (controller/status.py: leniently)."""
    status = read_status(kind, body.get("status") or {})
    return status if isinstance(status, model) else model()
