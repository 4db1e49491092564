"""What the operator reads off Jobs and LoraTrainings, as plain values (pure parsing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contentgen.api.lora import PROMOTED_ANNOTATION, promotions_of

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
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
    # Kubernetes 1.31+ sets Failed and Complete only once every pod has ended, FailureTarget and
    # SuccessCriteriaMet as soon as the Job's end is decided: a pod that never ends (stuck on a
    # lost node) holds back the terminal one for ever, and the run ends at the interim one.
    failed = conditions.get("Failed") or conditions.get("FailureTarget") or {}
    succeeded = conditions.get("Complete") or conditions.get("SuccessCriteriaMet") or {}
    suspended = bool((job.get("spec") or {}).get("suspend"))
    return JobState(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        uid=labels[LABEL_UID],
        generation=int(labels.get(LABEL_GENERATION, "0") or 0),
        version=int(labels.get(LABEL_VERSION, "0") or 0),
        active=int(status.get("active") or 0),
        ready=int(status.get("ready") or 0),
        succeeded=int(status.get("succeeded") or 0),
        failed=int(status.get("failed") or 0),
        complete=bool(succeeded),
        failed_reason=str(failed.get("reason") or ("Failed" if failed else "")),
        failed_message=str(failed.get("message") or ""),
        start_time=status.get("startTime"),
        completion_time=status.get("completionTime"),
        finished_at=status.get("completionTime")
        or succeeded.get("lastTransitionTime")
        or failed.get("lastTransitionTime"),
        deleting=bool(meta.get("deletionTimestamp")),
        inputs=str(annotations.get(ANNOTATION_INPUTS) or ""),
        provider=str(annotations.get(ANNOTATION_PROVIDER) or ""),
        gpus=str(annotations.get(ANNOTATION_GPUS) or ""),
        queue=str(labels.get(LABEL_QUEUE) or ""),
        suspended=suspended,
        job_uid=str(meta.get("uid") or ""),
        snapshot=_worker_spec(job),
    )


def _worker_spec(job: dict[str, Any]) -> str:
    """The run's SpecSnapshot as the Job hands it to its worker (controller/jobs.worker_env)."""
    pod = (((job.get("spec") or {}).get("template") or {}).get("spec")) or {}
    for container in pod.get("containers") or []:
        for entry in container.get("env") or []:
            if entry.get("name") == "CONTENTGEN_SPEC":
                return str(entry.get("value") or "")
    return ""


def lora_state(body: dict[str, Any]) -> LoraState:
    """What a loraRef to the LoraTraining `body` resolves to: each version's model, or where a
    person promoted a checkpoint (its annotation, api/lora.promotions_of), that checkpoint's LoRA."""
    status = body.get("status") or {}
    meta = body.get("metadata") or {}
    promoted, _ = promotions_of(
        (meta.get("annotations") or {}).get(PROMOTED_ANNOTATION), status.get("versions") or []
    )
    versions = [
        {**v, "modelUri": promoted[int(v["version"])].model_uri}
        if int(v.get("version") or 0) in promoted
        else v
        for v in status.get("versions") or []
    ]
    latest = status.get("latestVersion") or 0
    uri = next((v.get("modelUri", "") for v in versions if v.get("version") == latest), "")
    ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    return LoraState(
        name=meta.get("name", ""),
        owner=(body.get("spec") or {}).get("owner", ""),
        phase=status.get("phase") or "",
        latest_version=int(latest),
        latest_model_uri=uri,
        uid=meta.get("uid", ""),
        reason=str(ready.get("reason") or ""),
        message=str(status.get("message") or ""),
        model_uris=tuple(
            (int(v["version"]), str(v["modelUri"]))
            for v in versions
            if v.get("version") and v.get("modelUri")
        ),
        older_versions=int(status.get("olderVersions") or 0),
        usable=tuple(
            UsableVersion(
                int(v["version"]),
                str(v["modelUri"]),
                str(v.get("provider") or ""),
                str(v.get("triggerWord") or ""),
                str(v.get("datasetUri") or ""),
            )
            for v in versions
            if v.get("version") and v.get("modelUri")
        ),
        namespace=meta.get("namespace", ""),
        grants=parse_annotation((meta.get("annotations") or {}).get(SHARED_ANNOTATION))[0],
    )


def image_state(body: dict[str, Any]) -> ImageState:
    """What an imageRef to the ImageGeneration `body` resolves to (from its status)."""
    status = body.get("status") or {}
    meta = body.get("metadata") or {}
    return ImageState(
        name=str(meta.get("name", "")),
        owner=str((body.get("spec") or {}).get("owner", "")),
        phase=str(status.get("phase") or ""),
        uid=str(meta.get("uid", "")),
        latest_version=int(status.get("latestVersion") or 0),
        versions=tuple(
            (int(v["version"]), tuple(str(i.get("uri", "")) for i in v.get("images") or []))
            for v in status.get("versions") or []
            if v.get("version")
        ),
        loras=tuple(
            (int(v["version"]), tuple(dict(lora) for lora in v.get("loras") or [] if isinstance(lora, dict)))
            for v in status.get("versions") or []
            if v.get("version")
        ),
    )
