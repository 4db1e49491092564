"""What `contentgen run` adds around the pipeline: it plays the operator's part on a laptop.

It gives the resource a stable uid (metadata.uid, or one derived from kind, namespace and
name, so rerunning a manifest updates the same resource), numbers the run (one more than any
version the store or the catalog knows of, for every kind: a run never writes where another
did), resolves `loraRef` to the latest version trained locally for the same owner, and records
the run in the catalog: Running and its progress while it runs, then its outcome as a new version
(or a failed latest run that leaves the versions as they were).

A run stopped by Ctrl-C or SIGTERM ends its record at once, `Interrupted`, saying where it was and
what it keeps (`record_interrupted`, `interruption`); one that was killed, or whose laptop went
down, leaves its record Running. The next run of the same spec resumes either: the same run, the
same version (its paid requests are adopted from the provider's checkpoint, a training goes on
from its newest stored checkpoint with its scores, its earlier steps not trained again). A run of
another spec is a new run, and the stopped one stays in the history, Interrupted. A lock file per
resource tells a stopped run from one still going on this machine, which is never resumed nor
called interrupted, and which alone can be stopped.
"""

from __future__ import annotations

import copy
import fcntl
import os
import re
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from contentgen.api import (
    KINDS,
    Resource,
    RunFailure,
    RunResult,
    SpecSnapshot,
    format_time,
    now,
)
from contentgen.api.common import CommonSpec
from contentgen.api.inputs import SharedInput, inputs
from contentgen.api.kinds.image_generation import KIND as IMAGE_GENERATION
from contentgen.api.kinds.lora_training import KIND as LORA_TRAINING
from contentgen.api.references import (
    Catalog,
    ImageState,
    LoraState,
    Refusal,
    Resolved,
    UsableVersion,
    lora_key,
    lora_location,
    lora_refs,
    resolve,
)
from contentgen.api.sharing import Grant
from contentgen.api.versions import LEGACY_VERSION, set_version_cost
from contentgen.catalog.document import (
    INTERRUPTED,
    UNFINISHED,
    catalog_document,
    run_history,
    with_progress,
)
from contentgen.catalog.evaluations import record_evaluation
from contentgen.catalog.migrate import upgrade
from contentgen.catalog.resource import ResourceState
from contentgen.errors import InvalidInput
from contentgen.pricing import PriceTable, estimated, settled
from contentgen.store import ObjectStore, keys
from contentgen.store.access import REASON, crossings, first_refusal
from contentgen.store.results import promoted_model, version_result

_VERSION_DIR = re.compile(r"/v(\d+)/result\.json$")
ORIGIN = "local"


def local_uid(kind: str, namespace: str, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"contentgen.io/{kind}/{namespace}/{name}"))


def completed_versions(store: ObjectStore, owner: str, uid: str) -> list[int]:
    """LoRA versions with a stored result (a version without one never finished)."""
    return _finished(store, keys.lora_root(owner, uid))


def image_versions(store: ObjectStore, owner: str, uid: str) -> list[int]:
    """An ImageGeneration's versions with a stored result (a version without one never finished)."""
    return _finished(store, keys.images_root(owner, uid))


def _finished(store: ObjectStore, root: str) -> list[int]:
    found = (_VERSION_DIR.search(info.key) for info in store.list(root))
    return sorted(int(match.group(1)) for match in found if match)


def identity(resource: Resource[Any]) -> tuple[str, str, str]:
    """(name, namespace, uid) of a resource run locally."""
    meta = resource.metadata
    name = meta.name or meta.generate_name or "unnamed"
    namespace = meta.namespace or "default"
    return name, namespace, meta.uid or local_uid(resource.kind, namespace, name)


def stored_versions(store: ObjectStore, catalog_type: str, owner: str, uid: str) -> set[int]:
    """Version numbers with objects in the store (finished or not; the unversioned layout of
    images and transcripts before versions is 1)."""
    stored = [info.key for root in keys.output_roots(catalog_type, owner, uid) for info in store.list(root)]
    return keys.versions_in(catalog_type, owner, uid, stored)


def recorded_versions(record: dict[str, Any] | None) -> set[int]:
    """Version numbers the catalog's record knows of: usable, deleted, and every run's."""
    if record is None:
        return set()
    doc = upgrade(record)
    entries = [*(doc.get("versions") or []), *(doc.get("deletedVersions") or []), *(doc.get("runs") or [])]
    numbers = {int(e.get("version") or 0) for e in entries}
    return numbers | {int((doc.get("latestRun") or {}).get("version") or 0)}


GrantsOf = Callable[[str], "tuple[Grant, ...] | None"]  # a record's grants by uid (None: no record)


def snapshot_for(
    resource: Resource[Any],
    store: ObjectStore,
    record: dict[str, Any] | None = None,
    grants_of: GrantsOf | None = None,
) -> SpecSnapshot:
    """The run's snapshot; `record` is the resource's catalog record, when the catalog is there;
    `grants_of` reads another owner's record's grants from the catalog (docs/sharing.md): a loraRef
    to their LoRA, an address of their output (store/access.py)."""
    kind = KINDS[resource.kind]
    meta = resource.metadata
    name, namespace, uid = identity(resource)
    spec = resource.spec
    used = stored_versions(store, kind.catalog_type, spec.owner, uid) | recorded_versions(record)
    version = max(used, default=0) + 1
    wire = spec.wire()
    found = resolve_locally(wire, namespace, store, grants_of)
    shared = shared_inputs(kind.spec, wire, store, grants_of)
    return SpecSnapshot(
        kind=kind.kind,
        name=name,
        namespace=namespace,
        uid=uid,
        generation=meta.generation or 1,
        version=version,
        spec=wire,
        loras=found.loras,
        lora=found.lora,
        image=found.image,
        shared=shared,
    )


def shared_inputs(
    model: type[CommonSpec], spec: dict[str, Any], store: ObjectStore, grants_of: GrantsOf | None
) -> list[SharedInput]:
    """The other owners' outputs `spec` names by address, each shared with its owner (the catalog's
    grants); Unresolved (InputNotShared) for the first that is not: nothing is recorded."""

    def grants(uid: str) -> tuple[Grant, ...]:
        return (grants_of(uid) or ()) if grants_of is not None else ()

    owner = str(spec.get("owner") or "")
    crossed = crossings(inputs(model, spec), owner, store.place(), grants)
    refused = first_refusal(crossed)
    if refused is not None:
        raise Unresolved(Refusal(REASON, refused.input.field, refused.refusal, "fail", stalled=True))
    return [SharedInput(uid=c.holder.uid, owner=c.holder.owner, access=c.needs) for c in crossed]


class Unresolved(InvalidInput):
    """A reference of the spec that does not resolve here (api/references.py's refusal)."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


def resolve_locally(
    spec: dict[str, Any], namespace: str, store: ObjectStore, grants_of: GrantsOf | None = None
) -> Resolved:
    """What the spec's references resolve to on a laptop (what this store and catalog hold), or
    Unresolved: nothing changes while a laptop run waits."""
    found = resolve(spec, namespace, stored_references(spec, namespace, store, grants_of))
    if isinstance(found, Refusal):
        raise Unresolved(found)
    return found


def stored_references(
    spec: dict[str, Any], namespace: str, store: ObjectStore, grants_of: GrantsOf | None = None
) -> Catalog:
    """What the spec's references name, as this laptop has them: the versions run here (the
    store), another owner's grants (its record in the catalog, docs/sharing.md)."""
    owner = str(spec.get("owner") or "")
    loras: dict[str, LoraState | None] = {}
    for ref in lora_refs(spec):
        where, name = lora_location(ref, namespace)
        theirs = str(ref.get("owner") or owner)
        uid = local_uid(LORA_TRAINING.kind, where, name)
        grants: tuple[Grant, ...] | None = ()
        if theirs != owner:
            grants = grants_of(uid) if grants_of is not None else None
        loras[lora_key(ref)] = stored_lora(store, where, name, theirs, grants)
    image = None
    if isinstance(spec.get("imageRef"), dict):
        image = stored_image(store, namespace, str(spec["imageRef"]["name"]), owner)
    return Catalog(room="laptop", loras=loras, image=image, lineage=keys.lora_of_uri, store=repr(store))


def stored_lora(
    store: ObjectStore,
    namespace: str,
    name: str,
    owner: str,
    grants: tuple[Grant, ...] | None = (),
) -> LoraState | None:
    """The LoraTraining `name` as run here for `owner`: its trained versions (those with a stored
    result), each one's model (a checkpoint a person promoted, or its own), what each is made for
    and what evaluating each needs (a LoraEvaluation); None where none was trained. `grants`: None
    where they are not known (no record in the catalog)."""
    uid = local_uid(LORA_TRAINING.kind, namespace, name)
    versions = completed_versions(store, owner, uid)
    if not versions:
        return None
    uris = tuple((n, _model_uri(store, owner, uid, n)) for n in versions)
    # every version's stored result: what it is made for (a loraRef's model must load it) and
    # what a LoraEvaluation needs
    usable = tuple(u for n in versions if (u := _usable(store, owner, uid, n)))
    return LoraState(
        name=name,
        owner=owner,
        phase="Succeeded",
        latest_version=versions[-1],
        latest_model_uri=uris[-1][1],
        uid=uid,
        model_uris=uris,
        usable=usable,
        namespace=namespace,
        grants=grants or (),
        grants_known=grants is not None,
    )


def _model_uri(store: ObjectStore, owner: str, uid: str, version: int) -> str:
    """A version's model: the checkpoint a person promoted, or its own."""
    own = store.uri(keys.lora_version(owner, uid, version) + "model.safetensors")
    return promoted_model(store, owner, uid, version) or own


def _usable(store: ObjectStore, owner: str, uid: str, version: int) -> UsableVersion | None:
    """What a LoraEvaluation needs of a version (its stored result): None without one."""
    stored = version_result(store, LORA_TRAINING.catalog_type, owner, uid, version)
    trained = stored.lora if stored is not None else None
    if stored is None or trained is None:
        return None
    provider = trained.provider or stored.provider
    return UsableVersion(
        version,
        trained.model_uri,
        provider,
        trained.trigger_word,
        trained.dataset_uri,
        trained.base_model,
        trained.low_noise_model_uri,
    )


def stored_image(store: ObjectStore, namespace: str, name: str, owner: str) -> ImageState | None:
    """The ImageGeneration `name` as run here for `owner`: each generated version's pictures and
    the LoRAs they were made with; None where none was generated."""
    uid = local_uid(IMAGE_GENERATION.kind, namespace, name)
    versions = image_versions(store, owner, uid)
    if not versions:
        return None
    results = [
        (n, r) for n in versions if (r := version_result(store, IMAGE_GENERATION.catalog_type, owner, uid, n))
    ]
    return ImageState(
        name=name,
        owner=owner,
        phase="Succeeded",
        uid=uid,
        latest_version=versions[-1],
        versions=tuple((n, tuple(i.uri for i in r.images or [])) for n, r in results),
        loras=tuple((n, tuple(r.loras or [])) for n, r in results),
    )


def stored_results(
    store: ObjectStore, snapshot: SpecSnapshot, record: dict[str, Any] | None
) -> dict[int, RunResult]:
    """Results in the store of versions the record does not list (made while the catalog was
    another, or lost from a record written before versions): recorded again, nothing is hidden."""
    kind = snapshot.kind_info.catalog_type
    doc = upgrade(record) if record is not None else {}
    known = {int(v["version"]) for v in [*(doc.get("versions") or []), *(doc.get("deletedVersions") or [])]}
    found: dict[int, RunResult] = {}
    for number in sorted(stored_versions(store, kind, snapshot.owner, snapshot.uid) - known):
        if number == snapshot.version:
            continue
        result = version_result(store, kind, snapshot.owner, snapshot.uid, number)
        if result is None and number == LEGACY_VERSION and keys.unversioned_before(kind):
            result = version_result(store, kind, snapshot.owner, snapshot.uid, 0)
        if result is not None:
            found[number] = result
    return found


def run_status(
    snapshot: SpecSnapshot,
    started: datetime,
    previous: dict[str, Any] | None,
    prices: PriceTable,
    *,
    finished: datetime | None = None,
    result: RunResult | None = None,
    failure: RunFailure | None = None,
    baseline_cached: bool = False,
) -> dict[str, Any]:
    """The status the operator would write: Running while the run goes (no `finished`), then its
    outcome (a new version, or the failure). `baseline_cached`: its likeness baseline was stored
    when it started (likeness/plan.estimate_baseline_cached), so its estimate leaves it out."""
    before = upgrade(previous) if previous is not None else {}
    spec = snapshot.priced_spec()
    cost = estimated(snapshot.kind, spec, prices, before.get("cost"), baseline_cached=baseline_cached)
    status: dict[str, Any] = {
        "phase": "Running",
        "progress": 0,
        "stage": "",
        "message": "running locally (contentgen run)",
        "observedGeneration": snapshot.generation,
        "runVersion": snapshot.version,
        "startedAt": format_time(started),
        "cost": cost.wire(),
    }
    if finished is None:
        return status
    status["completedAt"] = format_time(finished)
    if result is not None:
        status.update(phase="Succeeded", progress=100, stage="done", message=result.summary())
        result.merge_outputs(status, started_at=status["startedAt"])
        reason = "Succeeded"
    else:
        assert failure is not None
        status.update(
            phase="Failed", progress=0, stage="", message=f"{failure.reason}: {failure.explained(AGAIN)}"
        )
        failure.merge_outputs(status)
        reason = failure.reason
    status["conditions"] = [
        {"type": "Ready", "status": str(result is not None), "reason": reason, "message": status["message"]}
    ]
    usage = result.usage if result is not None else failure.usage if failure is not None else None
    status["cost"] = settled(cost, usage, prices, started).wire()
    if result is not None:
        set_version_cost(status, snapshot.version, status["cost"].get("actualUsd"))
    return status


def stopped_run(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """The record's latest run when a local run left it unfinished (Pending or Running: it was
    stopped, unless it still goes on; the caller knows, from the lock) or Interrupted."""
    if record is None:
        return None
    doc = upgrade(record)
    run: dict[str, Any] = doc.get("latestRun") or {}
    stopped = run.get("phase") in (*UNFINISHED, INTERRUPTED)
    if doc.get("origin") != ORIGIN or not stopped or not run.get("version"):
        return None
    return run


def resumes(record: dict[str, Any] | None, snapshot: SpecSnapshot) -> dict[str, Any] | None:
    """The stopped run (see stopped_run) that this one resumes: the one that ran the same spec of
    the same generation; None when this run is a new one."""
    run = stopped_run(record)
    if run is None or record is None:
        return None
    doc = upgrade(record)
    same = int(run.get("generation") or 0) == snapshot.generation and doc.get("spec") == snapshot.spec
    return run if same else None


def resumed(snapshot: SpecSnapshot, run: dict[str, Any], started: datetime) -> tuple[SpecSnapshot, datetime]:
    """The snapshot and start of the run `run` (which this one resumes): its version, its start."""
    began = run.get("startedAt")
    start = began if isinstance(began, datetime) else started
    return snapshot.model_copy(update={"version": int(run["version"])}), start


def interrupted(record: dict[str, Any], version: int, at: datetime) -> dict[str, Any]:
    """`record` with its stopped latest run (not `version`, which runs now) ended Interrupted in the
    history; it ended when the record was last written (its last progress). Unchanged otherwise."""
    run = stopped_run(record)
    if run is None or int(run["version"]) == version or run["phase"] == INTERRUPTED:
        return record  # an Interrupted run is in the history already
    doc = copy.deepcopy(upgrade(record))
    ended = doc.get("updatedAt") if isinstance(doc.get("updatedAt"), datetime) else at
    message = (
        f"run {run['version']} stopped before it ended (interrupted, killed, or its machine went down) "
        f"and was not resumed: run {version} runs another spec"
    )
    stopped = {
        **run,
        "phase": INTERRUPTED,
        "completedAt": run.get("completedAt") or ended,
        "error": {"reason": INTERRUPTED, "message": message},
    }
    doc["runs"] = run_history(doc.get("runs") or [], stopped)
    return doc


class RunLock:
    """Held while a `contentgen run` of one resource goes on (an advisory lock on a file in the
    work folder, released by the system when the process ends, killed or not): a run that gets it
    knows that a run the record shows unfinished was stopped, on this machine at least."""

    def __init__(self, folder: Path, uid: str) -> None:
        self.path = folder / f"{uid}.lock"
        self.fd: int | None = None

    def acquire(self) -> bool:
        """Whether this process holds it now (False: another run of the resource goes on)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the file releases the lock
            self.fd = None

    def held(self) -> bool:
        """Whether a run of the resource goes on on this machine (a process holds the lock)."""
        if not self.acquire():
            return True
        self.release()
        return False


def record_start(
    catalog: Any,
    snapshot: SpecSnapshot,
    started: datetime,
    prices: PriceTable,
    store: ObjectStore | None = None,
    *,
    alone: bool = False,
    baseline_cached: bool = False,
) -> None:
    """Record that the run started: its latest run Running, its earlier versions as they were (and
    versions the store holds that the record lost). `alone`: no other run of the resource goes on,
    so an unfinished latest run of another version was stopped, and stays in the history,
    Interrupted."""

    def change(previous: dict[str, Any] | None) -> dict[str, Any]:
        if alone and previous is not None:
            previous = interrupted(previous, snapshot.version, started)
        status = run_status(snapshot, started, previous, prices, baseline_cached=baseline_cached)
        found = stored_results(store, snapshot, previous) if store is not None else {}
        created = (previous or {}).get("createdAt") or started
        state = ResourceState.of_snapshot(snapshot, status, created, found)
        return catalog_document(state, now=started, origin=ORIGIN, previous=previous, revive=True)

    catalog.modify(snapshot.uid, change)


# How a failed run on a laptop is run again: `contentgen run` resumes the version it stopped in.
AGAIN = "run the same `contentgen run` again"


def record_run(
    catalog: Any,
    snapshot: SpecSnapshot,
    started: datetime,
    finished: datetime,
    result: RunResult | None = None,
    failure: RunFailure | None = None,
    prices: PriceTable | None = None,
    store: ObjectStore | None = None,
    *,
    baseline_cached: bool = False,
) -> None:
    """Write the run's outcome into the resource's catalog document, as the operator would after
    the run: a new version, or a failed latest run beside the versions."""
    table = prices or PriceTable()

    def change(previous: dict[str, Any] | None) -> dict[str, Any]:
        status = run_status(
            snapshot,
            started,
            previous,
            table,
            finished=finished,
            result=result,
            failure=failure,
            baseline_cached=baseline_cached,
        )
        found = stored_results(store, snapshot, previous) if store is not None else {}
        if result is not None:
            found[snapshot.version] = result
        created = (previous or {}).get("createdAt") or started
        state = ResourceState.of_snapshot(snapshot, status, created, found)
        return catalog_document(state, now=finished, origin=ORIGIN, previous=previous, revive=True)

    catalog.modify(snapshot.uid, change)
    if result is not None and result.evaluation_record is not None and snapshot.lora is not None:
        # a LoraEvaluation: its evaluation joins the LoRA version's likeness history, as the
        # operator records it in a cluster
        record_evaluation(catalog, snapshot.lora.uid, result.evaluation_record, now=finished)


class CatalogProgress:
    """The run's live progress in the catalog (its latest run's phase, percent and stage): a new
    stage at once (a reader sees `train` while it trains), its percent at most one write every
    `interval` seconds; the final record (record_run) is written regardless. A catalog that stops
    answering ends the live progress (once, with a warning), not the run."""

    def __init__(
        self,
        catalog: Any,
        snapshot: SpecSnapshot,
        interval: float = 1.0,
        clock: Callable[[], float] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.catalog, self.snapshot, self.interval = catalog, snapshot, interval
        self.clock = clock or time.monotonic
        self.warn = warn or (lambda text: print(f"contentgen run: {text}", file=sys.stderr))
        self.last = float("-inf")
        self.stage = ""  # the stage last written
        self.off = False

    def __call__(self, stage: str, percent: float, message: str = "") -> None:
        now_ = self.clock()
        if self.off or (stage == self.stage and now_ - self.last < self.interval):
            return
        self.last, self.stage = now_, stage
        version, value = self.snapshot.version, int(percent)

        def change(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            if doc is None:
                return None
            return with_progress(
                doc, version=version, phase="Running", progress=value, stage=stage, now=now()
            )

        try:
            self.catalog.modify(self.snapshot.uid, change)
        except Exception as exc:
            self.off = True
            self.warn(f"live progress is no longer written to the catalog: {exc}")
