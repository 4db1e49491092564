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
FINALIZER = "contentgen.io/cleanup"
MAX_NAME = 63
MAX_LABEL_VALUE = 63


def job_name(name: str, uid: str, generation: int) -> str:
    """A DNS label (≤ 63 chars) unique per resource and generation: `{name}-g{n}`, shortened
    with a hash of the whole identity when the resource's name is long."""
    suffix = f"-g{generation}"
    full = f"{name}{suffix}"
    if len(full) <= MAX_NAME and "." not in name:
        return full
    digest = hashlib.sha256(f"{uid}/{name}/{generation}".encode()).hexdigest()[:8]
    room = MAX_NAME - len(suffix) - len(digest) - 1
    stem = re.sub(r"[^a-z0-9-]", "-", name[:room]).strip("-") or "job"
    return f"{stem}-{digest}{suffix}"


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
