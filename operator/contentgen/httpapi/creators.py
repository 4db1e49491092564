"""Making what a create asks for (manifests.py says what), in one of two ways:

- in a cluster (KubeCreator): the custom resource is created through the Kubernetes API as the
  API's own ServiceAccount, which may create, get and delete the kinds and nothing else;
  the operator runs it like any other. The caller never gets Kubernetes rights: which owner it may
  name is the API's check (identity.py), which owners a namespace allows is the admission
  policy's (and the operator's). Cancel and delete delete the resource (with its uid as a
  precondition, so a newer resource of the same name is never touched): the operator stops its
  Job and the provider's work, and keeps or removes the outputs by its deletionPolicy.
- on a laptop (LocalCreator): the run happens in this process, as `contentgen run` does it (a
  stable uid from kind, namespace and name; the record written before it starts, then its
  progress, then its outcome), one run at a time, in the order asked. From its create to its end
  a run holds the resource's RunLock, the lock `contentgen run` takes: a `contentgen run` of the
  same resource meanwhile sees it going on (and never resumes it as stopped), and a create while
  a `contentgen run` of it goes on is refused (Conflict) rather than run beside it.

Both are idempotent by name: the same name with the same spec answers with what exists; with
another spec, Conflict.
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol

from contentgen.api import KINDS, Resource, now
from contentgen.api.kinds.lora_training import KIND as LORA_TRAINING
from contentgen.api.lora import KEEP_BEST, PROMOTED_ANNOTATION, STOP_ANNOTATION, VERDICTS_ANNOTATION
from contentgen.api.providers import OFFLINE
from contentgen.api.sharing import Grant, grants_of
from contentgen.api.words import counted
from contentgen.catalog import Catalog, ResourceState, catalog_document
from contentgen.errors import ContentgenError, InvalidInput, PermanentError
from contentgen.store import ObjectStore

from .kinds import http_kind
from .kube import Kube, KubeError
from .manifests import UNRESOLVED, FieldProblem, Invalid, Wanted, check, normalized
from .request_rules import code_of

PROVIDER_UNAVAILABLE = "provider_unavailable"

log = logging.getLogger(__name__)


class Conflict(Exception):
    """The name is taken by something else (409)."""


class Refused(Exception):
    """The cluster refused the create: its RBAC or its admission policy (403); the message says."""


class StoreFailed(Exception):
    """A laptop's store could not be opened or read while a create resolved what it runs (its next
    version, a loraRef, an imageRef): the API's 502 store_error, nothing created."""


def store_failure(exc: BaseException) -> str:
    """A store failure in one line: its reason (StoreAccessDenied, StoreUnavailable) and what it said."""
    if isinstance(exc, ContentgenError):
        return f"{exc.reason}: {exc}"
    if isinstance(exc, OSError):
        reason = "StoreAccessDenied" if isinstance(exc, PermissionError) else "StoreUnavailable"
        return f"{reason}: the store cannot be read ({exc.strerror or exc})"
    return f"StoreUnavailable: {exc}"


class Gone(Exception):
    """The resource is not there (any more) to act on (404/409, the message says)."""


@dataclass(frozen=True)
class Made:
    uid: str
    kind: str
    name: str
    namespace: str
    owner: str
    created: bool  # False: it existed already with this spec (an idempotent repeat)
    manifest: dict[str, Any]

    def wire(self) -> dict[str, Any]:
        return {
            "jobId": self.uid,
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "owner": self.owner,
            "created": self.created,
            "record": f"/api/jobs/{self.uid}",
            "stream": f"/api/stream/job/{self.uid}",
            "manifest": self.manifest,
        }


@dataclass(frozen=True)
class Continued:
    """What asking a LoRA training to go on from a version did."""

    message: str
    changed: bool  # False: the spec asked for it already (a cluster's idempotent repeat)
    resource: Made | None = None  # on a laptop: the run queued here


class Creator(Protocol):
    local: bool  # whether a run's local allowances apply (a local file as source)
    offline: bool  # whether every run it makes is the offline provider's, whatever the spec names

    def create(self, wanted: Wanted) -> Made: ...

    def cancel(self, doc: dict[str, Any], by: str) -> str: ...

    def delete(self, doc: dict[str, Any], by: str) -> str: ...

    def stop(self, doc: dict[str, Any], by: str) -> str: ...

    def continue_training(self, doc: dict[str, Any], spec: dict[str, Any], *, by: str) -> Continued: ...


def _same(kind: str, existing: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """The top-level spec fields that differ (defaults filled in on both sides)."""
    a, b = normalized(kind, existing), normalized(kind, wanted)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def _taken(wanted: Wanted, differs: list[str]) -> Conflict:
    what = f"{wanted.kind} {wanted.namespace}/{wanted.name}"
    if differs:
        fields = ", ".join(f"spec.{f}" for f in differs)
        return Conflict(
            f"metadata.name: {what} exists with another spec ({fields} differ): choose another name, "
            "or delete it first"
        )
    return Conflict(f"metadata.name: {what} exists already and is not yours to reuse: choose another name")


def _reusable(wanted: Wanted, owner: object, spec: dict[str, Any]) -> None:
    """A resource asked for again is the one made only where its owner and spec are the same
    (Conflict otherwise, naming the fields that differ)."""
    if owner != wanted.owner:
        raise _taken(wanted, [])
    differs = _same(wanted.kind, spec, wanted.spec)
    if differs:
        raise _taken(wanted, differs)


def _repeated(wanted: Wanted, uid: str, existing: dict[str, Any]) -> Made:
    """A local resource asked for again: the one made."""
    _reusable(wanted, existing.get("owner"), existing.get("spec") or {})
    return Made(uid, wanted.kind, wanted.name, wanted.namespace, wanted.owner, False, wanted.manifest())


def _validated(asked: Wanted, wanted: Wanted) -> Resource[Any]:
    """The resource as asked, then as it runs (offline's spec), validated as a document is
    (Invalid, each problem named by its field)."""
    from contentgen.api.manifests import Document
    from contentgen.api.validation import validate_document

    outcome = validate_document(Document("request", 1, asked.manifest()), local=True)
    if outcome.resource is not None and asked is not wanted:
        outcome = validate_document(Document("request", 1, wanted.manifest()), local=True)
    if outcome.resource is None:
        problems = [FieldProblem(p.path, p.reason) for p in outcome.problems]
        raise Invalid(problems, code_of([p.message for p in problems]))
    resource: Resource[Any] = outcome.resource
    return resource


# --- in a cluster ---------------------------------------------------------------------------------


class KubeCreator:
    local = False
    offline = False

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    def create(self, wanted: Wanted) -> Made:
        manifest = wanted.manifest()
        plural = KINDS[wanted.kind].plural
        try:
            made = self.kube.create(plural, wanted.namespace, manifest)
            return self._made(made, created=True)
        except KubeError as exc:
            if exc.status != 409 or exc.reason != "AlreadyExists":
                raise _translated(exc, wanted) from None
        try:
            existing = self.kube.get(plural, wanted.namespace, wanted.name)
        except KubeError as exc:
            raise _translated(exc, wanted) from None
        spec = existing.get("spec") or {}
        _reusable(wanted, spec.get("owner"), spec)
        return self._made(existing, created=False)

    @staticmethod
    def _made(obj: dict[str, Any], *, created: bool) -> Made:
        meta = obj.get("metadata") or {}
        manifest = {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
            "spec": obj.get("spec") or {},
        }
        return Made(
            str(meta.get("uid")),
            str(obj.get("kind")),
            str(meta.get("name")),
            str(meta.get("namespace")),
            str((obj.get("spec") or {}).get("owner", "")),
            created,
            manifest,
        )

    def _delete(self, doc: dict[str, Any]) -> None:
        plural = KINDS[str(doc["kind"])].plural
        try:  # with its uid as a precondition: never a newer resource of the same name
            self.kube.delete(plural, str(doc["namespace"]), str(doc["name"]), uid=str(doc["_id"]))
        except KubeError as exc:
            if exc.status == 404 or (exc.status == 409 and "precondition" in exc.message.lower()):
                raise Gone(
                    f"the {doc['kind']} {doc['namespace']}/{doc['name']} of this record is gone already "
                    "(its record shows what it made)"
                ) from None
            raise _translated(exc, None) from None

    def promote(
        self, doc: dict[str, Any], number: int, step: int, *, by: str, at: str, note: str = ""
    ) -> str:
        """Make checkpoint `step` version `number`'s model: the LoraTraining's annotation
        PROMOTED_ANNOTATION gets the entry {"step", "by", "at", "note"} for the version, merged with
        the others it has, in one merge patch on the resourceVersion read (read and merged again
        when another writer came first). The operator follows it (status.versions[].promotion)."""
        entry = {"step": step, "by": by, "at": at, **({"note": note} if note else {})}
        where = self._annotate_version(doc, PROMOTED_ANNOTATION, "step", number, entry)
        return (
            f"annotated {where}: {PROMOTED_ANNOTATION} asks for checkpoint {step} as version {number}'s "
            "model; the operator follows it (status.versions[].promotion, a CheckpointPromoted Event; "
            "status.promotionProblem says why where it cannot)"
        )

    def choose_verdict(
        self, doc: dict[str, Any], number: int, evaluation: int, *, by: str, at: str, note: str = ""
    ) -> str:
        """Make evaluation `evaluation` version `number`'s verdict: the LoraTraining's annotation
        VERDICTS_ANNOTATION gets the entry {"evaluation", "by", "at", "note"} for the version, merged
        as promote merges its own. The operator follows it (status.versions[].verdictChoice)."""
        entry = {"evaluation": evaluation, "by": by, "at": at, **({"note": note} if note else {})}
        where = self._annotate_version(doc, VERDICTS_ANNOTATION, "evaluation", number, entry)
        return (
            f"annotated {where}: {VERDICTS_ANNOTATION} asks for evaluation e{evaluation} as version "
            f"{number}'s verdict; the operator follows it (status.versions[].verdictChoice, a VerdictChosen "
            "Event; status.verdictProblem says why where it cannot)"
        )

    def _annotate_version(
        self, doc: dict[str, Any], annotation: str, unit: str, number: int, entry: dict[str, Any]
    ) -> str:
        """The record's LoraTraining's annotation `annotation` (a JSON object of version to `unit`)
        with `entry` as version `number`'s, the other versions' kept, in one merge patch on the
        resourceVersion read (read and merged again when another writer came first); where it is."""
        at = _lora_at(doc)
        where = f"LoraTraining {doc['namespace']}/{doc['name']}"
        for _ in range(PATCH_ATTEMPTS):
            meta = self._lora_metadata(at, where, doc["_id"])
            asked = _entries_asked(meta, where, doc, annotation, unit)
            patch = {
                "metadata": {
                    "resourceVersion": meta.get("resourceVersion"),
                    "annotations": {annotation: _with_entry(asked, number, entry)},
                }
            }
            try:
                self.kube.merge_patch(*at, patch)
            except KubeError as exc:
                if exc.status == 409:  # changed since it was read: read it and merge again
                    continue
                raise _lora_refusal(exc, where) from None
            return where
        raise Conflict(f"{where} changed {PATCH_ATTEMPTS} times while it was annotated: ask again")

    def stop(self, doc: dict[str, Any], by: str) -> str:
        """Stop the LoraTraining's run and keep its best checkpoint so far: its annotation
        STOP_ANNOTATION=KEEP_BEST, which the operator hands to the worker (it stops at its next step
        boundary) and removes once the run has ended."""
        at = _lora_at(doc)
        where = f"LoraTraining {doc['namespace']}/{doc['name']}"
        for _ in range(PATCH_ATTEMPTS):
            meta = self._lora_metadata(at, where, doc["_id"])
            if (meta.get("annotations") or {}).get(STOP_ANNOTATION) == KEEP_BEST:
                return (
                    f"{where} is annotated {STOP_ANNOTATION}={KEEP_BEST} already: it stops at its next step"
                )
            patch = {
                "metadata": {
                    "resourceVersion": meta.get("resourceVersion"),
                    "annotations": {STOP_ANNOTATION: KEEP_BEST},
                }
            }
            try:
                self.kube.merge_patch(*at, patch)
            except KubeError as exc:
                if exc.status == 409:
                    continue
                raise _lora_refusal(exc, where) from None
            return (
                f"annotated {where}: {STOP_ANNOTATION}={KEEP_BEST}; its run stops at its next step "
                "boundary and keeps its best checkpoint so far (the operator removes the annotation once the "
                "run ended)"
            )
        raise Conflict(f"{where} changed {PATCH_ATTEMPTS} times while it was annotated: ask again")

    def continue_training(self, doc: dict[str, Any], spec: dict[str, Any], *, by: str) -> Continued:
        """Set the LoraTraining's spec.training.continueFrom and steps to `spec`'s (a merge patch on
        the resourceVersion read; continueFrom's other fields removed where `spec` has none): a new
        generation, which the operator trains as a new version. Unchanged where it asks for it
        already."""
        at = _lora_at(doc)
        where = f"LoraTraining {doc['namespace']}/{doc['name']}"
        wanted = spec.get("training") or {}
        going_on, steps = dict(wanted.get("continueFrom") or {}), wanted.get("steps")
        for _ in range(PATCH_ATTEMPTS):
            live = self._lora(at, where, doc["_id"])
            training = (live.get("spec") or {}).get("training") or {}
            generation = (live.get("metadata") or {}).get("generation")
            if training.get("continueFrom") == going_on and training.get("steps") == steps:
                return Continued(
                    f"{where} asks for this already (generation {generation}): nothing changed; the operator "
                    "trains it, or has (its record's runs say which)",
                    changed=False,
                )
            removed = {k: None for k in training.get("continueFrom") or {} if k not in going_on}
            patch = {
                "metadata": {"resourceVersion": (live.get("metadata") or {}).get("resourceVersion")},
                "spec": {"training": {"continueFrom": {**removed, **going_on}, "steps": steps}},
            }
            try:
                made = self.kube.merge_patch(*at, patch)
            except KubeError as exc:
                if exc.status == 409:
                    continue
                if exc.status == 404:
                    raise _lora_refusal(exc, where) from None
                raise _translated(exc, None) from None
            now_at = ((made or {}).get("metadata") or {}).get("generation")
            return Continued(
                f"patched {where}: spec.training.continueFrom {json.dumps(going_on)}, steps {steps} "
                f"(generation {now_at}); the operator trains it as a new version",
                changed=True,
            )
        raise Conflict(f"{where} changed {PATCH_ATTEMPTS} times while it was patched: ask again")

    def _lora(self, at: tuple[str, str, str], where: str, uid: Any) -> dict[str, Any]:
        """The record's LoraTraining as it is now; Gone where it is no more."""
        try:
            live: dict[str, Any] = self.kube.get(*at)
        except KubeError as exc:
            raise _lora_refusal(exc, where) from None
        if (live.get("metadata") or {}).get("uid") != uid:
            raise Gone(f"the {where} of this record is gone: the one of that name now is another resource")
        return live

    def _lora_metadata(self, at: tuple[str, str, str], where: str, uid: Any) -> dict[str, Any]:
        """The metadata of the record's LoraTraining as it is now; Gone where it is no more."""
        meta: dict[str, Any] = self._lora(at, where, uid).get("metadata") or {}
        return meta

    def cancel(self, doc: dict[str, Any], by: str) -> str:
        self._delete(doc)
        return (
            f"deleted {doc['kind']} {doc['namespace']}/{doc['name']}: the operator stops its Job and cancels "
            "its provider requests where the provider allows; what earlier runs made stays (deletionPolicy "
            f"{(doc.get('spec') or {}).get('deletionPolicy', 'Retain')})"
        )

    def delete(self, doc: dict[str, Any], by: str) -> str:
        self._delete(doc)
        policy = (doc.get("spec") or {}).get("deletionPolicy", "Retain")
        kept = "its outputs are kept (Retain)" if policy != "Delete" else "its outputs are removed (Delete)"
        return f"deleted {doc['kind']} {doc['namespace']}/{doc['name']}; {kept}"


PATCH_ATTEMPTS = 5


def _lora_at(doc: dict[str, Any]) -> tuple[str, str, str]:
    """Where a record's LoraTraining is: its plural, namespace and name."""
    return LORA_TRAINING.plural, str(doc["namespace"]), str(doc["name"])


def _version_key(key: str) -> int:
    """An annotation entry's version (-1 where the key is not a number: kept as it is)."""
    try:
        return int(key)
    except ValueError:
        return -1


def _lora_refusal(exc: KubeError, where: str) -> Exception:
    """The API server's refusal of a read or write of a record's LoraTraining."""
    if exc.status == 404:
        return Gone(f"the {where} of this record is gone (its record shows what it made)")
    return _translated(exc, None)


def _entries_asked(
    meta: dict[str, Any], where: str, doc: dict[str, Any], annotation: str, unit: str
) -> dict[str, Any]:
    """What a LoraTraining's annotation `annotation` asks for (version to entry); Conflict where the
    annotation is not a JSON object."""
    current = (meta.get("annotations") or {}).get(annotation) or ""
    try:
        asked = json.loads(current) if current else {}
    except ValueError:
        asked = None
    if not isinstance(asked, dict):
        raise Conflict(
            f"metadata.annotations: {annotation} on {where} is {current[:80]!r}, not a "
            f"JSON object of version to {unit}: fix it, or remove it (kubectl annotate -n "
            f"{doc['namespace']} loratraining/{doc['name']} {annotation}-), then ask again"
        )
    return asked


def _with_entry(asked: dict[str, Any], number: int, entry: dict[str, Any]) -> str:
    """The annotation with `entry` as version `number`'s, in version order."""
    merged = {k: v for k, v in asked.items() if _version_key(k) != number}
    merged[str(number)] = entry
    merged = dict(sorted(merged.items(), key=lambda kv: (_version_key(kv[0]), kv[0])))
    return json.dumps(merged, separators=(", ", ": "))


def _translated(exc: KubeError, wanted: Wanted | None) -> Exception:
    """The API server's refusal as this API's error: admission's field errors as Invalid."""
    if exc.status == 422:
        # The server names no field as "<nil>" (e.g. "some validation rules were not checked
        # because the object was invalid"): a note on the others, dropped when there are others.
        problems = [
            FieldProblem(
                "" if c.get("field") in (None, "<nil>") else str(c["field"]), str(c.get("message", ""))
            )
            for c in exc.causes()
        ]
        named = [p for p in problems if p.field]
        if named or problems:
            return Invalid(named or problems)
        return Invalid([FieldProblem("", exc.message)])
    if exc.status == 403:
        return Refused(exc.message)
    if exc.status == 404 and wanted is not None:
        return Gone(f"metadata.namespace: there is no namespace {wanted.namespace!r} in the cluster")
    if exc.status == 409:
        return Conflict(exc.message)
    return Refused(f"the Kubernetes API answered {exc.status}: {exc.message}")


# --- on a laptop ----------------------------------------------------------------------------------


class RunCancelled(PermanentError):
    """A local run stopped on request, before any provider work was paid for."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="Cancelled")


@dataclass
class _Run:
    snapshot: Any
    provider: str
    cancel: threading.Event
    lock: Any  # the resource's RunLock, held from the create to the run's end
    started: bool = False
    billed: Callable[[], bool] = lambda: False


class LocalCreator:
    """Local runs, one at a time in a worker thread; see the module docstring."""

    local = True

    def __init__(
        self,
        catalog: Catalog,
        store: Callable[[], ObjectStore],
        *,
        offline: bool = False,
        settings: Any = None,
    ) -> None:
        from contentgen.pipeline.settings import PipelineSettings

        self.catalog, self.store, self.offline = catalog, store, offline
        self.settings = settings or PipelineSettings()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="local-runs", daemon=True)
        self._thread.start()

    def _grants_of(self, uid: str) -> tuple[Grant, ...] | None:
        """Another owner's record's grants (docs/sharing.md), by its uid; None without one."""
        doc = self.catalog.get(uid)
        return grants_of(doc) if doc is not None else None

    def close(self, timeout: float = 30.0) -> None:
        """Stop after the run under way (queued ones are cancelled)."""
        with self._lock:
            for run in self._runs.values():
                run.cancel.set()
        self._queue.put(None)
        self._thread.join(timeout)

    def busy(self) -> bool:
        with self._lock:
            return bool(self._runs)

    def create(self, wanted: Wanted) -> Made:
        from contentgen.api.run import offline_spec
        from contentgen.pipeline.local_run import local_uid

        asked = wanted
        if self.offline:  # what runs, and what a repeat is compared with
            wanted = replace(wanted, spec=offline_spec(wanted.kind, wanted.spec))
        uid = local_uid(wanted.kind, wanted.namespace, wanted.name)
        existing = self.catalog.get(uid)
        if existing is not None and not existing.get("deleted"):
            return _repeated(wanted, uid, existing)
        snapshot = self._snapshot(_validated(asked, wanted), existing)
        queued = self._queued(uid, wanted, snapshot)
        return Made(uid, wanted.kind, wanted.name, wanted.namespace, wanted.owner, queued, wanted.manifest())

    def _snapshot(self, resource: Resource[Any], existing: dict[str, Any] | None) -> Any:
        """The run's snapshot, its references resolved (Invalid where one does not, StoreFailed
        where the store cannot say), refused where its provider does not run here."""
        from contentgen.api.run import offline_spec
        from contentgen.pipeline.local_run import Unresolved, snapshot_for

        named = getattr(resource.spec, "provider", None)
        if not self.offline and named is not None:
            _runs_here(resource.kind, str(named))
        try:
            snapshot = snapshot_for(resource, self.store(), existing, self._grants_of)
        except Unresolved as exc:  # a reference that does not resolve: the refusal names its field
            raise Invalid([FieldProblem(exc.refusal.field, str(exc))], UNRESOLVED) from None
        except (ValueError, InvalidInput) as exc:
            field = http_kind(resource.kind).references
            raise Invalid([FieldProblem(field, str(exc))], UNRESOLVED) from None
        except (ContentgenError, OSError) as exc:  # the store itself: unusable, refusing, away
            raise StoreFailed(f"{store_failure(exc)}; nothing was created") from None
        if not self.offline and named is None:  # a LoraEvaluation's: its LoRA version's
            _runs_here(resource.kind, snapshot.provider)
        if self.offline:  # recorded as `contentgen run --offline` records it, defaults filled in
            ran = offline_spec(snapshot.kind, snapshot.spec)
            snapshot.spec.clear()
            snapshot.spec.update(ran)
        return snapshot

    def _queued(self, uid: str, wanted: Wanted, snapshot: Any) -> bool:
        """The run queued behind the one under way, its record written Pending; False where the
        same resource was asked for at once and the first one stands (Conflict where a `contentgen
        run` of it goes on on this machine)."""
        from contentgen.pipeline.local_run import RunLock

        provider = OFFLINE.name if self.offline else snapshot.provider
        with self._lock:
            if uid in self._runs:  # asked twice at once: the first one stands
                return False
            lock = RunLock(self.settings.work_dir, uid)
            if not lock.acquire():
                raise Conflict(
                    f"metadata.name: a `contentgen run` of {wanted.kind} {wanted.namespace}/{wanted.name} "
                    f"goes on on this machine (it holds {lock.path}): wait for it to end, then ask again"
                )
            self._runs[uid] = _Run(snapshot, provider, threading.Event(), lock)
        try:
            self._record_queued(snapshot)
        except BaseException:
            with self._lock:
                self._runs.pop(uid, None)
            lock.release()
            raise
        self._queue.put(uid)
        return True

    def _record_queued(self, snapshot: Any) -> None:
        at = now()
        message = "waiting for the local run before it (one at a time on this machine)"
        status = {
            "phase": "Pending",
            "message": message,
            "observedGeneration": snapshot.generation,
            "runVersion": snapshot.version,
            "conditions": [{"type": "Ready", "status": "False", "reason": "Queued", "message": message}],
        }

        def change(previous: dict[str, Any] | None) -> dict[str, Any]:
            state = ResourceState.of_snapshot(snapshot, status, (previous or {}).get("createdAt") or at)
            return catalog_document(state, now=at, origin="local", previous=previous, revive=True)

        self.catalog.modify(snapshot.uid, change)

    def _work(self) -> None:
        while True:
            uid = self._queue.get()
            if uid is None:
                return
            with self._lock:
                run = self._runs.get(uid)
            if run is None:
                continue
            try:
                self._run(run)
            except Exception:  # the record says what happened; the worker goes on
                log.exception("local run %s", uid)
            finally:
                with self._lock:
                    self._runs.pop(uid, None)
                run.lock.release()

    def _run(self, run: _Run) -> None:
        from contentgen.pipeline.context import RunContext
        from contentgen.pipeline.likeness.plan import estimate_baseline_cached
        from contentgen.pipeline.live import LocalLive
        from contentgen.pipeline.local_run import CatalogProgress, record_run, record_start
        from contentgen.pipeline.runner import execute, failure

        snapshot, store, settings = run.snapshot, self.store(), self.settings
        started = now()
        cached = estimate_baseline_cached(store, snapshot.kind, snapshot.priced_spec())
        record = partial(record_run, prices=settings.prices, store=store, baseline_cached=cached)
        if run.cancel.is_set():
            cancelled = failure(RunCancelled("cancelled before it started"))
            record(self.catalog, snapshot, started, now(), failure=cancelled)
            return
        record_start(self.catalog, snapshot, started, settings.prices, store, baseline_cached=cached)
        work_dir = settings.work_dir / snapshot.uid
        progress = CatalogProgress(self.catalog, snapshot, warn=lambda text: log.warning("%s", text))
        ctx: Any = None
        last_stage = [""]

        def report(stage: str, percent: float, message: str = "") -> None:
            # Cancelled at a stage's start, and only while nothing was paid for: a request sent to
            # a provider is finished and its output kept.
            if run.cancel.is_set() and stage != last_stage[0] and ctx is not None and ctx.usage == []:
                raise RunCancelled(f"cancelled before the {stage} stage; nothing was sent to a provider")
            last_stage[0] = stage
            progress(stage, percent, message)

        # a training's live channel, as `contentgen run`'s: its reports in the record, its stop file
        live = LocalLive(self.catalog, snapshot, settings.work_dir)
        ctx = RunContext(
            snapshot, store, settings, work_dir, report, local=True, provider=run.provider, live=live
        )
        run.billed = lambda: ctx.usage != []
        run.started = True
        try:
            result = execute(ctx)
        except ContentgenError as exc:
            failed = failure(exc, ctx.priced_usage())
            record(self.catalog, snapshot, started, now(), failure=failed)
        else:
            record(self.catalog, snapshot, started, now(), result=result)
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)

    def cancel(self, doc: dict[str, Any], by: str) -> str:
        with self._lock:
            run = self._runs.get(doc["_id"])
            if run is None:
                phase = (doc.get("latestRun") or {}).get("phase")
                raise Gone(f"its latest run is {phase}: there is nothing to cancel")
            if run.started and run.billed():
                raise Conflict(
                    "its provider request is under way: a local run is not stopped once a provider was "
                    "paid (its output is kept); it ends by itself"
                )
            run.cancel.set()
        return "cancelled: the run stops at its next stage (before any provider request)"

    def stop(self, doc: dict[str, Any], by: str) -> str:
        """Ask the laptop's run of the record's latest version to stop at its next step and keep its
        best checkpoint so far: its stop file (pipeline/training_controls.py), which a run of this
        process and a `contentgen run` of it in another terminal both read."""
        from contentgen.pipeline.local_run import RunLock
        from contentgen.pipeline.training_controls import NotNow, ask_local_stop, stop_plan, unheld

        if doc.get("origin") != "local":
            raise Conflict(
                f"{doc['namespace']}/{doc['name']} runs in a cluster: its LoraTraining's annotation "
                f"{STOP_ANNOTATION}={KEEP_BEST} stops it"
            )
        version = int((doc.get("latestRun") or {}).get("version") or 0)
        if not RunLock(self.settings.work_dir, str(doc["_id"])).held():  # killed: nothing reads a stop
            raise NotNow(unheld(doc, stop_plan(doc)))
        ask_local_stop(self.settings.work_dir, str(doc["_id"]), version, by=by, at=now())
        with self._lock:
            here = doc["_id"] in self._runs
        where = "this API's local run" if here else "its `contentgen run` on this machine"
        return f"asked v{version}'s training ({where}) to stop at its next step, keeping its best checkpoint"

    def continue_training(self, doc: dict[str, Any], spec: dict[str, Any], *, by: str) -> Continued:
        """The resource of a record this laptop ran, with `spec` (its training going on from a
        version), run here as its next version, as `contentgen run` of the changed manifest runs it
        (Invalid, Conflict, StoreFailed as a create's)."""
        from contentgen.api.run import offline_spec

        if doc.get("origin") != "local":
            raise Conflict(
                f"{doc['namespace']}/{doc['name']} runs in a cluster, where its LoraTraining's spec says "
                "what it trains: patch spec.training.continueFrom and steps there"
            )
        asked = check(Wanted(str(doc["kind"]), str(doc["name"]), str(doc["namespace"]), spec), local=True)
        wanted = replace(asked, spec=offline_spec(asked.kind, asked.spec)) if self.offline else asked
        uid = str(doc["_id"])
        with self._lock:
            if uid in self._runs:
                raise Conflict(
                    f"a run of {doc['namespace']}/{doc['name']} is under way or queued here: wait for it"
                )
        snapshot = self._snapshot(_validated(asked, wanted), self.catalog.get(uid))
        queued = self._queued(uid, wanted, snapshot)
        made = Made(uid, wanted.kind, wanted.name, wanted.namespace, wanted.owner, queued, wanted.manifest())
        going_on = (wanted.spec.get("training") or {}).get("continueFrom") or {}
        return Continued(
            f"started v{snapshot.version} of {wanted.namespace}/{wanted.name} here: it trains on from "
            f"v{going_on.get('version')} (a local run, one at a time on this machine)",
            changed=True,
            resource=made,
        )

    def delete(self, doc: dict[str, Any], by: str) -> str:
        from contentgen.catalog import pruning

        with self._lock:
            if doc["_id"] in self._runs:
                raise Conflict("its run is under way or queued: cancel it first, then delete")
        policy = (doc.get("spec") or {}).get("deletionPolicy", "Retain")
        if policy == "Delete":
            store = self.store()
            plan = pruning.plan_record(self.catalog, store, doc)
            removed = pruning.erase(store, plan)
            pruning.record(self.catalog, plan, when=now(), by=by)
            gone = counted(removed, "stored object")
            return f"deleted {doc['namespace']}/{doc['name']}: {gone} removed (Delete)"
        self.catalog.mark_deleted(doc["_id"], now(), policy=policy, outputs_kept=True, by=by)
        return f"deleted {doc['namespace']}/{doc['name']}: its outputs are kept (Retain)"


def _runs_here(kind: str, provider: str) -> None:
    """Invalid (provider_unavailable) unless this process's providers run `provider` for `kind`
    (providers/__init__.py: what `contentgen run` runs)."""
    have = http_kind(kind).runs_here()
    if provider not in have:
        message = (
            f"provider {provider} does not run on this machine (a local run here runs {kind} with "
            f"{' or '.join(have)}): choose one of those, or create it in a cluster with that provider"
        )
        raise Invalid([FieldProblem("spec.provider", message)], PROVIDER_UNAVAILABLE)


def make(creator: Creator, wanted: Wanted) -> Made:
    """Validate `wanted` (with the creator's allowances), then create it."""
    return creator.create(check(wanted, local=creator.local))
