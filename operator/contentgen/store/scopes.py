"""What one run's worker may reach in the store, and the session policy that says so (pure;
docs/security.md "What a worker can reach").

A run reads its spec's inputs (their keys exactly), its own resource's outputs (the versions it
continues from, the state a retried pod resumes from) and the shared likeness baselines; it writes
its own version's folders and its working state; nothing else. The operator hands the worker
credentials narrowed to this scope (controller/run_credentials.py), which the store enforces.

    scope = run_scope(snapshot, bucket_prefix, models_prefix)
    session_policy(scope, bucket)          -> the JSON of an STS session policy (IAM's language)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from contentgen.api import KINDS, SpecSnapshot
from contentgen.api.inputs import inputs
from contentgen.api.providers import provider_entry

from . import keys
from .access import StorePlace, located

# STS takes at most this much policy (AWS: 2,048 characters of plain text; SeaweedFS the same).
MAX_POLICY = 2048
READ = ("s3:GetObject",)
WRITE = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")


class ScopeTooLarge(ValueError):
    """A run names more inputs than one session policy can hold."""


@dataclass(frozen=True)
class RunScope:
    """Keys (full, with the store's prefix) a run may read, and folders it may read and list, or
    write (put, delete, multipart)."""

    read_keys: tuple[str, ...] = ()
    read_prefixes: tuple[str, ...] = ()
    write_prefixes: tuple[str, ...] = ()
    list_prefixes: tuple[str, ...] = ()  # what a retried pod lists to resume: its own folders
    # what the run reads if the policy has room (its LoRAs' faces, for a likeness): the first to go
    optional_keys: tuple[str, ...] = ()
    # folders of other buckets' keys, by bucket (s3:// inputs outside the store)
    elsewhere: dict[str, tuple[str, ...]] = field(default_factory=dict)


def run_scope(snap: SpecSnapshot, place: StorePlace, models_prefix: str = "") -> RunScope:
    """The scope of `snap`'s run in the store at `place` (models_prefix: the s3:// prefix the
    cluster's workers copy base models from, read too)."""
    kind = KINDS[snap.kind]
    owner, uid, version = snap.owner, snap.uid, snap.version
    own = keys.output_roots(kind.catalog_type, owner, uid)
    writes = [*keys.version_roots(kind.catalog_type, owner, uid, version), keys.temp_root(uid)]
    # a kind that evaluates likeness draws, and stores once, the shared baselines
    baselines = [keys.BASELINES] if kind.likeness_plan is not None else []
    reads = [*own, keys.temp_root(uid), *baselines]
    listed = [*own, keys.temp_root(uid)]
    wanted = [i.url for i in inputs(kind.spec, snap.spec)]
    wanted += [uri for lora in snap.loras for uri in (lora.uri, lora.low_noise_uri)]
    faces = [f for lora in snap.loras for f in _faces(lora.uri)]
    if snap.image is not None:
        wanted.append(snap.image.uri)
        faces += [f for lora in snap.image.loras for f in _faces(lora.uri)]
    if snap.lora is not None:  # a LoraEvaluation: the version it evaluates, its likeness folder
        lora_version = keys.lora_version(owner, snap.lora.uid, snap.lora.version)
        reads += [lora_version, keys.dataset_version(owner, snap.lora.uid, snap.lora.version)]
        writes.append(f"{lora_version}likeness/")
        listed.append(f"{lora_version}likeness/")
    elsewhere: dict[str, list[str]] = {}
    exact, optional = _keys(wanted, place, elsewhere), _keys(faces, place, elsewhere)
    read_prefixes = [place.prefix + p for p in [*reads, *writes]]
    if models_prefix.startswith(f"s3://{place.bucket}/") and provider_entry(snap.provider).own_gpus:
        read_prefixes.append(models_prefix[len(f"s3://{place.bucket}/") :].strip("/") + "/")
    read_prefixes = _outermost(read_prefixes)

    def outside(found: list[str]) -> tuple[str, ...]:
        full = dict.fromkeys(place.prefix + k for k in found)
        return tuple(k for k in full if not any(k.startswith(p) for p in read_prefixes))

    return RunScope(
        read_keys=outside(exact),
        read_prefixes=tuple(read_prefixes),
        write_prefixes=tuple(_outermost([place.prefix + p for p in [*writes, *baselines]])),
        list_prefixes=tuple(_outermost([place.prefix + p for p in listed])),
        optional_keys=tuple(k for k in outside(optional) if k not in outside(exact)),
        elsewhere={bucket: tuple(dict.fromkeys(found)) for bucket, found in elsewhere.items()},
    )


def _keys(urls: list[str], place: StorePlace, elsewhere: dict[str, list[str]]) -> list[str]:
    """The keys (within the store) of the store's `urls`; those of other buckets go to `elsewhere`."""
    found: list[str] = []
    for url in filter(None, urls):
        where = located(url, place)
        if where is not None and where.plain and where.key:
            found.append(where.key)
        elif url.startswith("s3://") and where is None:
            bucket, _, key = url[len("s3://") :].partition("/")
            elsewhere.setdefault(bucket, []).append(key)
    return found


def _outermost(prefixes: list[str]) -> list[str]:
    """The prefixes no other of them holds, in order, once each."""
    unique = list(dict.fromkeys(prefixes))
    return [p for p in unique if not any(p != q and p.startswith(q) for q in unique)]


def _faces(uri: str) -> list[str]:
    """A LoRA version's subject faces (its dataset's), which a picture's or a clip's likeness reads."""
    found = keys.lora_of_uri(uri)
    return (
        [uri.split(keys.WEIGHTS_FOLDER + "/", 1)[0] + keys.dataset_version(*found) + keys.FACES_FILE]
        if found
        else []
    )


def session_policy(scope: RunScope, bucket: str) -> str:
    """The session policy of `scope` on `bucket`: with the optional keys where they fit, else
    without them; ScopeTooLarge past what STS takes. (No time condition: SeaweedFS grants nothing
    under `aws:CurrentTime`; the session's own end bounds the credentials.)"""
    text = _policy(scope, bucket, scope.optional_keys)
    if len(text) > MAX_POLICY:
        text = _policy(scope, bucket, ())
    if len(text) > MAX_POLICY:
        raise ScopeTooLarge(
            f"the run's store access takes {len(text)} characters of session policy, past the {MAX_POLICY} "
            "STS takes: name fewer inputs in one resource (LoRAs, reference photos)"
        )
    return text


def _policy(scope: RunScope, bucket: str, optional: tuple[str, ...]) -> str:
    arn = f"arn:aws:s3:::{bucket}"
    readable = [f"{arn}/{k}" for k in (*scope.read_keys, *optional)]
    readable += [f"{arn}/{p}*" for p in scope.read_prefixes]
    readable += [f"arn:aws:s3:::{b}/{k}" for b, found in scope.elsewhere.items() for k in found]
    listed = [p + "*" for p in scope.list_prefixes]
    statements = [
        {"Effect": "Allow", "Action": list(READ), "Resource": readable},
        {"Effect": "Allow", "Action": list(WRITE), "Resource": [f"{arn}/{p}*" for p in scope.write_prefixes]},
        {
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [arn],
            "Condition": {"StringLike": {"s3:prefix": listed}},
        },
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, separators=(",", ":"))
