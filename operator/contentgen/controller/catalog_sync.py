"""The catalog, written by the operator (its only writer in the cluster): each resource's document
follows its status live, throttled, and records deletions.

- `sync_catalog`: the whole document, from the resource's status, the result a finished Job left
  (and stored results of versions the document misses). Written conditionally (catalog.modify), so
  no concurrent write is lost. MongoDB being away never blocks a reconcile: the write is remembered
  (`catalog_behind`) and made again by the safety net. A LoraEvaluation's evaluation also joins
  its LoRA version's likeness history (catalog/evaluations.py: recorded once, whoever records it).
- `note_change`: a resource changed (the worker's progress, our own status write, a spec edit):
  its document follows within `catalog_write_interval_seconds` (1 s): at most one write per
  resource per interval, and the latest state always (a write waits for the interval rather than
  being dropped, and reads the resource as it is then).
- `mark_gone`: the resource was deleted: its record says so, with its deletionPolicy; a run that
  was waiting or running is Cancelled. `sweep_gone` (the safety net) does the same for records of
  resources that disappeared while the operator was away.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from contentgen.api import KINDS, Kind, RunResult, now, parse_timestamp
from contentgen.api.common import CommonStatus
from contentgen.api.sharing import ANNOTATION as SHARED
from contentgen.api.sharing import parse_annotation
from contentgen.api.versions import LEGACY_VERSION
from contentgen.catalog.deliveries import Deliveries
from contentgen.catalog.document import catalog_document, marked_deleted
from contentgen.catalog.evaluations import record_evaluation
from contentgen.catalog.migrate import upgrade
from contentgen.catalog.resource import ResourceState
from contentgen.catalog.verdicts import choosable
from contentgen.catalog.webhooks import events_of
from contentgen.store.results import version_result

from . import metrics
from .naming import ANNOTATION_SKIP_CLEANUP
from .objects import CustomResource
from .outages import report
from .runtime.leader import may_act
from .state import Operator
from .status import read_common, read_status, versions

log = logging.getLogger("contentgen.operator")
ORIGIN = "operator"
# The mirror's clock and waits (tests run it on virtual time).
clock: Callable[[], float] = time.monotonic
sleep: Callable[[float], Any] = asyncio.sleep
BodyOf = Callable[[], dict[str, Any] | None]


def _digest(body: dict[str, Any], status: dict[str, Any]) -> str:
    """What the catalog shows of a resource: its spec, status and name (not its resourceVersion)."""
    meta = body["metadata"]
    shared = (meta.get("annotations") or {}).get(SHARED)  # a grant changed: its record shows it
    shown = [
        meta.get("name"),
        meta.get("generation"),
        body.get("spec"),
        status,
        *([shared] if shared else []),
    ]
    return hashlib.sha256(json.dumps(shown, sort_keys=True, default=str).encode()).hexdigest()


FINISHED = ("Succeeded", "Failed")


def progress_key(generation: int, status: CommonStatus) -> tuple[int, int, int, int]:
    """How far a resource's state has come: its generation, the generation and run version its
    status speaks of, and whether that run has finished. It only grows as the operator moves a
    resource on."""
    finished = 1 if status.phase in FINISHED else 0
    return generation, status.observed_generation, status.run_version, finished


def recorded_key(doc: dict[str, Any]) -> tuple[int, int, int, int]:
    """`progress_key` of what a catalog document records."""
    run = doc.get("latestRun") or {}
    finished = 1 if run.get("phase") in FINISHED else 0
    return (
        int(doc.get("generation") or 0),
        int(run.get("generation") or 0),
        int(run.get("version") or 0),
        finished,
    )


def goes_back(previous: dict[str, Any] | None, generation: int, status: Mapping[str, Any]) -> bool:
    """Whether writing this state over the stored document would move it backwards: a write that
    comes late (a former leader's, a mirror write that waited) never undoes a newer one."""
    if previous is None:
        return False
    return progress_key(generation, read_common(status)) < recorded_key(upgrade(previous))


def _state(
    op: Operator,
    kind: Kind,
    body: dict[str, Any],
    status: dict[str, Any],
    result: RunResult | None,
    written: dict[int, RunResult] | None = None,
) -> Callable[[dict[str, Any] | None], dict[str, Any] | None]:
    """The change that writes the resource's document over `previous` (run in a thread: it may
    read results of versions the document misses from the store); `written` gets the results of
    the versions it writes."""
    resource = CustomResource.of(body)
    meta = resource.metadata
    typed = read_status(kind, status)
    results: dict[int, RunResult] = {}
    if result is not None:
        results[result.version or LEGACY_VERSION] = result

    def change(previous: dict[str, Any] | None) -> dict[str, Any] | None:
        if goes_back(previous, meta.generation or 1, status):
            log.info("catalog: %s/%s has a newer state already; not written", meta.namespace, meta.name)
            return None
        found = {**results, **_stored_results(op, kind, resource, typed, previous, set(results))}
        if written is not None:
            written.clear()
            written.update(found)
        state = _resource_state(kind, resource, status, found)
        doc = catalog_document(state, now=now(), origin=ORIGIN, previous=previous)
        # The record's transitions as webhook events, kept before the record is written (once per
        # event id, however often this runs): a record that shows a transition has its event.
        events = events_of(previous, doc, now())
        if events and op.catalog is not None:
            Deliveries(op.catalog).enqueue(events)
        return doc

    return change


def _stored_results(
    op: Operator,
    kind: Kind,
    resource: CustomResource,
    typed: CommonStatus,
    previous: dict[str, Any] | None,
    at_hand: set[int],
) -> dict[int, RunResult]:
    """The results of the status's versions the document has never had (nor deleted), read from
    the store: a version written while the catalog was behind. Those `at_hand` are not read."""
    if op.store is None:
        return {}
    before = upgrade(previous) if previous is not None else {}
    had = (before.get("versions") or []) + (before.get("deletedVersions") or [])
    known = {int(v["version"]) for v in had}
    owner, uid = str(resource.spec.get("owner")), resource.metadata.uid
    found: dict[int, RunResult] = {}
    for entry in versions(typed):
        if entry.version in known or entry.version in at_hand:
            continue
        stored = version_result(op.store, kind.catalog_type, owner, uid, entry.version)
        if stored is not None and stored.generation == entry.generation:
            found[entry.version] = stored
    return found


def _resource_state(
    kind: Kind, resource: CustomResource, status: dict[str, Any], results: dict[int, RunResult]
) -> ResourceState:
    meta = resource.metadata
    return ResourceState(
        kind=kind.kind,
        name=meta.name,
        namespace=meta.namespace,
        uid=meta.uid,
        generation=meta.generation or 1,
        spec=resource.spec,
        status=status,
        created_at=parse_timestamp(meta.creation_timestamp) or now(),
        results=results,
        shares=tuple(g.wire() for g in parse_annotation(meta.annotations.get(SHARED))[0]),
    )


def _record_evaluations(op: Operator, results: dict[int, RunResult]) -> None:
    """A LoraEvaluation's evaluations into their LoRA versions' likeness history (once each)."""
    assert op.catalog is not None
    for result in results.values():
        if result.evaluation is not None and result.evaluation_record is not None:
            record_evaluation(op.catalog, result.evaluation.lora.uid, result.evaluation_record, now=now())


async def sync_catalog(
    op: Operator, body: dict[str, Any], status: dict[str, Any], result: RunResult | None
) -> None:
    """Write the resource's document (unless the catalog has this very state already, or a newer
    one: goes_back)."""
    if op.catalog is None or not may_act():  # a replica that lost its Lease writes nothing
        return
    uid = body["metadata"]["uid"]
    kind = KINDS[body["kind"]]
    result = result or op.catalog_behind.get(uid)
    digest = _digest(body, status)
    async with op.lock(f"catalog/{uid}"):
        written = op.catalog_written.get(uid)
        if result is None and uid not in op.catalog_behind and written is not None and written[1] == digest:
            return
        op.catalog_written[uid] = (clock(), written[1] if written else "")
        versions: dict[int, RunResult] = {}
        try:
            await asyncio.to_thread(op.catalog.modify, uid, _state(op, kind, body, status, result, versions))
            await asyncio.to_thread(_record_evaluations, op, versions)
        except Exception as exc:
            op.catalog_behind[uid] = result
            meta = body["metadata"]
            log.warning("catalog write for %s/%s deferred: %s", meta["namespace"], meta["name"], exc)
        else:
            op.catalog_behind.pop(uid, None)
            op.catalog_written[uid] = (clock(), digest)
            metrics.CATALOG_WRITES.labels("result" if result is not None else "status").inc()
    metrics.CATALOG_BEHIND.set(len(op.catalog_behind))


def note_change(op: Operator, uid: str, body_of: BodyOf) -> None:
    """The resource changed: its document follows, at most one write per interval. A write that
    has to wait reads the resource when it happens, so the latest state is the one written."""
    if op.catalog is None or uid in op.catalog_pending:
        return
    written = op.catalog_written.get(uid)
    wait = 0.0
    if written is not None:
        wait = max(0.0, written[0] + op.settings.catalog_write_interval_seconds - clock())
    op.catalog_pending[uid] = op.spawn(_write_later(op, uid, body_of, wait))


async def _write_later(op: Operator, uid: str, body_of: BodyOf, wait: float) -> None:
    try:
        if wait > 0:
            await sleep(wait)
    finally:
        op.catalog_pending.pop(uid, None)  # a change from now on schedules the next write
    body = body_of()
    if body is None:  # deleted meanwhile: mark_gone has the last word
        return
    try:
        await sync_catalog(op, body, CustomResource.of(body).status, None)
    except Exception as exc:  # sync_catalog defers its own failures; this is a bug, not an outage
        log.warning("catalog mirror of %s failed: %s", uid, exc)


@dataclass(frozen=True)
class GoneMark:
    """A deletion the catalog still has to be told of."""

    uid: str
    name: str  # namespace/name, for the log
    policy: str
    outputs_kept: bool


def _mark(policy: str, outputs_kept: bool) -> Callable[[dict[str, Any] | None], dict[str, Any] | None]:
    def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
        if current is None:
            return None
        return marked_deleted(current, at=now(), policy=policy, outputs_kept=outputs_kept, by=ORIGIN)

    return change


async def mark_gone(op: Operator, body: dict[str, Any]) -> None:
    """The resource was deleted: its record says so (Retain, or Delete with skip-cleanup: outputs
    kept; Delete: the finalizer removed them and marked it already)."""
    if op.catalog is None or not may_act():
        return
    meta, spec = body["metadata"], body.get("spec") or {}
    policy = str(spec.get("deletionPolicy") or "Retain")
    skipped = (meta.get("annotations") or {}).get(ANNOTATION_SKIP_CLEANUP) == "true"
    kept = policy != "Delete" or skipped
    mark = GoneMark(meta["uid"], f"{meta['namespace']}/{meta['name']}", policy, kept)
    if not await _marked(op, mark):  # the safety net writes it again once the catalog is back
        op.deletions_behind[mark.uid] = mark
        metrics.CATALOG_BEHIND.set(len(op.catalog_behind) + len(op.deletions_behind))


async def _marked(op: Operator, mark: GoneMark) -> bool:
    assert op.catalog is not None
    try:
        await asyncio.to_thread(op.catalog.modify, mark.uid, _mark(mark.policy, mark.outputs_kept))
    except Exception as exc:
        report(
            f"marking {mark.name} deleted in the catalog", exc, "the mark is written again when it is back"
        )
        return False
    metrics.CATALOG_WRITES.labels("deleted").inc()
    return True


async def mark_gone_again(op: Operator) -> int:
    """The safety net: deletions the catalog could not take when they happened, written again (in
    order, stopping at the first that still fails: the catalog is still away). Returns how many
    were written."""
    if op.catalog is None or not may_act():
        return 0
    written = 0
    for uid, mark in list(op.deletions_behind.items()):
        if not await _marked(op, mark):
            break
        op.deletions_behind.pop(uid, None)
        written += 1
        log.info("catalog: %s marked deleted, now that the catalog is back", mark.name)
    metrics.CATALOG_BEHIND.set(len(op.catalog_behind) + len(op.deletions_behind))
    return written


def _ours(doc: dict[str, Any]) -> bool:
    """Records this operator writes: origin operator; before origins, Kubernetes' random (v4)
    uids, not the name-derived (v5) uids of `contentgen run`."""
    if doc.get("origin"):
        return bool(doc["origin"] == ORIGIN)
    try:
        return uuid.UUID(str(doc["_id"])).version == 4
    except ValueError:
        return False


def _exists(op: Operator, doc: dict[str, Any]) -> bool | None:
    kind = KINDS.get(str(doc.get("kind")))
    index = op.indexes.get(f"{kind.plural}_by_uid") if kind is not None else None
    if index is None:
        return None  # not known here: leave it
    return (doc.get("namespace"), doc["_id"]) in index


async def sweep_gone(op: Operator) -> int:
    """The safety net's look at the catalog: records of this operator's resources that are not
    marked deleted, whose resource it does not know, on two looks in a row, are marked deleted
    (their outputs kept: nothing removed them). Returns how many were marked."""
    if op.catalog is None or not may_act():
        return 0
    query: dict[str, Any] = {"deletedAt": None, "status": {"$ne": "Deleted"}}
    if op.settings.watch_namespaces:
        query["namespace"] = {"$in": list(op.settings.watch_namespaces)}
    fields = {"_id": 1, "kind": 1, "namespace": 1, "origin": 1, "spec.deletionPolicy": 1}
    try:
        docs = await asyncio.to_thread(op.catalog.find_raw, query, fields)
    except Exception as exc:
        log.warning("the safety net could not read the catalog: %s", exc)
        return 0
    missing = {d["_id"]: d for d in docs if _ours(d) and _exists(op, d) is False}
    confirmed = [d for uid, d in missing.items() if uid in op.catalog_missing]
    op.catalog_missing = set(missing) - {d["_id"] for d in confirmed}
    marked = 0
    for doc in confirmed:
        policy = str((doc.get("spec") or {}).get("deletionPolicy") or "Retain")
        try:
            await asyncio.to_thread(op.catalog.modify, doc["_id"], _mark(policy, True))
        except Exception as exc:
            log.warning("could not mark %s deleted in the catalog: %s", doc["_id"], exc)
            op.catalog_missing.add(doc["_id"])
            continue
        marked += 1
        metrics.CATALOG_WRITES.labels("gone").inc()
        log.info(
            "catalog: %s/%s (%s) no longer exists; marked deleted",
            doc.get("namespace"),
            doc.get("kind"),
            doc["_id"],
        )
    return marked


async def verdict_refusals(
    op: Operator, uid: str, asked: list[tuple[int, int]]
) -> dict[tuple[int, int], str] | None:
    """Why each (version, evaluation) of `asked` (a LoraTraining's verdicts annotation) cannot be that
    version's verdict ("" where it can), from the resource's catalog record (catalog/verdicts.py):
    the status does not list re-evaluations. None where nothing is asked or the record cannot be
    read (decide.mirror_verdicts then checks only what the status shows)."""
    if not asked or op.catalog is None:
        return None
    try:
        doc = await asyncio.to_thread(op.catalog.get, uid)
    except Exception as exc:  # the catalog away: followed as far as the status says, checked later
        log.warning("catalog: the evaluations of %s could not be read: %s", uid, exc)
        return None
    if doc is None:
        return None
    versions = {int(v.get("version") or 0): v for v in upgrade(doc).get("versions") or []}
    return {(n, e): choosable(versions[n], e) for n, e in asked if n in versions}
