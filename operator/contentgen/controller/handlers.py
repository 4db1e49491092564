"""The kopf wiring: thin glue between watch events and `reconciler.reconcile`.

Events drive everything: a resource's own events, its Jobs' and their pods' (label-selected
watches, so the server filters), and a LoraTraining's for the ImageGenerations waiting on it.
Only raw event handlers are used, so kopf adds no finalizers or annotations of its own; the
operator keeps its own finalizer for deletionPolicy Delete. One replica acts: `contentgen
operator` holds a Lease before starting kopf (standalone).

Run with `contentgen operator` (or `kopf run --standalone -m contentgen.controller.handlers`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
from typing import Any, cast

import kopf

from contentgen.api import GROUP, KINDS, VERSION, Kind

from .budget import spender
from .catalog_sync import sync_catalog
from .kube import Kube, Timeouts, client_configuration
from .naming import MANAGED_BY
from .observe import JobState, LoraState, job_state, lora_state
from .pods import PodState, pod_state
from .queue import Backoff, NamespaceQueue
from .reconciler import (
    job_seen,
    owner_of,
    safety_net,
    wake,
    wake_lora_waiters,
    wake_namespace,
    worker,
)
from .settings import OperatorSettings
from .state import Kept, Operator

log = logging.getLogger("contentgen.operator")
MANAGED = {"app.kubernetes.io/managed-by": MANAGED_BY}
MANAGED_SELECTOR = f"app.kubernetes.io/managed-by={MANAGED_BY}"
WATCHED_BY_LABEL = [("batch", "v1", "jobs"), ("", "v1", "pods")]
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
KEPT_ANNOTATIONS = ("contentgen.io/skip-cleanup",)


class NoDiffBase(kopf.AnnotationsDiffBaseStorage):
    """kopf keeps a deep copy of each object on every event to find what changed, for its
    create/update handlers. The operator has none (raw event handlers only): nothing to copy."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return cast(kopf.BodyEssence, {})

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None


def _operator(kwargs: dict[str, Any]) -> Operator:
    op: Operator = kwargs["memo"].operator
    if not op.indexes:
        op.indexes.update({name: kwargs[name] for name in INDEXES if name in kwargs})
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
    settings.peering.standalone = True  # leadership is the Lease's (leader.py)
    settings.scanning.disabled = True  # the CRDs are ours and known; no need to watch for new ones
    settings.posting.reporting_component = "contentgen-operator"
    settings.persistence.diffbase_storage = NoDiffBase()
    # kopf keeps a worker per object alive this long after its last event: short, so that a burst
    # of thousands of objects does not keep thousands of idle workers (memory).
    settings.queueing.idle_timeout = 2.0
    # kopf logs "Handler ... succeeded" for every watch event; the operator logs what it does.
    if os.environ.get("CONTENTGEN_KOPF_VERBOSE") != "true":
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    # Jobs and pods are not ours by kind: the API server sends only those with our label
    # (kopf's handler filters alone are applied after every object has been sent and decoded).
    for resource in WATCHED_BY_LABEL:
        settings.watching.label_selectors[resource] = MANAGED_SELECTOR
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
        ),
        store=store,
        catalog=catalog,
        queue=NamespaceQueue(config.max_running_jobs_per_namespace),
        backoff=Backoff(config.reconcile_interval_seconds),
    )
    memo.operator = op
    op.spawn(_work_when_indexed(op))
    if config.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(config.metrics_port)


async def _work_when_indexed(op: Operator) -> None:
    while not op.indexes:  # the first handler call hands us kopf's indexes
        await asyncio.sleep(0.05)
    for _ in range(op.settings.workers):
        op.spawn(worker(op))
    await safety_net(op)


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


@kopf.index("batch", "v1", "jobs", labels=MANAGED)
async def jobs_by_owner(body: kopf.Body, **_: Any) -> dict[tuple[str, str], JobState]:
    state = job_state(dict(body))
    return {} if state is None else {(state.namespace, state.uid): state}


@kopf.index("", "v1", "pods", labels=MANAGED)
async def pods_by_job(body: kopf.Body, **_: Any) -> dict[tuple[str, str], PodState]:
    state = pod_state(dict(body))
    return {} if state is None else {(state.namespace, state.job): state}


@kopf.index(GROUP, VERSION, "loratrainings")
async def loras_by_name(body: kopf.Body, **_: Any) -> dict[tuple[str, str], LoraState]:
    return {(body["metadata"]["namespace"], body["metadata"]["name"]): lora_state(dict(body))}


def _kept(body: kopf.Body) -> Kept:
    meta = body["metadata"]
    kept_meta: dict[str, Any] = {k: meta[k] for k in KEPT_METADATA if k in meta}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k in KEPT_ANNOTATIONS}
    if annotations:
        kept_meta["annotations"] = annotations
    kept = {
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "metadata": kept_meta,
        "spec": body.get("spec") or {},
        "status": body.get("status") or {},
    }
    return Kept(json.dumps(kept, separators=(",", ":")), spender(dict(body)))


def _register_index(kind: Kind) -> str:
    name = f"{kind.plural}_by_uid"

    async def index(body: kopf.Body, **_: Any) -> dict[tuple[str, str], Kept]:
        return {(body["metadata"]["namespace"], body["metadata"]["uid"]): _kept(body)}

    index.__name__ = name
    kopf.index(GROUP, VERSION, kind.plural, id=name)(index)
    return name


INDEXES = [
    "jobs_by_owner",
    "pods_by_job",
    "loras_by_name",
    *[_register_index(k) for k in KINDS.values()],
]

# --- events --------------------------------------------------------------------------------------


def _register(kind: Kind) -> None:
    async def on_event(**kwargs: Any) -> None:
        op, body, event = _operator(kwargs), kwargs["body"], kwargs.get("type")
        meta = body["metadata"]
        if event == "DELETED":
            op.forget(meta["namespace"], meta["uid"])
            wake_namespace(op, meta["namespace"])
            return
        if kind.kind == "LoraTraining":
            wake_lora_waiters(op, meta["namespace"], meta["name"])
        if event is None and op.catalog is not None:  # the initial listing after a start: catch up
            await sync_catalog(op, dict(body), dict(body.get("status") or {}), None)
        written = op.written.get(meta["uid"])
        if written is not None and str(written[0]) == str(meta.get("resourceVersion")):
            # Our own status write coming back, nothing else changed: decided already. (Its
            # LoraTraining waiters were woken above: our writes are what they wait for.)
            del op.written[meta["uid"]]
            return
        wake(op, kind.kind, meta["namespace"], meta["uid"])

    on_event.__name__ = f"{kind.singular}_event"
    kopf.on.event(GROUP, VERSION, kind.plural, id=f"{kind.singular}-event")(on_event)


for _kind in KINDS.values():
    _register(_kind)


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED, id="job-event")
async def job_event(**kwargs: Any) -> None:
    """A Job changed (created, started, finished, deleted): its owner decides again at once."""
    op, body = _operator(kwargs), kwargs["body"]
    meta = body["metadata"]
    deleted = kwargs.get("type") == "DELETED"
    job_seen(op, job_state(dict(body)), meta["name"], meta["namespace"], deleted)
    owner = owner_of(dict(meta.get("labels") or {}))
    if owner is not None:
        wake(op, owner[0], meta["namespace"], owner[1])
    if deleted:
        wake_namespace(op, meta["namespace"])


@kopf.on.event("", "v1", "pods", labels=MANAGED, id="pod-event")
async def pod_event(**kwargs: Any) -> None:
    """A worker pod cannot start, or finished: its Job's owner looks again."""
    op, body = _operator(kwargs), kwargs["body"]
    state = pod_state(dict(body))
    if state is None or not (state.problem or state.finished_at):
        return
    owner = owner_of(dict(body["metadata"].get("labels") or {}))
    if owner is not None:
        wake(op, owner[0], body["metadata"]["namespace"], owner[1])
