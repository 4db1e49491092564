"""kopf listing a custom resource again, and what it leaves behind.

When kopf's watch of a kind is answered 410 Gone (its version is too old: an API server restarted,
a long disconnection), kopf lists the kind again and delivers every resource that exists, as at a
start, and nothing at all for the resources deleted while its watch was away: kopf drops an index
entry only on a DELETED event. client-go's informers report such deletions from the new listing;
this does the same beside kopf.

- `unchanged`: a listing's event of a resource at the version whose event was handled already
  changed nothing: no reconcile, no catalog write (a relist costs nothing per unchanged resource).
- `relisted`: a listing's event of a resource already known means kopf is listing the kind again.
  Once its listing events have stopped for a moment, the operator lists the kind itself (metadata
  only, in pages); a resource the indexes hold that this listing lacks is looked up by name (it may
  be newer than the listing), and if it is gone it is forgotten as its DELETED event would have
  forgotten it: out of the indexes and the namespace's queue, its slot given back, its catalog
  record marked deleted.
- `prune_every`: the same look at every kind now and then (the resync interval), for a relist that
  delivers no known resource at all (every one of them was deleted while the watch was away).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from contentgen.api import GROUP, KINDS, VERSION, Kind

from . import metrics
from .catalog_sync import mark_gone
from .kinds import controller_kind
from .reconciler import wake_namespace, wake_waiters
from .state import Operator

log = logging.getLogger("contentgen.operator")

QUIET = 1.0  # seconds without a listing event of the kind before looking for what it lacks
PAGE = 500
METADATA = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"


def unchanged(op: Operator, kind: Kind, meta: Any, listing: bool) -> bool:
    """Note the event's resourceVersion; True for a listing's event of a resource at the version
    already handled (kopf listing again: nothing changed while its watch was away)."""
    uid, version = str(meta["uid"]), str(meta.get("resourceVersion"))
    last = op.versions.get(uid)
    if listing and last is not None:
        relisted(op, kind)
        if last == version:
            return True
    op.versions[uid] = version
    return False


def relisted(op: Operator, kind: Kind) -> None:
    """kopf is listing `kind` again: once it has delivered its listing, look for what it lacks."""
    op.relisting[kind.kind] = time.monotonic()
    if kind.kind not in op.pruning:
        op.pruning.add(kind.kind)
        op.spawn(_prune_when_quiet(op, kind))


async def _prune_when_quiet(op: Operator, kind: Kind) -> None:
    try:
        while True:
            while (wait := op.relisting[kind.kind] + QUIET - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            began = time.monotonic()
            try:
                await prune(op, kind)
            except Exception as exc:  # the API server away again: its next relist, or the safety net
                log.warning("could not look for deleted %s: %s", kind.plural, exc)
            if op.relisting[kind.kind] < began:  # no listing event came meanwhile
                return
    finally:
        op.pruning.discard(kind.kind)


async def prune_every(op: Operator, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        for kind in KINDS.values():
            relisted(op, kind)


async def prune(op: Operator, kind: Kind) -> int:
    """Forget the resources of `kind` that the indexes hold and the API server no longer has.
    Returns how many."""
    index = op.indexes.get(f"{kind.plural}_by_uid")
    if index is None:
        return 0
    listed = await _listed(op, kind)
    held = [kept for key in list(index) if key[1] not in listed for kept in list(index.get(key, []))]
    forgotten = 0
    for kept in held:
        body = json.loads(kept.body)
        meta = body["metadata"]
        if await _exists(op, kind, meta["namespace"], meta["name"], meta["uid"]):
            continue  # newer than the listing
        log.info(
            "%s %s/%s was deleted while the watch was away; forgetting it",
            kind.kind,
            meta["namespace"],
            meta["name"],
        )
        _drop_from_indexes(op, kind, meta)
        gone(op, kind, body)
        metrics.FOUND_DELETED.labels(kind.kind).inc()
        forgotten += 1
    return forgotten


def gone(op: Operator, kind: Kind, body: dict[str, Any]) -> None:
    """The resource is deleted: forget it, give its place in the queue to the next, mark its
    catalog record (what a DELETED event does, and a relist that lacks the resource)."""
    meta = body["metadata"]
    op.forget(meta["namespace"], meta["uid"])
    wake_namespace(op, meta["namespace"])
    # the runs waiting for it (ImageGenerations for a LoraTraining, VideoGenerations for an
    # ImageGeneration): LoraNotFound, ImageNotFound now
    wake_waiters(op, controller_kind(kind.kind), meta["namespace"], meta["name"])
    op.spawn(mark_gone(op, body))


def _drop_from_indexes(op: Operator, kind: Kind, meta: dict[str, Any]) -> None:
    """Drop the resource from kopf's indexes as kopf does on a DELETED event: its indexers' own
    call (`Index._discard`, keyed by (namespace, name, uid)); kopf has no public one, as its
    indexes are only ever changed by events."""
    key = (meta["namespace"], meta["name"], meta["uid"])
    by_name = controller_kind(kind.kind).by_name
    names = [f"{kind.plural}_by_uid"] + ([by_name] if by_name else [])
    for name in names:
        index = op.indexes.get(name)
        if index is not None:
            index._discard(key)


def _paths(op: Operator, kind: Kind) -> list[str]:
    scopes = [f"/namespaces/{ns}" for ns in op.settings.watch_namespaces] or [""]
    return [f"/apis/{GROUP}/{VERSION}{scope}/{kind.plural}" for scope in scopes]


async def _listed(op: Operator, kind: Kind) -> set[str]:
    """The uids of every resource of `kind` the operator watches, from a listing of their metadata."""
    uids: set[str] = set()
    for path in _paths(op, kind):
        params = {"limit": str(PAGE)}
        while True:
            page = await op.kube.request("GET", path, params=params, accept=METADATA)
            uids.update(str(item["metadata"]["uid"]) for item in page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                break
            params["continue"] = token
    return uids


async def _exists(op: Operator, kind: Kind, namespace: str, name: str, uid: str) -> bool:
    """Whether this very resource (not a new one under its name) exists now. A listing selected by
    name, not a get: the operator's role lists and watches its kinds, and needs no get."""
    page = await op.kube.request(
        "GET",
        f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{kind.plural}",
        params={"fieldSelector": f"metadata.name={name}"},
        accept=METADATA,
    )
    return any(item["metadata"]["uid"] == uid for item in page.get("items") or [])
