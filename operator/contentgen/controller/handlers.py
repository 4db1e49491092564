"""The kopf wiring: thin glue between watch events and `reconciler.reconcile`.

Events drive everything: a resource's own events (kopf), its Jobs' and their pods' (runtime/informer.py:
label-selected watches of our own, so the API server sends only ours, feeding the same work
queue), and a LoraTraining's for the ImageGenerations waiting on it. When kopf lists a kind again
(410 Gone), what was deleted meanwhile is found by relist.py. Only raw event handlers are
used, so kopf adds no finalizers or annotations of its own; the operator keeps its own finalizer
for deletionPolicy Delete. One replica acts: `contentgen operator` holds a Lease before starting
kopf (standalone).

Run with `contentgen operator` (or `kopf run --standalone -m contentgen.controller.handlers`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import weakref
from collections.abc import Mapping
from functools import partial
from typing import Any, cast

import kopf

from contentgen.api import GROUP, KINDS, VERSION, Kind
from contentgen.api.lora import PROMOTED_ANNOTATION, STOP_ANNOTATION, VERDICTS_ANNOTATION
from contentgen.api.sharing import ANNOTATION as SHARED_ANNOTATION

from . import notifier
from .budget import share
from .catalog_sync import note_change, sync_catalog
from .job_admission import Backoff, NamespaceQueue
from .jobsets import PATHS, run_state
from .kinds import controller_kind
from .kube import Kube, Timeouts, client_configuration
from .main import lease_namespace
from .naming import MANAGED_BY
from .objects import CustomResource
from .observe import JobState, LoraState, job_state, lora_state
from .pods import PodState, pod_state
from .reconciler import (
    current_body,
    job_seen,
    owner_of,
    safety_net,
    wake,
    wake_namespace,
    wake_waiters,
    worker,
)
from .relist import gone, prune_every, unchanged
from .run_credentials import RunCredentials
from .runtime.informer import Informer, Store
from .runtime.leader import may_act
from .settings import OperatorSettings
from .shared_inputs import shared_by_uid
from .shares import ShareMirror
from .state import Kept, Operator
from .store_secret import StoreSecrets
from .uploads import sweep_uploads

log = logging.getLogger("contentgen.operator")
MANAGED_SELECTOR = f"app.kubernetes.io/managed-by={MANAGED_BY}"
# What a resource index keeps of each resource (not managedFields or annotations such as
# kubectl's last-applied-configuration, which can be large).
KEPT_METADATA = (
    "name",
    "namespace",
    "uid",
    "generation",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "finalizers",
)
KEPT_ANNOTATIONS = (
    "contentgen.io/skip-cleanup",
    PROMOTED_ANNOTATION,
    VERDICTS_ANNOTATION,
    SHARED_ANNOTATION,
    STOP_ANNOTATION,
)


class NoDiffBase(kopf.AnnotationsDiffBaseStorage):
    """kopf keeps a deep copy of each object on every event to find what changed, for its
    create/update handlers. The operator has none (raw event handlers only): nothing to copy."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return cast(kopf.BodyEssence, {})

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None


def _operator(kwargs: dict[str, Any]) -> Operator:
    op: Operator = kwargs["memo"].operator
    if BY_NAME not in op.indexes:
        op.indexes.update({name: kwargs[name] for name in index_names() if name in kwargs})
    return op


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    """kopf's credentials, from the same place as the operator's own client (kube.py)."""
    config = client_configuration()
    header = str(
        config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix("authorization") or ""
    )
    scheme, token = header.split(" ", 1) if " " in header else ("", header)
    return kopf.ConnectionInfo(
        server=config.host,
        ca_path=config.ssl_ca_cert,
        insecure=not config.verify_ssl,
        username=config.username or None,
        password=config.password or None,
        scheme=scheme or None,
        token=token or None,
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
    )


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config = OperatorSettings()
    settings.peering.standalone = True  # leadership is the Lease's (runtime/leader.py)
    settings.scanning.disabled = True  # the CRDs are ours and known; no need to watch for new ones
    settings.posting.reporting_component = "contentgen-operator"
    settings.persistence.diffbase_storage = NoDiffBase()
    # kopf keeps a worker per object alive this long after its last event: short, so that a burst
    # of thousands of objects does not keep thousands of idle workers (memory).
    settings.queueing.idle_timeout = 2.0
    # kopf logs "Handler ... succeeded" for every watch event; the operator logs what it does.
    if os.environ.get("CONTENTGEN_KOPF_VERBOSE") != "true":
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = config.api_timeout_seconds
    settings.networking.request_timeout = config.api_timeout_seconds
    # No limit on kopf's per-object workers: with indexes, kopf holds each object's worker until
    # every index has its initial listing, so a limit below the number of objects deadlocks a start.
    # Concurrency is bounded where the work is: the API connections and the thread pool below.
    settings.execution.max_workers = config.workers
    # Blocking work (the catalog, the store) runs on a pool of this size, not asyncio's default.
    asyncio.get_running_loop().set_default_executor(
        concurrent.futures.ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="contentgen")
    )
    store = None
    if config.store:
        from contentgen.store import open_store

        store = open_store(config.store)
    catalog = None
    if config.mongodb_uri:
        from contentgen.catalog import open_catalog

        catalog = open_catalog(config.mongodb_uri, create=True)  # the operator is its writer
        try:
            await asyncio.to_thread(catalog.ensure_indexes)
        except Exception as exc:  # MongoDB down: indexes are made on a later start
            log.warning("catalog unavailable at start: %s", exc)
    op = Operator(
        settings=config,
        kube=Kube(
            client_configuration(),
            timeouts=Timeouts(total=config.api_timeout_seconds),
            connections=config.workers,
            may_write=may_act,  # a replica that cannot prove its Lease writes nothing
        ),
        store=store,
        catalog=catalog,
        queue=NamespaceQueue(config.max_running_jobs_per_namespace),
        backoff=Backoff(config.reconcile_interval_seconds),
    )
    if config.copy_s3_secret and config.s3_secret and config.store.startswith("s3://"):
        op.store_secrets = StoreSecrets(
            op.kube, config.s3_secret, lease_namespace(config), config.worker_cluster_role
        )
    if config.store_access == "per-run" and store is not None:
        op.run_credentials = RunCredentials(op.kube, config, store.place())
    elif config.store_access == "secret" and config.s3_secret:
        log.warning(
            "store_access is secret: every worker holds the Secret %s, the whole bucket's key%s; "
            "anyone who may read Secrets where Jobs run can read and overwrite every owner's outputs "
            "(docs/security.md: per-run)",
            config.s3_secret,
            ", copied into every namespace that runs a Job" if config.copy_s3_secret else "",
        )
    memo.operator = op
    informers = _informers(op)
    for informer in informers:
        op.spawn(informer.run())
    # JobSets and TrainJobs (runs across nodes) are watched where the chart says their controllers
    # run; a cluster without them leaves their watch retrying, which gates nothing
    for informer in _run_informers(op):
        op.spawn(informer.run())
    op.spawn(_work_when_indexed(op, informers))
    if config.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(config.metrics_port)


async def _work_when_indexed(op: Operator, informers: list[Informer[Any]]) -> None:
    while BY_NAME not in op.indexes:  # the first handler call hands us kopf's indexes
        await asyncio.sleep(0.05)
    for informer in informers:  # and every Job and pod of ours is known
        await informer.synced.wait()
    if op.settings.share_policy_config_map:  # the index is complete: the full resync
        op.share_mirror = ShareMirror(
            op.kube,
            lease_namespace(op.settings),
            op.settings.share_policy_config_map,
            lambda: [s for states in op.indexes["loras_by_name"].values() for s in states],
            lambda: shared_by_uid(op.indexes),
            resync=op.settings.resync_interval_seconds,
        )
        op.spawn(op.share_mirror.run())
    for _ in range(op.settings.workers):
        op.spawn(worker(op))
    op.spawn(prune_every(op, op.settings.resync_interval_seconds))
    op.spawn(notifier.run(op))  # webhook deliveries (docs/notifications.md)
    op.spawn(sweep_uploads(op))  # multipart uploads a store outage left unfinished
    if op.store_secrets is not None:  # the store's credentials where Jobs run, kept in step
        op.spawn(op.store_secrets.run(op.settings.resync_interval_seconds))
    if op.run_credentials is not None:  # each run's own, renewed while it runs, retired after
        op.spawn(op.run_credentials.run(lambda: live_runs(op)))
    await safety_net(op)


def live_runs(op: Operator) -> list[tuple[str, str, bool, str]]:
    """Every run object of ours the index knows: (namespace, name, finished, its snapshot)."""
    index = op.indexes.get("jobs_by_owner") or {}
    return [(j.namespace, j.name, j.finished, j.snapshot) for jobs in index.values() for j in jobs]


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    op = getattr(memo, "operator", None)
    if op is None:
        return
    for task in list(op.tasks):
        task.cancel()
    await op.kube.close()
    if op.catalog is not None:
        op.catalog.close()


# --- indexes: what reconciles read instead of asking the API server -----------------------------
# (async, though they do no I/O: kopf runs a plain function on its thread pool, one hop per event)


BY_NAME = "loras_by_name"


async def loras_by_name(body: kopf.Body, **_: Any) -> dict[tuple[str, str], LoraState]:
    return {(body["metadata"]["namespace"], body["metadata"]["name"]): lora_state(dict(body))}


def _kept(body: kopf.Body) -> Kept:
    meta = body["metadata"]
    kept_meta: dict[str, Any] = {k: meta[k] for k in KEPT_METADATA if k in meta}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k in KEPT_ANNOTATIONS}
    if annotations:
        kept_meta["annotations"] = annotations
    resource = CustomResource.of(body)
    kept = {
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "metadata": kept_meta,
        "spec": resource.spec,
        "status": resource.status,
    }
    shared = annotations.get(SHARED_ANNOTATION, "")
    return Kept(json.dumps(kept, separators=(",", ":")), share(resource), shared)


def _by_uid(kind: Kind) -> str:
    return f"{kind.plural}_by_uid"


def index_names() -> list[str]:
    """kopf's indexes of the custom resources, of every kind registered by now."""
    return [BY_NAME, *(_by_uid(k) for k in KINDS.values())]


def _register_index(kind: Kind, registry: kopf.OperatorRegistry) -> None:
    name = _by_uid(kind)

    async def index(body: kopf.Body, **_: Any) -> dict[tuple[str, str], Kept]:
        return {(body["metadata"]["namespace"], body["metadata"]["uid"]): _kept(body)}

    index.__name__ = name
    kopf.index(GROUP, VERSION, kind.plural, id=name, registry=registry)(index)


# --- events --------------------------------------------------------------------------------------


def _register(kind: Kind, registry: kopf.OperatorRegistry) -> None:
    declared = controller_kind(kind.kind)

    async def on_event(**kwargs: Any) -> None:
        op, body, event = _operator(kwargs), kwargs["body"], kwargs.get("type")
        meta = body["metadata"]
        if op.share_mirror is not None:
            op.share_mirror.changed()  # its grants, or its going, may change what admission reads
        if event == "DELETED":
            gone(op, kind, dict(body))
            return
        if unchanged(op, kind, meta, listing=event is None):
            return  # kopf listing again (410 Gone): this resource did not change meanwhile
        wake_waiters(op, declared, meta["namespace"], meta["name"])  # the runs whose references name it
        if event is None and op.catalog is not None:  # a listing (a start, or a relist): catch up
            await sync_catalog(op, dict(body), CustomResource.of(body).status, None)
        written = op.written.get(meta["uid"])
        if written is not None and str(written[0]) == str(meta.get("resourceVersion")):
            # Our own status write coming back, nothing else changed: decided already. (Its
            # LoraTraining waiters were woken above: our writes are what they wait for. The
            # reconcile that wrote it wrote the catalog too.)
            del op.written[meta["uid"]]
            return
        # The worker's progress, a spec edit: the catalog follows (throttled), the reconcile decides.
        namespace, uid = meta["namespace"], meta["uid"]
        note_change(op, uid, lambda: current_body(op, kind, namespace, uid))
        wake(op, kind.kind, namespace, uid)

    on_event.__name__ = f"{kind.singular}_event"
    kopf.on.event(GROUP, VERSION, kind.plural, id=f"{kind.singular}-event", registry=registry)(on_event)


# the kinds each registry watches already
_WATCHED: weakref.WeakKeyDictionary[kopf.OperatorRegistry, set[str]] = weakref.WeakKeyDictionary()


def register_kinds(registry: kopf.OperatorRegistry | None = None) -> list[str]:
    """Watch every kind registered by now (api.KINDS) in `registry` (kopf's default): its index by
    uid and its events, each kind once, beside the LoraTrainings' index by name. kopf's import of
    this module, when the operator starts, calls it; a kind registered in the process later is
    watched once this is called again before kopf runs (not from a startup handler: kopf sets up
    its indexes before it calls those). The names of the indexes."""
    registry = registry if registry is not None else kopf.get_default_registry()
    if registry not in _WATCHED:
        kopf.index(GROUP, VERSION, "loratrainings", id=BY_NAME, registry=registry)(loras_by_name)
    watched = _WATCHED.setdefault(registry, set())
    new = [k for k in KINDS.values() if k.kind not in watched]
    for kind in new:
        _register_index(kind, registry)
    for kind in new:
        _register(kind, registry)
    watched.update(k.kind for k in new)
    return index_names()


register_kinds()


# --- Jobs and pods: informers of our own (runtime/informer.py) -----------------------------------


def _informers(op: Operator) -> list[Informer[Any]]:
    """The Job and pod watches (per watched namespace, or cluster-wide), their stores in
    `op.indexes` where the reconciles read them, as they read kopf's."""
    jobs: Store[JobState] = Store(lambda j: (j.namespace, j.uid))
    pods: Store[PodState] = Store(lambda p: (p.namespace, p.job))
    op.indexes["jobs_by_owner"], op.indexes["pods_by_job"] = jobs, pods
    scopes = [f"/namespaces/{ns}" for ns in op.settings.watch_namespaces] or [""]
    informers: list[Informer[Any]] = []
    for scope in scopes:
        informers.append(
            Informer(
                op.kube,
                f"/apis/batch/v1{scope}/jobs",
                MANAGED_SELECTOR,
                job_state,
                jobs,
                lambda old, new, labels: job_changed(op, old, new, labels),
            )
        )
        informers.append(
            Informer(
                op.kube,
                f"/api/v1{scope}/pods",
                MANAGED_SELECTOR,
                pod_state,
                pods,
                lambda old, new, labels: pod_changed(op, old, new, labels),
            )
        )
    return informers


def _run_informers(op: Operator) -> list[Informer[Any]]:
    """The watches of the JobSets and TrainJobs this operator makes (jobsets.py), into the Jobs'
    store: a decision reads a run across nodes as it reads a Job."""
    scopes = [f"/namespaces/{ns}" for ns in op.settings.watch_namespaces] or [""]
    return [
        Informer(
            op.kube,
            f"{PATHS[backend][0]}{scope}/{PATHS[backend][1]}",
            MANAGED_SELECTOR,
            partial(run_state, backend=backend),
            op.indexes["jobs_by_owner"],
            lambda old, new, labels: job_changed(op, old, new, labels),
        )
        for backend in sorted(set(op.settings.gpu_training.backends) & set(PATHS))
        for scope in scopes
    ]


def job_changed(op: Operator, old: JobState | None, new: JobState | None, labels: Mapping[str, str]) -> None:
    """A Job was created, changed, finished or deleted: its owner decides again at once."""
    if new is not None and new == old:
        return  # nothing the operator reads has changed (the Job controller's bookkeeping)
    job = new or old
    assert job is not None
    if log.isEnabledFor(logging.DEBUG):
        log.debug("Job %s/%s %s", job.namespace, job.name, "deleted" if new is None else new)
    job_seen(op, new, job)
    owner = owner_of(dict(labels))
    if owner is not None:
        wake(op, owner[0], job.namespace, owner[1])
    else:  # deleted while the watch was away: found missing by a new listing, labels unknown
        _wake_uid(op, job.namespace, job.uid)
    if new is None or (new.finished and not (old is not None and old.finished)):
        # its slot is free whatever its owner's decision makes of it (even one that cannot be
        # recorded yet): the namespace's queued runs start now
        wake_namespace(op, job.namespace)


def pod_changed(op: Operator, old: PodState | None, new: PodState | None, labels: Mapping[str, str]) -> None:
    """A worker pod cannot start, or finished: its Job's owner looks again."""
    if new is None or new == old or not (new.problem or new.finished_at):
        return
    owner = owner_of(dict(labels))
    if owner is not None:
        wake(op, owner[0], new.namespace, owner[1])


def _wake_uid(op: Operator, namespace: str, uid: str) -> None:
    for kind in KINDS.values():
        index = op.indexes.get(f"{kind.plural}_by_uid")
        if index is not None and (namespace, uid) in index:
            wake(op, kind.kind, namespace, uid)
            return
