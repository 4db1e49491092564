"""Writing a resource's catalog document (the operator is the catalog's only writer). MongoDB
being away never blocks a reconcile: the write is remembered and made again on the next tick."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from contentgen.api import KINDS, Phase, RunResult, now, parse_timestamp
from contentgen.catalog.document import catalog_document

from . import metrics
from .outcomes import stored_result
from .state import Operator

log = logging.getLogger("contentgen.operator")


async def sync_catalog(
    op: Operator, body: dict[str, Any], status: dict[str, Any], result: RunResult | None
) -> None:
    """Write the resource's catalog document. MongoDB being away never blocks a reconcile:
    the write is remembered and made again on the next tick."""
    if op.catalog is None:
        return
    meta = body["metadata"]
    uid = meta["uid"]
    kind = KINDS[body["kind"]]
    result = result or op.catalog_behind.get(uid)
    try:
        if result is None and status.get("phase") == Phase.SUCCEEDED and op.store is not None:
            version = int(status.get("latestVersion") or 0)
            owner, generation = str(body["spec"].get("owner")), int(status.get("observedGeneration") or 0)
            result = await asyncio.to_thread(stored_result, op.store, kind, owner, uid, version, generation)
        previous = await asyncio.to_thread(op.catalog.get, uid)
        doc = catalog_document(
            kind=kind.kind,
            name=meta["name"],
            namespace=meta["namespace"],
            uid=uid,
            generation=int(meta.get("generation") or 1),
            spec=dict(body.get("spec") or {}),
            status=status,
            created_at=parse_timestamp(meta.get("creationTimestamp")) or now(),
            now=now(),
            result=result,
            previous=previous,
        )
        await asyncio.to_thread(op.catalog.upsert, doc)
    except Exception as exc:
        op.catalog_behind[uid] = result
        log.warning("catalog write for %s/%s deferred: %s", meta["namespace"], meta["name"], exc)
    else:
        op.catalog_behind.pop(uid, None)
    metrics.CATALOG_BEHIND.set(len(op.catalog_behind))
