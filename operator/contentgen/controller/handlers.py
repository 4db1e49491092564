"""The kopf handlers: thin glue between Kubernetes events and `reconcile.decide`.

One reconcile at a time per resource (an asyncio lock per uid), reading the resource fresh and
the Jobs and LoraTrainings from kopf's in-memory indexes. The resource's status is the only
thing the operator writes on it; creation, spec changes, resumption and a timer all lead to the
same reconcile, so a missed event is made up for by the next tick.

Run with `contentgen operator` or `kopf run -m contentgen.controller.handlers`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import replace
from typing import Any, cast

import kopf

from contentgen.api import GROUP, KINDS, VERSION, Kind, Phase, RunFailure, SpecSnapshot, now
from contentgen.pricing import estimated, month_of

from . import metrics
from .budget import ANNOTATION, Budgets, Spender, annotation_problem, limits_for, over_budget, spender
from .catalog_sync import sync_catalog
from .cleanup import delete
from .jobs import missing_credentials, render_job
from .kube import Kube, load_client
from .naming import FINALIZER, MANAGED_BY
from .observe import JobState, LoraState, job_state, lora_state
from .outcomes import read_outcome
from .queue import Backoff, NamespaceQueue
from .reconcile import Decision, Observed, World, decide
from .settings import OperatorSettings
from .state import Operator

log = logging.getLogger("contentgen.operator")
# Read when the module is imported: kopf registers the handlers (and the timer's interval) then.
SETTINGS = OperatorSettings()


def _operator(kwargs: dict[str, Any]) -> Operator:
    """This operator's shared state, kept in kopf's per-operator memo (set at startup)."""
    op: Operator = kwargs["memo"].operator
    return op


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    """kopf's credentials, from the same place as the operator's own client (kube.py)."""
    from .kube import client_configuration

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
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.reporting_component = "contentgen-operator"
    settings.scanning.disabled = True  # the CRDs are ours and known; no need to watch for new ones
    settings.peering.name = config.peering_name
    settings.peering.clusterwide = not config.watch_namespaces
    # kopf pauses every operator that sees a peer of equal or higher priority: a random
    # priority per replica makes exactly one of them active, the others stand by.
    settings.peering.priority = random.randint(1, 2**31 - 1)  # noqa: S311 - not a secret
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.execution.max_workers = 8

    store = None
    if config.store:
        from contentgen.store import open_store

        store = open_store(config.store)
    catalog = None
    if config.mongodb_uri:
        from contentgen.catalog import open_catalog

        catalog = open_catalog(config.mongodb_uri)
        try:
            await asyncio.to_thread(catalog.ensure_indexes)
        except Exception as exc:  # MongoDB down: indexes are made on a later start
            log.warning("catalog unavailable at start: %s", exc)
    memo.operator = Operator(
        settings=config,
        kube=Kube(load_client()),
        store=store,
        catalog=catalog,
        queue=NamespaceQueue(config.max_running_jobs_per_namespace),
        backoff=Backoff(config.reconcile_interval_seconds),
    )
    if config.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(config.metrics_port)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    op = getattr(memo, "operator", None)
    if op is not None and op.catalog is not None:
        op.catalog.close()


# --- indexes: what reconciles read instead of asking the API server ---------------------------


@kopf.index("batch", "v1", "jobs", labels={"app.kubernetes.io/managed-by": MANAGED_BY})
def jobs_by_owner(body: kopf.Body, **_: Any) -> dict[tuple[str, str], JobState]:
    state = job_state(dict(body))
    return {} if state is None else {(state.namespace, state.uid): state}


@kopf.index(GROUP, VERSION, "loratrainings")
def loras_by_name(body: kopf.Body, **_: Any) -> dict[tuple[str, str], LoraState]:
    return {(body["metadata"]["namespace"], body["metadata"]["name"]): lora_state(dict(body))}


# --- spend and budgets (issue 12): each resource's spend, for budget.over_budget ------------


def _index_spend(kind: Kind) -> None:
    def spend(body: kopf.Body, **_: Any) -> dict[str, Spender]:
        return {"all": spender(dict(body))}

    kopf.index(GROUP, VERSION, kind.plural, id=f"{kind.singular}_spend")(spend)


for _kind in KINDS.values():
    _index_spend(_kind)


async def _over_budget(op: Operator, res: Observed, indexes: dict[str, Any]) -> str:
    """Why `res` may not start its Job within its budgets ("" when it may, or has none). The
    namespace's annotation is read in cluster-wide installs only (a namespaced install has no
    right to read Namespace objects)."""
    annotation = None
    if not op.settings.watch_namespaces:
        annotation = (await op.kube.namespace_annotations(res.namespace)).get(ANNOTATION)
        if problem := annotation_problem(annotation):
            log.warning(
                "namespace %s: %s; its budget comes from the operator settings", res.namespace, problem
            )
    budgets = op.settings.budgets
    if budgets == Budgets() and annotation is None:
        return ""
    spenders = [s for k in KINDS.values() for s in (indexes.get(f"{k.singular}_spend") or {}).get("all", [])]
    owner = str(res.spec.get("owner", ""))
    estimate = estimated(res.kind.kind, res.spec, op.settings.prices, res.status.get("cost")).estimated_usd
    limits = limits_for(res.namespace, owner, budgets, annotation)
    return over_budget(res.uid, res.namespace, owner, estimate, month_of(now()), spenders, limits)


# --- reconcile -------------------------------------------------------------------------------


def _observed(kind: Kind, body: dict[str, Any]) -> Observed:
    meta = body["metadata"]
    return Observed(
        kind=kind,
        name=meta["name"],
        namespace=meta["namespace"],
        uid=meta["uid"],
        generation=int(meta.get("generation") or 1),
        spec=dict(body.get("spec") or {}),
        status=dict(body.get("status") or {}),
    )


def _running(index: kopf.Index[tuple[str, str], JobState], namespace: str) -> set[str]:
    return {uid for (ns, uid), jobs in index.items() if ns == namespace and any(not j.finished for j in jobs)}


def _status_patch(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    patch = {k: v for k, v in after.items() if before.get(k) != v}
    patch.update({k: None for k in before if k not in after})
    return patch


async def reconcile(
    op: Operator, kind: Kind, name: str, namespace: str, uid: str, indexes: dict[str, Any]
) -> None:
    """Reconcile one resource (see the module docstring); errors are counted, then left to kopf,
    which logs them and retries the handler."""
    try:
        await _reconcile(op, kind, name, namespace, uid, indexes)
    except Exception as exc:
        metrics.ERRORS.labels(kind.kind, type(exc).__name__).inc()
        raise


async def _reconcile(
    op: Operator, kind: Kind, name: str, namespace: str, uid: str, indexes: dict[str, Any]
) -> None:
    async with op.lock(uid):
        began = time.monotonic()
        body = await op.kube.get_resource(kind, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp") or body["metadata"]["uid"] != uid:
            return
        res = _observed(kind, body)
        # Deciding and starting a Job are one step per namespace, so that concurrent reconciles
        # cannot all see the same free slot.
        async with op.admission(namespace):
            decision = await _decide(op, res, str(body["metadata"].get("creationTimestamp", "")), indexes)
            if decision is None:
                return
            if decision.job is not None:
                await _start_job(op, decision.job)
        if decision.waiting and decision.waiting != "Queued":
            op.backoff.failed(uid, time.monotonic())
        else:
            op.backoff.reset(uid)

        patch = _status_patch(res.status, decision.status)
        if patch:
            await op.kube.patch_status(kind, namespace, name, patch)
        for event in decision.events:
            kopf.event(cast(Any, body), type=event.type, reason=event.reason, message=event.message)
            metrics.TRANSITIONS.labels(kind.kind, str(decision.status.get("phase")), event.reason).inc()
        if patch or decision.outcome_recorded is not None or uid in op.catalog_behind:
            await sync_catalog(op, body, decision.status, decision.outcome_recorded)
        metrics.RECONCILE_SECONDS.labels(kind.kind).observe(time.monotonic() - began)


async def _decide(op: Operator, res: Observed, created: str, indexes: dict[str, Any]) -> Decision | None:
    """The decision for `res`, with a finished Job's outcome read when it needs one; None when
    the outcome cannot be read now (the store is away)."""
    jobs_index: kopf.Index[tuple[str, str], JobState] = indexes["jobs_by_owner"]
    loras_index: kopf.Index[tuple[str, str], LoraState] = indexes["loras_by_name"]
    running = _running(jobs_index, res.namespace)
    op.queue.seen(res.namespace, running)
    refs = [e["loraRef"]["name"] for e in res.spec.get("loras") or [] if "loraRef" in e]
    jobs = tuple(jobs_index.get((res.namespace, res.uid), []))
    starting = [j for j in jobs if not j.finished and not j.ready]
    world = World(
        now=now(),
        jobs=jobs,
        pod_problem=await op.kube.pod_problem(res.namespace, starting[-1].name) if starting else "",
        loras={ref: next(iter(loras_index.get((res.namespace, ref), [])), None) for ref in refs},
        may_start=op.queue.may_start(res.namespace, res.uid, created, running),
        missing_credentials=missing_credentials(str(res.spec.get("provider", "")), op.settings),
        prices=op.settings.prices,
    )
    decision = decide(res, world)
    if decision.needs_outcome is not None:
        outcome = await read_outcome(decision.needs_outcome, res, op.kube, op.store)
        if isinstance(outcome, RunFailure) and outcome.reason == "StoreUnavailable":
            op.backoff.failed(res.uid, time.monotonic())
            return None  # try again later rather than record a guess
        world = replace(world, outcome=outcome)
        decision = decide(res, world)
    if decision.job is not None and (over := await _over_budget(op, res, indexes)):  # issue 12
        decision = decide(res, replace(world, over_budget=over))
    if decision.waiting == "Queued":
        op.queue.wait(res.namespace, res.uid, created)
    elif decision.job is None and (
        decision.waiting or decision.status.get("phase") in (Phase.SUCCEEDED, Phase.FAILED)
    ):
        op.queue.forget(res.namespace, res.uid)
    metrics.QUEUE_LENGTH.set(op.queue.length())
    return decision


async def _start_job(op: Operator, snapshot: SpecSnapshot) -> None:
    namespace = snapshot.namespace
    if op.settings.manage_worker_access and namespace not in op.worker_access:
        await op.kube.ensure_worker_access(
            namespace,
            op.settings.worker_service_account,
            op.settings.worker_cluster_role,
            op.settings.worker_service_account_annotations,
        )
        op.worker_access.add(namespace)
    if await op.kube.create_job(render_job(snapshot, op.settings)):
        metrics.JOBS_CREATED.labels(snapshot.kind).inc()
    op.queue.start(namespace, snapshot.uid)


def _settled(body: kopf.Body, index: kopf.Index[tuple[str, str], JobState]) -> bool:
    """Nothing to do: the current generation has finished and no Job of it is left running."""
    status = body.get("status") or {}
    meta = body["metadata"]
    if status.get("phase") not in (Phase.SUCCEEDED, Phase.FAILED):
        return False
    if status.get("observedGeneration") != meta.get("generation"):
        return False
    return not any(not j.finished for j in index.get((meta["namespace"], meta["uid"]), []))


# --- per-kind handlers -------------------------------------------------------------------------


def _register(kind: Kind) -> None:
    # kopf passes everything as keyword arguments, indexes included (by the index's name).
    async def on_change(**kwargs: Any) -> None:
        await reconcile(_operator(kwargs), kind, kwargs["name"], kwargs["namespace"], kwargs["uid"], kwargs)

    async def on_resume(**kwargs: Any) -> None:
        # After a restart: catch the catalog up, then carry on where the resource was.
        op, body = _operator(kwargs), dict(kwargs["body"])
        await sync_catalog(op, body, dict(body.get("status") or {}), None)
        await reconcile(op, kind, kwargs["name"], kwargs["namespace"], kwargs["uid"], kwargs)

    async def on_tick(**kwargs: Any) -> None:
        op, uid = _operator(kwargs), kwargs["uid"]
        behind = uid in op.catalog_behind
        if _settled(kwargs["body"], kwargs["jobs_by_owner"]) and not behind:
            return
        if not behind and not op.backoff.due(uid, time.monotonic()):
            return
        await reconcile(op, kind, kwargs["name"], kwargs["namespace"], uid, kwargs)

    async def on_delete(**kwargs: Any) -> None:
        body, retry = dict(kwargs["body"]), int(kwargs.get("retry", 0))
        await delete(_operator(kwargs), kind, body, kwargs["jobs_by_owner"], retry)

    selector = (GROUP, VERSION, kind.plural)
    interval = SETTINGS.reconcile_interval_seconds
    # A failed handler (an API error) is retried after one interval, not kopf's default minute.
    kopf.on.create(*selector, id=f"{kind.singular}-create", backoff=interval)(on_change)
    kopf.on.update(*selector, id=f"{kind.singular}-update", field="spec", backoff=interval)(on_change)
    kopf.on.resume(*selector, id=f"{kind.singular}-resume", backoff=interval)(on_resume)
    kopf.timer(
        *selector, id=f"{kind.singular}-tick", interval=interval, initial_delay=interval, backoff=interval
    )(on_tick)
    kopf.on.delete(*selector, id=f"{kind.singular}-delete", backoff=interval)(on_delete)


for _kind in KINDS.values():
    _register(_kind)
