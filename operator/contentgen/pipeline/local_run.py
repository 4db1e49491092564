"""What `contentgen run` adds around the pipeline: it plays the operator's part on a laptop.

It gives the resource a stable uid (metadata.uid, or one derived from kind, namespace and
name, so rerunning a manifest updates the same resource), picks the next LoRA version from
the store, and resolves `loraRef` to the latest version trained locally for the same owner.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from contentgen.api import (
    KINDS,
    ImageGenerationSpec,
    ResolvedLora,
    Resource,
    RunFailure,
    RunResult,
    SpecSnapshot,
    format_time,
)
from contentgen.errors import InvalidInput
from contentgen.pricing import PriceTable, estimated, settled
from contentgen.store import ObjectStore, keys

_VERSION_DIR = re.compile(r"/v(\d+)/result\.json$")


def local_uid(kind: str, namespace: str, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"contentgen.io/{kind}/{namespace}/{name}"))


def completed_versions(store: ObjectStore, owner: str, uid: str) -> list[int]:
    """LoRA versions with a stored result (a version without one never finished)."""
    found = []
    for info in store.list(keys.lora_root(owner, uid)):
        match = _VERSION_DIR.search(info.key)
        if match:
            found.append(int(match.group(1)))
    return sorted(found)


def snapshot_for(resource: Resource[Any], store: ObjectStore) -> SpecSnapshot:
    kind = KINDS[resource.kind]
    meta = resource.metadata
    name = meta.name or meta.generate_name or "unnamed"
    namespace = meta.namespace or "default"
    uid = meta.uid or local_uid(kind.kind, namespace, name)
    spec = resource.spec
    version = 0
    loras: list[ResolvedLora] = []
    if kind.kind == "LoraTraining":
        version = (completed_versions(store, spec.owner, uid) or [0])[-1] + 1
    if isinstance(spec, ImageGenerationSpec):
        loras = [
            _resolve(
                entry.lora_ref.name if entry.lora_ref else None,
                entry.url,
                entry.scale,
                spec.owner,
                namespace,
                store,
            )
            for entry in spec.loras
        ]
    return SpecSnapshot(
        kind=kind.kind,
        name=name,
        namespace=namespace,
        uid=uid,
        generation=meta.generation or 1,
        version=version,
        spec=spec.wire(),
        loras=loras,
    )


def _resolve(
    ref: str | None, url: str | None, scale: float, owner: str, namespace: str, store: ObjectStore
) -> ResolvedLora:
    if url is not None:
        found = keys.lora_of_uri(url)
        uid, version = (found[1], found[2]) if found else ("", 0)
        return ResolvedLora(uri=url, scale=scale, uid=uid, version=version)
    assert ref is not None
    uid = local_uid("LoraTraining", namespace, ref)
    versions = completed_versions(store, owner, uid)
    if not versions:
        raise InvalidInput(
            f"loraRef {ref!r}: no trained version of LoraTraining {namespace}/{ref} for owner {owner!r} in "
            f"{store!r}; run its manifest first (contentgen run loratraining.yaml)"
        )
    key = keys.lora_version(owner, uid, versions[-1]) + "model.safetensors"
    return ResolvedLora(uri=store.uri(key), scale=scale, name=ref, uid=uid, version=versions[-1])


def record_run(
    catalog: Any,
    snapshot: SpecSnapshot,
    started: datetime,
    finished: datetime,
    result: RunResult | None = None,
    failure: RunFailure | None = None,
    prices: PriceTable | None = None,
) -> None:
    """Write the resource's catalog document, as the operator would after the run."""
    from contentgen.catalog.document import catalog_document

    previous = catalog.get(snapshot.uid)
    prices = prices or PriceTable()
    status: dict[str, Any] = {
        "observedGeneration": snapshot.generation,
        "startedAt": format_time(started),
        "completedAt": format_time(finished),
        "versions": (previous or {}).get("versions") or [],
        "latestVersion": (previous or {}).get("latestVersion") or 0,
    }
    if result is not None:
        status.update(phase="Succeeded", progress=100, stage="done", message=result.summary())
        result.merge_outputs(status)
        reason = "Succeeded"
    else:
        assert failure is not None
        status.update(phase="Failed", progress=0, stage="", message=f"{failure.reason}: {failure.message}")
        failure.merge_outputs(status)
        reason = failure.reason
    status["conditions"] = [
        {"type": "Ready", "status": str(result is not None), "reason": reason, "message": status["message"]}
    ]
    cost = estimated(snapshot.kind, snapshot.spec, prices, (previous or {}).get("cost"))
    usage = result.usage if result is not None else failure.usage if failure is not None else None
    status["cost"] = settled(cost, usage, prices, started).wire()
    catalog.upsert(
        catalog_document(
            kind=snapshot.kind,
            name=snapshot.name,
            namespace=snapshot.namespace,
            uid=snapshot.uid,
            generation=snapshot.generation,
            spec=snapshot.spec,
            status=status,
            created_at=(previous or {}).get("createdAt") or started,
            now=finished,
            result=result,
            previous=previous,
        )
    )
