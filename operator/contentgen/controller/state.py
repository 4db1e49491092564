"""What the operator's handlers share for the life of one operator process (kept in kopf's
per-operator memo, so two operators in one process do not share it). Per resource it keeps
only small things: its place in a queue, its last status write."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from contentgen.api import RunResult

from .budget import Spender
from .job_admission import Backoff, NamespaceQueue
from .kube import Kube
from .run_credentials import RunCredentials
from .runtime.workqueue import WorkQueue
from .settings import OperatorSettings
from .shares import ShareMirror
from .store_secret import StoreSecrets


class Kept(NamedTuple):
    """What the resources' index holds of one resource: its body as compact JSON (a few hundred
    bytes rather than the several KB of a parsed body's dicts), its spend, for budgets, and its
    grants (the annotation contentgen.io/shared-with as written), for what others' specs name."""

    body: str
    spend: Spender
    shared: str = ""


def _said(task: asyncio.Task[Any]) -> None:
    """A background task's failure in one line (a dependency away) rather than asyncio's
    "exception was never retrieved" traceback; what it was for is retried by the safety net."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        from .outages import report

        name = getattr(task.get_coro(), "__qualname__", task.get_name())
        report(f"background task {name}", exc, "the safety net does it again")


@dataclass
class KueueAccess:
    """Whether Kueue's Workloads can be read (workloads.py), as far as the last look knows."""

    version: str = ""  # the API version of Kueue's group that answered last
    unavailable: str = ""  # why they cannot be read ("" when they can, or nobody asked yet)
    retry_at: float = 0.0  # when to ask again after that (monotonic)
    said: set[str] = field(default_factory=set)  # what was logged about it, each once


@dataclass
class Operator:
    """What the handlers share for the life of one operator process."""

    settings: OperatorSettings
    kube: Kube
    queue: NamespaceQueue
    backoff: Backoff
    store: Any = None  # ObjectStore, when a store is configured
    catalog: Any = None  # Catalog, when a catalog is configured
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)  # per namespace-wide chore
    # Catalog writes that failed (MongoDB down): uid -> the result to record, if any.
    catalog_behind: dict[str, RunResult | None] = field(default_factory=dict)
    # deletions the catalog could not take when they happened (catalog_sync.mark_gone): uid -> mark
    deletions_behind: dict[str, Any] = field(default_factory=dict)
    # The catalog's live mirror (catalog_sync.py): uid -> (when last written, what was written: a
    # digest of spec and status), and the delayed write waiting for the throttle, if any.
    catalog_written: dict[str, tuple[float, str]] = field(default_factory=dict)
    catalog_pending: dict[str, asyncio.Task[Any]] = field(default_factory=dict)
    # Catalog records whose resource the last look did not find (the safety net marks them gone
    # when the next look does not find them either).
    catalog_missing: set[str] = field(default_factory=set)
    # Namespaces where the worker's ServiceAccount and RoleBinding are known to exist.
    worker_access: set[str] = field(default_factory=set)
    # Unfinished Jobs, namespace -> uid -> Job names (from the Jobs' events)
    unfinished: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    job_owners: dict[tuple[str, str], str] = field(default_factory=dict)  # (namespace, Job) -> uid
    # Jobs this operator created that its Job index does not show yet (uid -> the Job)
    created_jobs: dict[str, Any] = field(default_factory=dict)
    # Our own last status write per uid: (resourceVersion, status), newer than the watch may be.
    written: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    # ImageGenerations waiting for a LoraTraining: (namespace, lora name) -> {uid: kind name}
    lora_waiters: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    # VideoGenerations waiting for an ImageGeneration's picture: (namespace, name) -> {uid: kind}
    image_waiters: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    # namespace -> (when read, its annotations, its labels), for budgets, owners and the Kueue
    # queue of GPU Jobs (cluster-wide installs)
    namespace_metadata: dict[str, tuple[float, dict[str, str], dict[str, str]]] = field(default_factory=dict)
    # The resourceVersion of each resource's last event handled: a listing's event (kopf listing
    # again after 410 Gone) at that version changed nothing (relist.py)
    versions: dict[str, str] = field(default_factory=dict)
    # LoraTrainings' grants mirrored for admission (shares.py), when the settings name its ConfigMap
    share_mirror: ShareMirror | None = None
    # The store's credentials copied where Jobs run (store_secret.py), when the settings ask for it
    store_secrets: StoreSecrets | None = None
    # Each run's own store credentials (run_credentials.py), when the settings ask for them
    run_credentials: RunCredentials | None = None
    # Kinds kopf is listing again: when its last listing event came, and whether a look for what
    # was deleted meanwhile is under way (relist.py)
    relisting: dict[str, float] = field(default_factory=dict)
    pruning: set[str] = field(default_factory=set)
    # kopf's indexes, captured from the first handler call (they are live views)
    indexes: dict[str, Any] = field(default_factory=dict)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    kueue: KueueAccess = field(default_factory=KueueAccess)
    # (kind, namespace, uid) of resources to reconcile, for `settings.workers` workers; it never
    # hands one resource to two workers, so a reconcile needs no lock of its own
    work: WorkQueue = field(default_factory=WorkQueue)

    def lock(self, uid: str) -> asyncio.Lock:
        return self.locks.setdefault(uid, asyncio.Lock())

    def admission(self, namespace: str) -> asyncio.Lock:
        return self.locks.setdefault(f"namespace/{namespace}", asyncio.Lock())

    def forget(self, namespace: str, uid: str) -> None:
        """The resource is gone: drop everything kept about it."""
        self.locks.pop(uid, None)
        self.locks.pop(f"catalog/{uid}", None)
        self.written.pop(uid, None)
        self.versions.pop(uid, None)
        self.created_jobs.pop(uid, None)
        self.backoff.reset(uid)
        self.queue.forget(namespace, uid)
        self.catalog_behind.pop(uid, None)
        self.catalog_written.pop(uid, None)
        pending = self.catalog_pending.pop(uid, None)
        if pending is not None:
            pending.cancel()
        for waiters in (*self.lora_waiters.values(), *self.image_waiters.values()):
            waiters.pop(uid, None)

    def spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(_said)
        return task
