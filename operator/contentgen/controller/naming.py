"""Names and labels of the objects the operator creates."""

from __future__ import annotations

import hashlib
import re

from contentgen.api import Kind

MANAGED_BY = "contentgen-operator"
LABEL_KIND = "contentgen.io/kind"
LABEL_OWNER = "contentgen.io/owner"
LABEL_UID = "contentgen.io/uid"
LABEL_GENERATION = "contentgen.io/generation"
LABEL_VERSION = "contentgen.io/version"
ANNOTATION_SKIP_CLEANUP = "contentgen.io/skip-cleanup"
# On a Job: what it runs (a digest of its spec, see supersede.py) and on which provider.
ANNOTATION_INPUTS = "contentgen.io/inputs"
ANNOTATION_PROVIDER = "contentgen.io/provider"
# On a GPU Job: the GPUs its pod asks for ("1 nvidia.com/gpu"), for the status when none is free.
ANNOTATION_GPUS = "contentgen.io/gpus"
# Kueue's: the LocalQueue a Job is submitted to (Kueue suspends it until it admits it).
LABEL_QUEUE = "kueue.x-k8s.io/queue-name"
FINALIZER = "contentgen.io/cleanup"
MAX_NAME = 63
MAX_LABEL_VALUE = 63
UID_DIGITS = 8  # of the uid in a Job's name: a UUID's first group


def job_name(kind: Kind, name: str, uid: str, generation: int) -> str:
    """A DNS label (≤ 63 chars) of one resource's generation: `{name}-{kind}-{uid}-g{n}`, with
    the kind's short name (`lt`, `ig`, `tr`) and the first 8 hex digits of the resource's uid, the
    name cut (never the rest) to fit. Two resources never want one Job: not two kinds of one
    name, nor a resource made again under the name of one whose Job is still there (orphaned, or
    not yet collected). Jobs of older operators (`{name}-g{n}`) are still found by their labels."""
    suffix = f"-{kind.short_names[-1]}-{_uid_part(uid)}-g{generation}"
    stem = re.sub(r"[^a-z0-9-]", "-", name.lower()[: MAX_NAME - len(suffix)]).strip("-") or "job"
    return f"{stem}{suffix}"


def _uid_part(uid: str) -> str:
    digits = re.sub(r"[^a-z0-9]", "", uid.lower())[:UID_DIGITS]
    return digits or hashlib.sha256(uid.encode()).hexdigest()[:UID_DIGITS]


def label_value(value: str) -> str:
    """A valid label value: ≤ 63 chars of [A-Za-z0-9._-], alphanumeric at both ends."""
    if len(value) <= MAX_LABEL_VALUE and re.fullmatch(r"([A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?)?", value):
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", value)[: MAX_LABEL_VALUE - 9].strip("._-")
    return f"{stem}-{digest}" if stem else digest


def labels(kind: Kind, name: str, owner: str, uid: str, generation: int, version: int) -> dict[str, str]:
    result = {
        "app.kubernetes.io/name": "contentgen-worker",
        "app.kubernetes.io/instance": label_value(name),
        "app.kubernetes.io/component": kind.catalog_type,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        LABEL_KIND: kind.kind,
        LABEL_OWNER: label_value(owner),
        LABEL_UID: uid,
        LABEL_GENERATION: str(generation),
    }
    if version:
        result[LABEL_VERSION] = str(version)
    return result
