"""Fields and status shared by every kind."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal, TypeVar

from pydantic import Field

from .base import ApiModel, CelRule, Timestamp, regex_rule
from .cost import Cost
from .inputs import READS

OWNER_PATTERN = r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$"
# Kubernetes object names (DNS-1123 subdomain).
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# The name of another object in the cluster (a resource, a Secret): a DNS subdomain.
ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=NAME_PATTERN)]
MAX_URL_LENGTH = 2048

# A host with no user:password@ part (credentials belong in Secrets, never in a spec), then
# an optional path; or s3://bucket/key.
_HTTP_URL = r"https?://[^\s/?#@]+(?:[/?#]\S*)?"
_HTTPS_URL = r"https://[^\s/?#@]+(?:[/?#]\S*)?"
_S3_URL = r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/\S+"


def is_local_path(value: str) -> bool:
    """A plain path or file:// URL: accepted as a source by local runs only."""
    return value.startswith("file://") or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", value) is None


SOURCE_URL_RULE = regex_rule(
    f"{_HTTP_URL}|{_S3_URL}",
    "must be an http://, https:// or s3://bucket/key URL, without spaces or user:password@",
    local_exception=is_local_path,
)
LORA_URL_RULE = regex_rule(
    f"{_HTTPS_URL}|{_S3_URL}",
    "must be an https:// or s3://bucket/key URL, without spaces or user:password@",
    local_exception=is_local_path,
)

Owner = Annotated[
    str,
    Field(
        max_length=63,
        pattern=OWNER_PATTERN,
        description=(
            "The user id the assets belong to; part of every object-store key. Lowercase letters, "
            "digits, '.', '_' and '-', starting and ending with a letter or digit, at most 63 "
            "characters. Immutable."
        ),
    ),
    CelRule(
        rule="self == oldSelf",
        message="owner is immutable: the resource's assets are stored under it; "
        "create a new resource for another owner",
    ),
]

SourceUrl = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="Where to fetch the input: an http://, https:// or s3://bucket/key URL.",
    ),
    SOURCE_URL_RULE,
    READS,  # another owner's output is named here only where it is shared for read (api/inputs.py)
]

Tag = Annotated[str, Field(min_length=1, max_length=64)]


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class Phase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class ConditionType(StrEnum):
    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"


class CommonSpec(ApiModel):
    """Fields every kind has. Each kind adds `provider` with its own choices."""

    owner: Owner
    deletion_policy: Annotated[
        DeletionPolicy,
        Field(
            description="What happens to stored assets when the resource is deleted: Retain keeps "
            "them (and the catalog record), Delete removes them and marks the record deleted."
        ),
    ] = DeletionPolicy.RETAIN
    tags: Annotated[
        list[Tag],
        Field(
            max_length=20,
            description="Free-form labels for finding the assets later (at most 20, each at most 64 "
            "characters).",
        ),
    ] = []
    description: Annotated[
        str, Field(max_length=1000, description="What this is, for people searching the catalog.")
    ] = ""
    queue_name: Annotated[
        str,
        Field(
            max_length=63,
            pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$",
            description="The Kueue LocalQueue this resource's Jobs are submitted to (their "
            "kueue.x-k8s.io/queue-name label): Kueue holds each suspended until the queue admits it "
            "(Pending, Queued). Empty: for provider cluster, the namespace's contentgen.io/queue-name "
            "label or the operator's default queue; for the others, none (docs/cluster-gpus.md).",
        ),
    ] = ""


class SourceSpec(ApiModel):
    url: SourceUrl


# --- status ---------------------------------------------------------------------------------

Reason = Annotated[
    str,
    Field(
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="A CamelCase word a program can switch on.",
    ),
]


class Condition(ApiModel):
    """A kstatus-compatible condition (Ready, Reconciling, Stalled)."""

    type: Annotated[
        str,
        Field(
            max_length=316,
            description="Ready, Reconciling, Stalled, LikenessEvaluated (LoraTraining, LoraEvaluation) or "
            "LikenessPoor (LoraTraining).",
        ),
    ]
    status: Literal["True", "False", "Unknown"]
    reason: Reason
    message: Annotated[str, Field(max_length=32768, description="A sentence for people.")] = ""
    last_transition_time: Annotated[Timestamp, Field(description="When status last changed.")]
    observed_generation: Annotated[
        int, Field(ge=0, description="The resource generation this condition describes.")
    ] = 0


class Artifact(ApiModel):
    """A stored object: where it is and what it holds."""

    uri: Annotated[str, Field(description="s3://bucket/key or file:///path.")]
    size_bytes: Annotated[int, Field(ge=0)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    content_type: Annotated[str, Field(max_length=255)] = "application/octet-stream"


class VersionBase(ApiModel):
    """What every kind's version records: one run that succeeded, and when and what it cost. A run
    writes under a version prefix of its own (`…/{uid}/v{n}/`), so no version overwrites another."""

    version: Annotated[int, Field(ge=1, description="Its number (v1, v2, …), which no other run uses.")]
    generation: Annotated[int, Field(ge=0, description="The spec generation it was made from.")] = 0
    provider: Annotated[str, Field(description="The provider that made it.")] = ""
    placeholder: Annotated[
        bool, Field(description="True when the offline provider made it (labelled placeholders).")
    ] = False
    started_at: Annotated[Timestamp, Field(description="When its run started.")] | None = None
    created_at: Annotated[Timestamp, Field(description="When its run finished.")]
    cost_usd: (
        Annotated[
            float, Field(ge=0, description="What its run cost at the provider (USD); unset when unknown.")
        ]
        | None
    ) = None


_Version = TypeVar("_Version")
# What every status says of its versions: the newest one's number, and (a kind that keeps its
# versions in its status) the newest 100 themselves.
LatestVersion = Annotated[int, Field(ge=0, description="The newest version; 0 before the first.")]
NewestVersions = Annotated[
    list[_Version],
    Field(
        description="The newest 100 versions, oldest first: a run for a new spec generation adds one "
        "(olderVersions counts the rest; the catalog keeps every one)."
    ),
]


class CommonStatus(ApiModel):
    phase: Annotated[Phase, Field(description="Pending, Running, Succeeded or Failed.")] | None = None
    progress: Annotated[int, Field(ge=0, le=100, description="Percent done of the current run.")] = 0
    stage: Annotated[str, Field(max_length=63, description="The pipeline stage now running.")] = ""
    message: Annotated[str, Field(max_length=32768, description="What is happening, or why it failed.")] = ""
    job_name: Annotated[
        str,
        Field(
            max_length=63,
            description="The Job of the latest run (running, or the one that ended it); empty while a "
            "generation waits to start.",
        ),
    ] = ""
    run_version: Annotated[
        int,
        Field(
            ge=0,
            description="The version number of the latest run: every run gets one of its own, never "
            "reused (a failed run's number is skipped), and becomes that version when it succeeds.",
        ),
    ] = 0
    observed_generation: Annotated[
        int, Field(ge=0, description="The spec generation the phase and outputs describe.")
    ] = 0
    older_versions: Annotated[
        int,
        Field(
            ge=0,
            description="Versions older than the newest 100, left out of versions[] to keep the resource "
            "small (the catalog keeps every one: `contentgen assets get`).",
        ),
    ] = 0
    started_at: Annotated[Timestamp, Field(description="When the current run started.")] | None = None
    completed_at: Annotated[Timestamp, Field(description="When the current run ended.")] | None = None
    conditions: Annotated[
        list[Condition],
        Field(
            description="Ready, Reconciling and Stalled, as kstatus reads them; a LoraTraining also "
            "has LikenessPoor once a version has a likeness report, and a LoraTraining and a "
            "LoraEvaluation LikenessEvaluated, which resolves once the current generation's run ends "
            "(docs/likeness.md#gates).",
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        ),
    ] = []
    cost: (
        Annotated[
            Cost,
            Field(description="Spend at the provider (USD): estimated before the Job starts, actual after."),
        ]
        | None
    ) = None
