"""LoraTrainings' grants (their annotation contentgen.io/shared-with) mirrored into the ConfigMap
the chart's share policy reads as its params (charts/contentgen/templates/share-policy.yaml), so
that the API server's admission refuses a loraRef to another owner's LoRA that is not shared with
the resource's owner for use (docs/sharing.md).

    data   {namespace}.{name}: the LoRA's grants as the annotation's canonical value
           (owner:bob=use,group:artists=read), for each LoraTraining with a grant; a namespace
           holds no dot, so the first dot ends it
           _{uid}: the same, for each resource of any kind with a grant, by its uid: what the
           input policy reads for an address whose key names that uid (store/access.py); no
           namespace starts with "_"

The leader writes it (Kube.request refuses a write from a replica that cannot prove its Lease):
every LoraTraining from the index once it is complete (a new leader's full resync), then again
after each change of one (coalesced). Each write is a JSON patch guarded by the resourceVersion
just read, so a write still in flight from a former leader cannot undo a newer one. The operator's
own check of the grant (decide.py, LoraNotShared) stays: it is what holds for a grant taken back
after a resource was admitted, or given before this mirror caught up.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from contentgen.api.sharing import Grant, annotation_of

from .kube import Kube
from .observe import LoraState

log = logging.getLogger("contentgen.operator.shares")

MAX_KEY = 253  # a ConfigMap key's longest
# A ConfigMap holds at most 1 MiB (data and metadata together); this leaves the metadata room.
MAX_DATA_BYTES = 1024 * 1024 - 16 * 1024


def params_key(namespace: str, name: str) -> str:
    return f"{namespace}.{name}"


def uid_key(uid: str) -> str:
    return f"_{uid}"


def params_data(
    loras: Iterable[LoraState], by_uid: Iterable[tuple[str, tuple[Grant, ...]]] = ()
) -> tuple[dict[str, str], list[str]]:
    """The ConfigMap's data for these LoraTrainings and these resources' grants by uid, and the
    keys left out: one longer than a ConfigMap key may be, and, past MAX_DATA_BYTES, the last in
    key order. A LoRA or a resource left out is one whose cross-owner uses admission refuses (as
    though unshared); the operator's check holds either way."""
    wanted: dict[str, str] = {}
    left_out: list[str] = []
    named = [(params_key(lora.namespace, lora.name), lora.grants) for lora in loras]
    for key, grants in [*named, *((uid_key(uid), grants) for uid, grants in by_uid)]:
        if not grants:
            continue
        if len(key) > MAX_KEY:
            left_out.append(key)
            continue
        wanted[key] = annotation_of(grants)
    data: dict[str, str] = {}
    size = 2
    for key in sorted(wanted):
        entry = len(json.dumps({key: wanted[key]}).encode())
        if size + entry > MAX_DATA_BYTES:
            left_out.append(key)
            continue
        data[key], size = wanted[key], size + entry
    return data, left_out


class ShareMirror:
    """Keeps the ConfigMap `namespace`/`name` equal to params_data of `loras()`: `changed()` after
    any LoraTraining event; `run()` writes at its start and after changes, `coalesce` seconds
    after the first of a burst, and every `resync` seconds reads it again."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        loras: Callable[[], Iterable[LoraState]],
        by_uid: Callable[[], Iterable[tuple[str, tuple[Grant, ...]]]] = lambda: (),
        *,
        coalesce: float = 0.5,
        retry: float = 5.0,
        resync: float = 300.0,
    ) -> None:
        self.kube, self.namespace, self.name, self.loras, self.by_uid = kube, namespace, name, loras, by_uid
        self.coalesce, self.retry, self.resync = coalesce, retry, resync
        self.path = f"/api/v1/namespaces/{namespace}/configmaps/{name}"
        self._dirty = asyncio.Event()
        self._written: dict[str, str] | None = None  # what this process last wrote (or found)
        self.writes = 0  # ConfigMap patches sent, for the tests

    def changed(self) -> None:
        self._dirty.set()

    async def run(self) -> None:
        self._dirty.set()  # the full resync
        while True:
            try:
                await asyncio.wait_for(self._dirty.wait(), self.resync)
            except TimeoutError:  # read it again: someone else may have changed it (kubectl edit)
                self._written = None
            await asyncio.sleep(self.coalesce)
            self._dirty.clear()
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the API server away, a conflict, a lost Lease
                log.warning("grants not mirrored into ConfigMap %s/%s: %s", self.namespace, self.name, exc)
                self._written = None
                await asyncio.sleep(self.retry)
                self._dirty.set()

    async def sync(self) -> None:
        data, left_out = params_data(self.loras(), self.by_uid())
        if left_out:
            log.error(
                "ConfigMap %s/%s: %d resources' grants left out (a key over %d characters, or past the "
                "ConfigMap's 1 MiB): admission refuses their cross-owner uses; the first: %s",
                self.namespace,
                self.name,
                len(left_out),
                MAX_KEY,
                left_out[0],
            )
        if data == self._written:
            return
        current: dict[str, Any] = await self.kube.request("GET", self.path)
        if dict(current.get("data") or {}) != data:
            version = str((current.get("metadata") or {}).get("resourceVersion") or "")
            await self.kube.request(
                "PATCH",
                self.path,
                [
                    {"op": "test", "path": "/metadata/resourceVersion", "value": version},
                    {"op": "add", "path": "/data", "value": data},
                ],
                content_type="application/json-patch+json",
            )
            self.writes += 1
            log.info("%d grants mirrored into ConfigMap %s/%s", len(data), self.namespace, self.name)
        self._written = data
