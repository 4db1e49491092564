"""Reconciling one resource: gather what `decide.decide` needs from kopf's indexes (no API
reads), decide, then act (create the Job, patch the status, post Events, write the catalog).

Events drive it: the resource's own, its Jobs' and their pods', and those of a LoraTraining an
ImageGeneration waits for. A slow safety net looks at every unfinished resource again.

Slots of the namespace queue are reserved under the namespace's lock, where no I/O happens;
the Job is created after the lock is released, and the reservation is given back if that fails.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import replace
from typing import Any, cast

from contentgen.api import KINDS, Kind, Phase, SpecSnapshot, now, parse_timestamp
from contentgen.api.kinds.image_generation import KIND as IMAGE_GENERATION
from contentgen.api.lora import VERDICTS_ANNOTATION, verdicts_asked
from contentgen.api.providers import provider_entry
from contentgen.pricing import estimated, month_of, without_evaluation
from contentgen.store import keys
from contentgen.store.access import REASON as INPUT_REFUSED
from contentgen.store.scopes import ScopeTooLarge

from . import metrics, runs
from . import owners as owners_rule
from .budget import ANNOTATION, Admission, Budgets, admit, annotation_problem, limits_for
from .catalog_sync import mark_gone_again, sweep_gone, sync_catalog, verdict_refusals
from .cleanup import delete, pods_pending
from .decide import (
    RESULT_RETRY_SECONDS,
    Decision,
    Observed,
    ResultUnreadable,
    World,
    decide,
    lora_key,
    lora_location,
    lora_refs,
    run_provider,
)
from .events import post_event, transition_key
from .jobs import missing_credentials, refused, render_run
from .kinds import ControllerKind, controller_kind
from .kube import JobNameTaken, KubeError
from .naming import FINALIZER, LABEL_KIND, LABEL_UID
from .objects import CustomResource
from .observe import ImageState, JobState, LoraState, image_state
from .outages import KIND_UNKNOWN_RETRY_SECONDS, deleted_meanwhile, kind_not_yet_known, one_line, report
from .outcomes import read_outcome
from .pods import PodState, changes_at, end_may_come, pod_problem, termination_message
from .provider_cancel import cancellable, stop_superseded
from .run_credentials import CredentialsUnavailable
from .runtime.leader import may_act
from .shared_inputs import audited, crossed
from .state import Kept, Operator
from .status import read_common, ready_reason
from .store_secret import missing_copy
from .workloads import RECHECK_SECONDS, may_read, read_workload

log = logging.getLogger("contentgen.operator")

NAMESPACE_CACHE_SECONDS = 30.0
LORA_WAITS = (
    "LoraNotReady",
    "LoraNotFound",
    "LoraOwnerMismatch",
    "LoraNotShared",
    "LoraFailed",
    "LoraNotEvaluable",
)
# What an ImageGeneration's change (or its creation, or deletion) resolves: woken by its events
IMAGE_WAITS = ("ImageNotFound", "ImageNotReady", "ImageOwnerMismatch", "ImageVersionNotFound")


class StaleDecision(Exception):
    """A status write refused with a 409: the resource changed since the version it was decided
    on. Read it again and decide again."""


def observed(kind: Kind, body: Mapping[str, Any]) -> Observed:
    resource = CustomResource.of(body)
    meta = resource.metadata
    return Observed(
        kind=kind,
        name=meta.name,
        namespace=meta.namespace,
        uid=meta.uid,
        generation=meta.generation or 1,
        spec=resource.spec,
        status=resource.status,
        annotations=dict(meta.annotations),
    )


def status_patch(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    patch = {k: v for k, v in after.items() if before.get(k) != v}
    patch.update({k: None for k in before if k not in after})
    return patch


def _by_uid(op: Operator, kind: Kind) -> Any:
    """kopf's index of `kind` by (namespace, uid); None before kopf has made it."""
    return op.indexes.get(f"{kind.plural}_by_uid")


def _kept(op: Operator, kind: Kind, namespace: str, uid: str) -> Kept | None:
    index = _by_uid(op, kind)
    if index is None or (namespace, uid) not in index:
        return None
    return next(iter(index.get((namespace, uid), [])), None)


def _forgotten(op: Operator, kind: Kind, namespace: str, uid: str) -> bool:
    """The resource left the index (deleted) since its reconcile began. An index not made yet
    knows nothing, which is not a deletion (unlike `_kept`'s None)."""
    index = _by_uid(op, kind)
    return index is not None and (namespace, uid) not in index


def owner_body(op: Operator, kind: Kind, namespace: str, uid: str) -> dict[str, Any] | None:
    found = _kept(op, kind, namespace, uid)
    return json.loads(found.body) if found is not None else None


def current_body(op: Operator, kind: Kind, namespace: str, uid: str) -> dict[str, Any] | None:
    """The resource as the index has it, with our own last status write; None once it is gone."""
    body = owner_body(op, kind, namespace, uid)
    return _fresher(op, body) if body is not None else None


def _fresher(op: Operator, body: dict[str, Any]) -> dict[str, Any]:
    """The body, with our own last status write (and its resourceVersion) if the watch has not
    shown it yet."""
    uid = body["metadata"]["uid"]
    written = op.written.get(uid)
    seen = int(body["metadata"].get("resourceVersion") or 0)
    if written is None:
        return body
    if written[0] <= seen:
        del op.written[uid]  # the watch has caught up: nothing to keep
        return body
    return {
        **body,
        "metadata": {**body["metadata"], "resourceVersion": str(written[0])},
        "status": written[1],
    }


def _jobs(op: Operator, namespace: str, uid: str) -> tuple[JobState, ...]:
    """The resource's Jobs from the index, and a Job this operator created that the index does
    not show yet (its watch lags our own writes): never taken for lost, never created twice."""
    index = op.indexes["jobs_by_owner"]
    jobs = tuple(index.get((namespace, uid), [])) if (namespace, uid) in index else ()
    created = op.created_jobs.get(uid)
    if created is not None:
        if any(j.name == created.name for j in jobs):
            op.created_jobs.pop(uid, None)
        else:
            jobs = (*jobs, created)
    return jobs


def _pods(op: Operator, namespace: str, job: str) -> list[PodState]:
    index = op.indexes["pods_by_job"]
    return list(index.get((namespace, job), [])) if (namespace, job) in index else []


def running_uids(op: Operator, namespace: str) -> Collection[str]:
    """Resources with an unfinished Job in the namespace: kept up to date from the Jobs' events
    (`job_seen`) rather than by scanning the index, which would make every decision O(Jobs). Jobs
    created but not shown by the index yet are the queue's `started`."""
    return op.unfinished.get(namespace, {}).keys()


def job_seen(op: Operator, job: JobState | None, seen: JobState) -> None:
    """Track which resources have unfinished Jobs, per namespace, from one Job's event (`job`,
    None once deleted; `seen`, its last state). A Job the watch has shown is the index's from
    then on: the placeholder kept since its creation (`_jobs`) goes, or a Job created and deleted
    between two reconciles would be taken for one that still runs."""
    name, namespace = seen.name, seen.namespace
    placeholder = op.created_jobs.get(seen.uid)
    if placeholder is not None and placeholder.name == name:
        del op.created_jobs[seen.uid]
    by_uid = op.unfinished.setdefault(namespace, {})
    previous = op.job_owners.pop((namespace, name), None)
    if previous is not None and previous in by_uid:
        by_uid[previous].discard(name)
        if not by_uid[previous]:
            del by_uid[previous]
    if job is not None and not job.finished:
        by_uid.setdefault(job.uid, set()).add(name)
        op.job_owners[(namespace, name)] = job.uid


async def reconcile(op: Operator, kind: Kind, body: dict[str, Any]) -> None:
    """Reconcile one resource (errors are counted, then left to the caller to retry)."""
    uid = body["metadata"]["uid"]
    try:
        began = time.monotonic()
        try:
            await _reconcile(op, kind, _fresher(op, body))
        except StaleDecision:  # decided on a version that is no longer current: once more, on the latest
            meta = body["metadata"]
            latest = await op.kube.read_resource(kind, meta["namespace"], meta["name"])
            if latest is not None and latest["metadata"]["uid"] == uid:
                await _reconcile(op, kind, latest)
        metrics.RECONCILE_SECONDS.labels(kind.kind).observe(time.monotonic() - began)
    except Exception as exc:
        metrics.ERRORS.labels(kind.kind, type(exc).__name__).inc()
        cap = KIND_UNKNOWN_RETRY_SECONDS if kind_not_yet_known(exc) else None
        op.backoff.failed(uid, time.monotonic(), cap=cap)
        raise


async def _reconcile(op: Operator, kind: Kind, body: dict[str, Any]) -> None:
    meta = body["metadata"]
    if meta.get("deletionTimestamp"):
        if FINALIZER in (meta.get("finalizers") or []):
            await _finalize(op, kind, body)
        return
    body = await _with_finalizer(op, kind, body)
    res = observed(kind, body)
    decision = await _decide(op, res, str(meta.get("creationTimestamp", "")))
    if decision is None:
        return
    if log.isEnabledFor(logging.DEBUG):
        log.debug("%s/%s generation %d: %s", res.namespace, res.name, res.generation, _summary(decision))
    await _act(op, res, body, decision)
    _schedule(op, res, decision)
    await _write_status(op, kind, res, body, decision)
    if decision.outcome_recorded is not None or decision.state.phase in (Phase.SUCCEEDED, Phase.FAILED):
        wake_namespace(op, res.namespace)  # a slot may have come free


async def _with_finalizer(op: Operator, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
    """The resource with the cleanup finalizer, where its deletion policy wants one."""
    meta = body["metadata"]
    if not _wants_finalizer(body) or FINALIZER in (meta.get("finalizers") or []):
        return body
    updated = await op.kube.set_finalizers(
        kind,
        meta["namespace"],
        meta["name"],
        str(meta["resourceVersion"]),
        [*(meta.get("finalizers") or []), FINALIZER],
    )
    return {**body, "metadata": updated["metadata"]}


async def _act(op: Operator, res: Observed, body: dict[str, Any], decision: Decision) -> None:
    """The Jobs the decision stops and starts."""
    if decision.stop_job is not None:  # superseded: its pod goes first, then the Job (supersede.py)
        await runs.delete(op.kube, decision.stop_job, propagation="Foreground")
    if decision.remove_annotation:  # a stop followed, or asked of no run (stops.py)
        await op.kube.remove_annotation(res.kind, res.namespace, res.name, decision.remove_annotation)
    if decision.job is not None:
        try:
            await _start_job(op, decision.job)
        except Exception as exc:
            op.queue.forget(res.namespace, res.uid)  # the reservation goes back
            if isinstance(exc, JobNameTaken):  # retried with backoff, and said
                await post_event(op, body, "Warning", "JobNameTaken", str(exc))
            if isinstance(exc, CredentialsUnavailable | ScopeTooLarge):  # likewise
                await post_event(op, body, "Warning", "StoreCredentialsUnavailable", str(exc))
            raise


async def _write_status(
    op: Operator, kind: Kind, res: Observed, body: dict[str, Any], decision: Decision
) -> None:
    """The decision's Events, its status (fenced by the version it was decided on) and the
    catalog's record."""
    patch = status_patch(res.status, decision.status)
    # The Events first, each named after the state it reaches (events.transition_key): posted
    # again by anyone (a retry, a replica that took over before the status write landed), it is a
    # 409, not a second Event; and a status write that lands always has its Event.
    transition = transition_key(decision.status)
    for event in decision.events:
        await post_event(op, body, event.type, event.reason, event.message, transition=transition)
    decided_on = str(body["metadata"].get("resourceVersion") or "")
    if patch:
        try:
            written = await op.kube.patch_status(kind, res.namespace, res.name, patch, decided_on)
        except KubeError as exc:
            if exc.status == 409:
                raise StaleDecision(f"{res.namespace}/{res.name} changed since version {decided_on}") from exc
            raise
        now_written = CustomResource.of(written)
        op.written[res.uid] = (int(now_written.metadata.resource_version), now_written.status)
    for event in decision.events:
        metrics.TRANSITIONS.labels(kind.kind, str(decision.state.phase), event.reason).inc()
    if patch or decision.outcome_recorded is not None or res.uid in op.catalog_behind:
        await sync_catalog(op, body, decision.status, decision.outcome_recorded)


def _summary(decision: Decision) -> str:
    """One line of what was decided, for the debug log."""
    decided = decision.state
    acts = [
        f"{decided.phase}/{ready_reason(decided)} observed={decided.observed_generation}",
        f"jobName={decided.job_name}",
        *([f"create {decision.job.generation}"] if decision.job is not None else []),
        *([f"stop {decision.stop_job.name}"] if decision.stop_job is not None else []),
        *([f"waiting {decision.waiting}"] if decision.waiting else []),
        *(["recheck"] if decision.recheck else []),
    ]
    return "; ".join(acts)


def _wants_finalizer(body: dict[str, Any]) -> bool:
    """Only deletionPolicy Delete has work to do at deletion (Jobs go with their owner)."""
    return (body.get("spec") or {}).get("deletionPolicy") == "Delete"


def _image_ref(op: Operator, res: Observed) -> ImageState | None:
    """The ImageGeneration a VideoGeneration's imageRef names, from the ImageGenerations' index
    (None when there is no such one, or no imageRef)."""
    ref = res.spec.get("imageRef")
    if not isinstance(ref, dict) or not ref.get("name"):
        return None
    index = op.indexes.get(f"{IMAGE_GENERATION.plural}_by_uid") or {}
    for (namespace, _uid), kept in index.items():
        if namespace != res.namespace:
            continue
        for entry in kept:
            body = json.loads(entry.body)
            if (body.get("metadata") or {}).get("name") == ref["name"]:
                return image_state(body)
    return None


async def _decide(op: Operator, res: Observed, created: str) -> Decision | None:
    """The decision, with a finished Job's outcome read outside any lock; a slot reserved under
    the namespace's lock. None when the outcome cannot be read now (the store is away)."""
    world = await _observed(op, res)
    first = decide(res, world)
    if first.needs_cancel:  # a superseded run's Job is gone: stop its provider work first
        stopped = await _superseded_stopped(op, res, world)
        if stopped is None:
            return None
        world, first = stopped, decide(res, stopped)
    if first.needs_outcome is not None:
        read = await _with_outcome(op, res, world, first.needs_outcome)
        if read is None:
            return None
        world = read
    annotation = None
    if first.job is not None or first.waiting == "Queued":  # it may start now
        annotation, world = await _with_namespace_rules(op, res, world)
    decision = await _admitted(op, res, created, world, annotation)
    if decision is not None and (
        decision.job is not None or any(e.reason == INPUT_REFUSED for e in decision.events)
    ):
        audited(res, world.crossed, started=decision.job is not None)  # once a Job, once a refusal
    metrics.QUEUE_LENGTH.set(op.queue.length())
    return decision


async def _observed(op: Operator, res: Observed) -> World:
    """What the decision reads of the cluster: the resource's Jobs, its LoRAs and image, its
    starting pod's problem, its held Workload, its stored version (nothing started yet)."""
    jobs = _jobs(op, res.namespace, res.uid)
    starting = [j for j in jobs if not j.finished and not j.ready]
    lora_index = op.indexes["loras_by_name"]
    loras: dict[str, LoraState | None] = {}
    for ref in lora_refs(res.spec):  # another namespace's too: a LoRA shared with this owner
        where = lora_location(ref, res.namespace)
        loras[lora_key(ref)] = next(iter(lora_index.get(where, [])), None) if where in lora_index else None
    pods = _pods(op, res.namespace, starting[-1].name) if starting else []
    held = starting[-1] if starting and starting[-1].suspended and starting[-1].queue else None
    workload_read, workload = await read_workload(op, held) if held is not None else (False, None)
    moment = now()
    problem = pod_problem(pods, moment)
    if op.store_secrets is not None and missing_copy(problem, op.store_secrets.name):
        op.store_secrets.forget(res.namespace)  # deleted since it was made: made again
        await op.store_secrets.ensure(res.namespace)
    return World(
        now=moment,
        jobs=jobs,
        pod_problem=problem,
        pod_problem_changes_at=changes_at(pods, moment),
        # a Job held suspended (Kueue) has no pod by design: nothing to ask about
        creation_problem=(
            await _creation_problem(op, starting[-1])
            if starting and not pods and not starting[-1].suspended
            else ""
        ),
        loras=loras,
        image=_image_ref(op, res),
        may_start=False,
        missing_credentials=missing_credentials(run_provider(res.spec, loras), op.settings),
        gpus_refused=_gpus_refused(op, res, run_provider(res.spec, loras)),
        prices=op.settings.prices,
        cancellable=cancellable(),
        stored_version=await _stored_version(op, res),
        workload=workload,
        workload_read=workload_read,
        verdict_refusals=await verdict_refusals(op, res.uid, _verdicts_asked(res)),
        crossed=crossed(op, res),
    )


def _gpus_refused(op: Operator, res: Observed, provider: str) -> tuple[str, str] | None:
    """Why the cluster's chart says no node, or no controller it runs, can give the GPUs the spec
    asks for (jobs.refused); None where it can, or where the run holds no GPU of its own."""
    found = refused(res.kind.kind, res.spec, provider, op.settings)
    return (found.reason, found.message) if found is not None else None


def _verdicts_asked(res: Observed) -> list[tuple[int, int]]:
    """The (version, evaluation) pairs its verdicts annotation names, for a kind that follows it."""
    if not controller_kind(res.kind.kind).verdicts:
        return []
    return verdicts_asked(res.annotations.get(VERDICTS_ANNOTATION))


async def _superseded_stopped(op: Operator, res: Observed, world: World) -> World | None:
    """The world once a superseded run's provider work is stopped; None when the store is away
    (tried again, rather than leave its requests running)."""
    superseded = await stop_superseded(op, res.uid)
    if superseded is None:
        op.backoff.failed(res.uid, time.monotonic())
        return None
    return replace(world, superseded=superseded)


async def _with_outcome(op: Operator, res: Observed, world: World, job: JobState) -> World | None:
    """The world with the finished Job's outcome (or our failure to read it); None while its
    pod's end is still to come."""
    pods = _pods(op, res.namespace, job.name)
    if job.failed_reason and end_may_come(pods, world.now):
        # The Job's failure came before its pod's end (two watches): the pod's event, with the
        # worker's termination message (e.g. DatasetTooSmall's counts), wakes us again (not a
        # pod stuck on a lost node: that end never comes).
        return None
    outcome = await read_outcome(job, res, termination_message(pods), op.store)
    if isinstance(outcome, ResultUnreadable):  # our own read failed: said, and read again
        return replace(world, unreadable=outcome)
    return replace(world, outcome=outcome)


async def _with_namespace_rules(op: Operator, res: Observed, world: World) -> tuple[str | None, World]:
    """For a run that may start: its namespace's budget annotation, and the world with the
    owner rule's answer and whether its likeness baseline is cached."""
    metadata = await _namespace_metadata(op, res.namespace)
    annotations = metadata[0] if metadata is not None else None
    annotation = annotations.get(ANNOTATION) if annotations is not None else None
    owners = annotations.get(owners_rule.ANNOTATION) if annotations is not None else None
    owner = str(res.spec.get("owner", ""))
    world = replace(
        world,
        owner_problem=owners_rule.owner_problem(res.namespace, owner, owners, op.settings.owner_policy),
        baseline_cached=await _baseline_cached(op, res, run_provider(res.spec, world.loras)),
    )
    return annotation, world


async def _admitted(
    op: Operator, res: Observed, created: str, world: World, annotation: str | None
) -> Decision | None:
    """The decision under the namespace's lock (no I/O in there): its place in the queue, its
    budget, a slot reserved where it starts; None when it was deleted meanwhile."""
    async with op.admission(res.namespace):
        if _forgotten(op, res.kind, res.namespace, res.uid):
            # Deleted while this decision read the namespace (its DELETED event, or a relist that
            # lacked it, forgot it meanwhile): it takes no place in the queue, where it would stand
            # before every later resource of its namespace for good, and starts nothing.
            op.queue.forget(res.namespace, res.uid)
            return None
        running = running_uids(op, res.namespace)
        op.queue.seen(res.namespace, running)
        world = replace(world, may_start=op.queue.may_start(res.namespace, res.uid, created, running))
        decision = decide(res, world)
        snapshot, cached = decision.job, world.baseline_cached
        admission = _admission(op, res, annotation, snapshot, cached) if snapshot is not None else Admission()
        if admission != Admission():
            world = replace(
                world,
                over_budget=admission.over,
                skip_evaluation=admission.skip_evaluation,
                budget_left=admission.left,
            )
            decision = decide(res, world)
        if decision.job is not None:
            op.queue.start(res.namespace, res.uid)  # reserved
        elif decision.waiting == "Queued":
            op.queue.wait(res.namespace, res.uid, created)
        elif decision.waiting or decision.state.phase in (Phase.SUCCEEDED, Phase.FAILED):
            op.queue.forget(res.namespace, res.uid)
        return decision


CREATION_GRACE_SECONDS = 5.0  # a Job younger than this may simply not have its pod yet


async def _creation_problem(op: Operator, job: JobState) -> str:
    """Why a Job that has had time to create its pod has none (its FailedCreate Event), or "".
    A missing worker ServiceAccount (its namespace deleted and made again) is made again here."""
    started = parse_timestamp(job.start_time) if job.start_time else None
    if started is None or (now() - started).total_seconds() < CREATION_GRACE_SECONDS:
        return ""
    problem = await op.kube.creation_failure(job.namespace, runs.pods_job(job))
    account = op.settings.worker_service_account
    if f'serviceaccount "{account}" not found' in problem and op.settings.manage_worker_access:
        op.worker_access.discard(job.namespace)
        await _worker_access(op, job.namespace)
    return problem


async def _baseline_cached(op: Operator, res: Observed, provider: str) -> bool:
    """A LoraTraining's or LoraEvaluation's pictures without the LoRA are stored already
    (likeness/baselines/), so its estimate leaves them out; False when unknown (no store, or it
    cannot be read now: the estimate then counts them, as it is at most)."""
    if op.store is None or not provider or res.kind.likeness_plan is None:
        return False
    from contentgen.pipeline.likeness.plan import estimate_baseline_cached

    spec = {**res.spec, "provider": provider}
    return await asyncio.to_thread(estimate_baseline_cached, op.store, res.kind.kind, spec)


async def _stored_version(op: Operator, res: Observed) -> int:
    """For a status from before runVersion about to run a new generation: the highest version
    number in the store, so that the new run takes a number no earlier run wrote under."""
    was = res.state
    if op.store is None or was.run_version or not was.observed_generation:
        return 0
    if was.observed_generation == res.generation:
        return 0
    owner, kind = str(res.spec.get("owner")), res.kind.catalog_type

    def highest() -> int:
        stored = [i.key for root in keys.output_roots(kind, owner, res.uid) for i in op.store.list(root)]
        return max(keys.versions_in(kind, owner, res.uid, stored), default=0)

    return await asyncio.to_thread(highest)


async def _namespace_metadata(op: Operator, namespace: str) -> tuple[dict[str, str], dict[str, str]] | None:
    """The namespace's annotations (`contentgen.io/budget`, `contentgen.io/owners`) and labels (the
    Kueue queue of its GPU Jobs), read at most every half minute per namespace, in cluster-wide
    installs only (a namespaced install may not read Namespace objects: None)."""
    if op.settings.watch_namespaces:
        return None
    async with op.lock(f"budget/{namespace}"):  # one read for the reconciles that ask at once
        cached = op.namespace_metadata.get(namespace)
        if cached is not None and time.monotonic() - cached[0] < NAMESPACE_CACHE_SECONDS:
            return cached[1], cached[2]
        annotations, labels = await op.kube.namespace_metadata(namespace)
        op.namespace_metadata[namespace] = (time.monotonic(), annotations, labels)
        return annotations, labels


def _admission(
    op: Operator, res: Observed, annotation: str | None, snapshot: SpecSnapshot, baseline_cached: bool
) -> Admission:
    """Whether `res` may start its Job (`snapshot`) within its budgets, and with its likeness
    evaluation, from the resources' spend (an index) and the namespace's `contentgen.io/budget`
    annotation."""
    if problem := annotation_problem(annotation):
        log.warning("namespace %s: %s; its budget comes from the operator settings", res.namespace, problem)
        annotation = None
    budgets = op.settings.budgets
    if budgets == Budgets() and annotation is None:
        return Admission()
    spenders = [
        kept.spend
        for kind in KINDS.values()
        for store in (op.indexes.get(f"{kind.plural}_by_uid") or {}).values()
        for kept in store
    ]
    owner = str(res.spec.get("owner", ""))
    prices, spec = op.settings.prices, snapshot.priced_spec()
    cost = res.state.cost.wire() if res.state.cost is not None else None
    estimate = estimated(res.kind.kind, spec, prices, cost, baseline_cached=baseline_cached).estimated_usd
    training = without_evaluation(res.kind.kind, spec)
    alone = estimated(res.kind.kind, training, prices, cost).estimated_usd if training is not None else None
    limits = limits_for(res.namespace, owner, budgets, annotation)
    return admit(
        res.uid, res.namespace, owner, estimate, month_of(now()), spenders, limits, without_evaluation=alone
    )


async def _worker_access(op: Operator, namespace: str) -> None:
    """The worker's ServiceAccount and RoleBinding in `namespace`, once per namespace (again when
    a Job could not create its pod for want of them)."""
    if op.settings.manage_worker_access and namespace not in op.worker_access:
        async with op.lock(f"worker-access/{namespace}"):  # once per namespace, not once per resource
            if namespace not in op.worker_access:
                await op.kube.ensure_worker_access(
                    namespace,
                    op.settings.worker_service_account,
                    op.settings.worker_cluster_role,
                    op.settings.worker_service_account_annotations,
                )
                op.worker_access.add(namespace)


async def _start_job(op: Operator, snapshot: SpecSnapshot) -> None:
    namespace = snapshot.namespace
    await _worker_access(op, namespace)
    if op.store_secrets is not None:  # the workers' store credentials there (store_secret.py)
        await op.store_secrets.ensure(namespace)
    gpus = provider_entry(snapshot.provider).own_gpus
    metadata = await _namespace_metadata(op, namespace) if gpus else None
    queue = metadata[1].get(op.settings.queue_name_label, "") if metadata is not None else ""
    manifest = render_run(snapshot, op.settings, namespace_queue=queue)
    if op.run_credentials is not None:  # before the Job, so that its pods find their Secret
        await op.run_credentials.issue(snapshot, str(manifest["metadata"]["name"]))
    created = await runs.create(op.kube, manifest)  # JobNameTaken: another's Job is never deleted
    if created:
        metrics.JOBS_CREATED.labels(snapshot.kind).inc()
    # What the Job's watch will show, until it does: with its inputs and provider, which a spec
    # change that comes first needs to decide whether it supersedes the run.
    placeholder = runs.state_of(manifest)
    assert placeholder is not None
    op.created_jobs[snapshot.uid] = placeholder


def _schedule(op: Operator, res: Observed, decision: Decision) -> None:
    """Who wakes this resource up next: a LoraTraining's or ImageGeneration's events, or the
    backoff timer."""
    for waiters in (*op.lora_waiters.values(), *op.image_waiters.values()):
        waiters.pop(res.uid, None)
    if decision.waiting in LORA_WAITS:
        for ref in lora_refs(res.spec):
            op.lora_waiters.setdefault(lora_location(ref, res.namespace), {})[res.uid] = res.kind.kind
    image = (res.spec.get("imageRef") or {}).get("name")
    if decision.waiting in IMAGE_WAITS and image:
        op.image_waiters.setdefault((res.namespace, str(image)), {})[res.uid] = res.kind.kind
    if decision.recheck or (
        decision.waiting
        and decision.waiting not in (*LORA_WAITS, *IMAGE_WAITS, "Queued", "MissingCredentials")
    ):
        # A Job Kueue holds: what Kueue says of it changes with nothing on the Job to announce it.
        reason = ready_reason(decision.state)
        held = decision.recheck and reason == "Queued" and may_read(op)
        # A result the store cannot give now: read again often enough to record it soon after the
        # store is back, and within RESULT_READ_SECONDS when it is not.
        cap = RECHECK_SECONDS if held else RESULT_RETRY_SECONDS if reason == "ResultUnreadable" else None
        op.backoff.failed(res.uid, time.monotonic(), cap=cap)
    else:
        op.backoff.reset(res.uid)
    if decision.recheck_in is not None:
        op.backoff.no_later_than(res.uid, time.monotonic() + decision.recheck_in)


# --- what wakes resources up -------------------------------------------------------------------


def wake(op: Operator, kind_name: str, namespace: str, uid: str) -> None:
    op.work.add((kind_name, namespace, uid))


async def worker(op: Operator) -> None:
    """Reconcile queued resources, one at a time, from the latest state in the index."""
    while True:
        key = await op.work.get()
        kind_name, namespace, uid = cast(tuple[str, str, str], key)
        try:
            kind = KINDS[kind_name]
            body = owner_body(op, kind, namespace, uid)
            if body is not None:  # gone since it was queued
                await _quietly(op, kind, body)
        finally:
            op.work.done(key)
            metrics.WORK_QUEUE.set(len(op.work))


def wake_namespace(op: Operator, namespace: str) -> None:
    """A Job slot may be free: the first waiting resources of the namespace try to start."""
    for uid in op.queue.first_waiting(namespace, op.queue.free(namespace, running_uids(op, namespace))):
        for kind in KINDS.values():
            if _kept(op, kind, namespace, uid) is not None:  # which kind it is; no need to decode
                wake(op, kind.kind, namespace, uid)
                break


def wake_image_waiters(op: Operator, namespace: str, image_name: str) -> None:
    for uid, kind_name in list(op.image_waiters.get((namespace, image_name), {}).items()):
        wake(op, kind_name, namespace, uid)


def wake_waiters(op: Operator, kind: ControllerKind, namespace: str, name: str) -> None:
    """Wake the runs waiting for `kind`'s resource `name` (none where no reference names the kind)."""
    if kind.waiters is not None:
        for uid, kind_name in list(kind.waiters(op).get((namespace, name), {}).items()):
            wake(op, kind_name, namespace, uid)


def owner_of(labels: dict[str, str]) -> tuple[str, str] | None:
    kind, uid = labels.get(LABEL_KIND), labels.get(LABEL_UID)
    return (kind, uid) if kind in KINDS and uid else None


async def _quietly(op: Operator, kind: Kind, body: dict[str, Any]) -> None:
    try:
        await reconcile(op, kind, body)
    except Exception as exc:  # the backoff brings it back
        meta = body["metadata"]
        what = f"reconcile of {kind.kind} {meta['namespace']}/{meta['name']}"
        if deleted_meanwhile(exc, kind.plural, meta["name"]):
            log.info("%s: it was deleted meanwhile (%s)", what, one_line(exc))
            return
        report(what, exc, "it is retried with backoff")


# A record found without its resource is marked deleted when a second look this much later finds
# the same (the first may have come before the resource's watch listed it).
SWEEP_CONFIRM_SECONDS = 30.0


def sweep_due(since: float, resync_interval: float, confirming: bool, leading: bool) -> bool:
    """Whether the safety net looks for records whose resource is gone, `since` seconds after its
    last look. A standby does not look (it may not write), nor count a look it did not take: a
    replica that becomes the leader looks at once, not a resync interval after it started."""
    return leading and (since >= resync_interval or (confirming and since >= SWEEP_CONFIRM_SECONDS))


async def safety_net(op: Operator) -> None:
    """Every few seconds: resources whose backoff is due; every resync interval: every resource
    that is not finished, catalog writes still owed, and catalog records whose resource is gone."""
    last_resync = time.monotonic()
    last_sweep = last_resync - op.settings.resync_interval_seconds  # a first look at once
    step = min(op.settings.reconcile_interval_seconds, 5.0)
    remarking: asyncio.Task[int] | None = None
    while True:
        await asyncio.sleep(step)
        clock = time.monotonic()
        resync = clock - last_resync >= op.settings.resync_interval_seconds
        if resync:
            last_resync = clock
        # Catalog records of resources that are gone: a look every resync, and the second look
        # that confirms a first one's findings soon after it rather than a resync later.
        since = clock - last_sweep
        if sweep_due(since, op.settings.resync_interval_seconds, bool(op.catalog_missing), may_act()):
            last_sweep = clock
            op.spawn(sweep_gone(op))
        if op.deletions_behind and (remarking is None or remarking.done()):
            remarking = op.spawn(mark_gone_again(op))  # deletions the catalog could not take
        for kind, namespace, uid in _to_wake(op, clock, resync):
            wake(op, kind, namespace, uid)


def _to_wake(op: Operator, clock: float, resync: bool) -> Iterator[tuple[str, str, str]]:
    """The resources (kind, namespace, uid) to look at again now: those whose backoff is due or
    whose catalog write is owed, and on a resync every one that is not finished."""
    for kind in KINDS.values():
        index = op.indexes.get(f"{kind.plural}_by_uid")
        for (namespace, uid), stored in list(index.items()) if index is not None else []:
            kept = next(iter(stored), None)
            if kept is None:
                continue
            due = uid in op.backoff.next_at and op.backoff.due(uid, clock)
            # bodies are decoded only on a resync, not every few seconds for every resource
            if due or uid in op.catalog_behind or (resync and not settled(json.loads(kept.body), op)):
                yield kind.kind, namespace, uid


def settled(body: Mapping[str, Any], op: Operator) -> bool:
    """Nothing to do: the current generation has finished and no Job of it is left running."""
    resource = CustomResource.of(body)
    status = read_common(resource.status)  # every resource at every resync: not its versions
    meta = resource.metadata
    if status.phase not in (Phase.SUCCEEDED, Phase.FAILED):
        return False
    if status.observed_generation != meta.generation:
        return False
    return not any(not j.finished for j in _jobs(op, meta.namespace, meta.uid))


# --- deletion --------------------------------------------------------------------------------------


async def _finalize(op: Operator, kind: Kind, body: dict[str, Any]) -> None:
    meta = body["metadata"]
    namespace, uid = meta["namespace"], meta["uid"]
    jobs = _jobs(op, namespace, uid)
    for job in jobs:
        if not job.deleting:  # its pods first: the Job's deletion is their end (cleanup.py)
            await runs.delete(op.kube, job, propagation="Foreground")
    grace = op.settings.worker_termination_grace_period_seconds
    wait = pods_pending(jobs, parse_timestamp(meta.get("deletionTimestamp")), grace, now())
    if wait > 0:  # the Job's deletion wakes it, or this
        log.info("%s/%s: cleanup waits up to %.0f s for its worker pod to end", namespace, meta["name"], wait)
        op.backoff.recheck_at(uid, time.monotonic() + wait)
        return
    retry = op.backoff.attempts.get(uid, 0)
    await delete(op, kind, body, retry)
    remaining = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
    await op.kube.set_finalizers(
        kind, meta["namespace"], meta["name"], str(meta["resourceVersion"]), remaining
    )
