"""What to do about one resource, given what is observed: a pure function.

    decide(resource, world) -> Decision(status, job to create, events, ...)

The lifecycle of one generation: Pending (Queued | LoraNotReady | JobCreated) → Running →
Succeeded | Failed. A spec change while a Job runs either waits for that Job (its outcome is
recorded as the version it made, and then the new generation runs) or, when the change makes the
run's output unwanted and its provider can be told to stop (supersede.py), supersedes it: the Job
is stopped (Superseding), then its provider requests are cancelled, what was billed is recorded
with an Event (Superseded) and the new generation runs. Every run gets a version number of its own
(status.runVersion, never reused) and writes its outputs under it; every run that succeeds adds
that version to status.versions, of every kind, and earlier versions stay.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from contentgen.api import (
    Cost,
    Kind,
    Phase,
    RunFailure,
    RunResult,
    SpecSnapshot,
    format_time,
    parse_timestamp,
)
from contentgen.api.common import CommonStatus, Condition
from contentgen.api.inputs import SharedInput
from contentgen.api.lora import (
    PROMOTED_ANNOTATION,
    STOP_ANNOTATION,
    VERDICTS_ANNOTATION,
    LoraTrainingStatus,
    promotions_of,
    verdicts_of,
)
from contentgen.api.providers import provider_entry
from contentgen.api.reasons import PENDING, REASONS
from contentgen.api.references import Catalog, Refusal, Resolved, resolve
from contentgen.api.references import lora_key as lora_key  # the reconciler's and the preview's too
from contentgen.api.references import lora_location as lora_location
from contentgen.api.references import lora_refs as lora_refs
from contentgen.api.run import RunBudget, likeness_reasons
from contentgen.api.versions import adopt_legacy, next_version, set_version_cost
from contentgen.pricing import PriceTable, estimated, settled, without_evaluation
from contentgen.providers.cancel import summary
from contentgen.store.access import REASON as ACCESS_REFUSED
from contentgen.store.access import Crossing, first_refusal
from contentgen.store.keys import lora_of_uri

from . import stops
from .conditions import conditions_for, set_condition
from .kinds import ControllerKind, controller_kind
from .kueue import Workload, explain
from .observe import ImageState, JobState, LoraState
from .pods import NODE_LOST
from .status import latest_version, likeness, read_common, read_status, ready_reason, versions
from .supersede import Superseded, spent, superseding

JOB_FAILURES = {
    "DeadlineExceeded": "the Job ran longer than its activeDeadlineSeconds",
    "BackoffLimitExceeded": "the worker failed on every attempt (backoffLimit reached)",
    "PodFailurePolicy": "the worker failed with an error that retrying cannot fix",
}


@dataclass(frozen=True)
class Observed:
    """The resource as the API server has it; `state` is its status typed (status.py)."""

    kind: Kind
    name: str
    namespace: str
    uid: str
    generation: int
    spec: dict[str, Any]
    status: dict[str, Any]
    annotations: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def state(self) -> CommonStatus:
        return read_status(self.kind, self.status)


@dataclass(frozen=True)
class ResultUnreadable:
    """The operator's own read of a finished Job's stored result failed (the store is away): not
    the worker's failure, which comes as a RunFailure whatever its reason."""

    uri: str
    error: str


# How long after its Job finished a run whose result the operator cannot read (the store is away)
# is shown as still being recorded; then it is Failed (StoreUnavailable), so no run stays Running.
RESULT_READ_SECONDS = 600.0
RESULT_RETRY_SECONDS = 30.0  # the longest wait between two reads of it


@dataclass(frozen=True)
class World:
    """Everything else the decision depends on."""

    now: datetime
    jobs: tuple[JobState, ...] = ()  # this resource's Jobs
    loras: Mapping[str, LoraState | None] = field(default_factory=dict)  # referenced LoraTrainings
    # A VideoGeneration's imageRef: the ImageGeneration it names (None: there is none)
    image: ImageState | None = None
    may_start: bool = True  # a Job may start in this namespace now (concurrency limit)
    missing_credentials: str = ""  # the provider key the operator is not configured with
    gpus_refused: tuple[str, str] | None = None  # (reason, message): no node can give what it asks
    outcome: RunResult | RunFailure | None = None  # of `Decision.needs_outcome`, once read
    unreadable: ResultUnreadable | None = None  # that outcome could not be read (the store is away)
    pod_problem: str = ""  # why the running Job's pod cannot start (a missing Secret, unschedulable)
    pod_problem_changes_at: datetime | None = None  # when it changes unannounced (pods.changes_at)
    creation_problem: str = ""  # why the Job controller cannot create its pod (quota, LimitRange, ...)
    # spend (issue 12): the price table status.cost is reckoned with, and why a start would
    # exceed a monthly budget ("" when it would not; see budget.py)
    prices: PriceTable | None = None
    over_budget: str = ""
    # why the run starts without its likeness evaluation: its budget covers only the training
    skip_evaluation: str = ""
    # what the monthly budgets leave the run, and whose budget it is (None: no budgets)
    budget_left: tuple[float, str] | None = None
    # why the resource's owner may not be used in its namespace ("" when it may; owners.py)
    owner_problem: str = ""
    # a spec change during a run (supersede.py): the providers whose requests the operator can
    # stop, and, once `Decision.needs_cancel` was acted on, what stopping the old run did
    cancellable: frozenset[str] = frozenset()
    superseded: Superseded | None = None
    # the highest version number found in the store, for statuses from before runVersion (an
    # earlier run may have stored objects under a number the status does not remember)
    stored_version: int = 0
    # The Kueue Workload of the Job Kueue holds suspended (kueue.py), once read (`workload_read`:
    # not when Kueue's Workloads cannot be read); None: Kueue has made none for it yet.
    workload: Workload | None = None
    workload_read: bool = False
    # A LoraEvaluation's pictures without the LoRA are stored already (its estimate leaves them out)
    baseline_cached: bool = False
    # Why each (version, evaluation) the resource's verdicts annotation names cannot be that
    # version's verdict ("" where it can), from the catalog's record; None where it was not read
    # (then only what the status shows is checked: mirror_verdicts)
    verdict_refusals: Mapping[tuple[int, int], str] | None = None
    # The spec's addresses that name other owners' keys (store/access.py): each refused or shared
    crossed: tuple[Crossing, ...] = ()


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class Decision:
    status: dict[str, Any]  # the status to write
    state: CommonStatus  # it, typed
    job: SpecSnapshot | None = None  # create a Job running this snapshot
    needs_outcome: JobState | None = None  # read this Job's outcome and decide again
    events: list[Event] = field(default_factory=list)
    waiting: str = ""  # Queued | LoraNotReady | LoraNotFound | ...: look again later
    outcome_recorded: RunResult | None = None  # a result whose outputs the catalog should get
    recheck: bool = False  # look again after a while even if nothing changes (a Job's pod not running)
    recheck_in: float | None = None  # and this many seconds from now at the latest
    stop_job: JobState | None = None  # delete this superseded Job (and its pod, before it goes)
    remove_annotation: str = ""  # remove this annotation of the resource (a stop followed: stops.py)
    needs_cancel: bool = False  # the superseded Job is gone: cancel its provider work, decide again


def decide(res: Observed, world: World) -> Decision:
    """The next step for a resource: record a finished Job's outcome, follow (or stop) the Job in
    flight, keep a finished generation as it is, or start the current generation's run."""
    # `status` is what is written back (unknown fields kept); `was` is it typed, read again after
    # each write that a later read depends on.
    status = adopt_legacy(res.kind.kind, copy.deepcopy(res.status))
    was = res.state
    # Jobs of generations before the one the status shows were recorded or superseded already.
    seen = was.observed_generation
    jobs = sorted((j for j in world.jobs if j.generation >= seen), key=lambda j: j.generation)
    if not jobs and _superseding(was, res):  # the superseded Job and its pod are gone
        if world.superseded is None:
            return Decision(status=res.status, state=res.state, needs_cancel=True)
        return _superseded(res, status, world)
    newest = jobs[-1] if jobs else _lost_job(res, was)
    if newest is not None and not newest.name.startswith("lost:") and was.job_name != newest.name:
        _adopt_start(status, was.cost, newest, world)
        was = read_status(res.kind, status)
    recorded: RunResult | None = None
    if newest is not None and newest.finished and not _recorded(was, newest):
        step = _record_finished(res, status, was, newest, world)
        if isinstance(step, Decision):
            return step
        status, recorded = step
        newest = None  # recorded; the newer generation runs next (below)
        was = read_status(res.kind, status)
    if newest is not None and not newest.finished:
        return _in_flight(res, status, was, newest, world)
    if was.observed_generation == res.generation and was.phase in (Phase.SUCCEEDED, Phase.FAILED):
        return _finish(res, status, world, recorded=recorded)
    return _start(res, status, was.cost, world, recorded)


def _record_finished(
    res: Observed, status: dict[str, Any], was: CommonStatus, job: JobState, world: World
) -> Decision | tuple[dict[str, Any], RunResult | None]:
    """A finished Job whose outcome the status does not show yet, recorded first: the decision
    when that is all for now (its outcome still to be read, or its generation the current one),
    else the status with it recorded, for the newer generation to run."""
    outcome = world.outcome
    if outcome is None and world.unreadable is not None:
        outcome = _unreadable(res, status, job, world.unreadable, world.now)
        if outcome is None:  # still within the bound: said, and read again with backoff
            decision = _finish(res, status, world)
            decision.recheck = True
            return decision
    if outcome is None:
        return Decision(status=res.status, state=res.state, needs_outcome=job)
    status, recorded = _apply_outcome(res, status, was, job, outcome, world.now)
    cost = _settle_cost(status, was, world)  # `was` still holds: an outcome writes no cost nor start
    if recorded is not None:
        set_version_cost(status, recorded.version or 0, cost.actual_usd if cost is not None else None)
    if job.generation == res.generation:
        return _finish(res, status, world, recorded=recorded)
    return status, recorded


def _in_flight(
    res: Observed, status: dict[str, Any], was: CommonStatus, job: JobState, world: World
) -> Decision:
    """The Job still running: stopped when a newer generation supersedes it, else followed."""
    stopping = _superseding(was, res) and was.job_name == job.name
    if job.generation < res.generation and (
        stopping or (why := superseding(job, res.spec, world.cancellable))
    ):
        return _stopping(res, status, was, job, world, "" if stopping else why)
    decision = _finish(res, _running(res, status, was, job, world), world)
    # A pod that is never created sends no event, nor does a deleted pod's grace period running
    # out (NodeLost): look again until it runs, and while none is ready.
    decision.recheck = decision.state.phase == Phase.PENDING or job.ready == 0
    if world.pod_problem_changes_at is not None:  # a backoff's next look may come minutes later
        decision.recheck_in = max(0.0, (world.pod_problem_changes_at - world.now).total_seconds())
    return decision


def _superseding(was: CommonStatus, res: Observed) -> bool:
    """The status says a run of an older generation is being stopped for the current one."""
    return ready_reason(was) == "Superseding" and was.observed_generation < res.generation


def _stopping(
    res: Observed, status: dict[str, Any], was: CommonStatus, job: JobState, world: World, why: str
) -> Decision:
    """Stop `job` for the current generation: its Job is deleted, its pod first (Foreground);
    its provider work is cancelled once both are gone (`_superseded`)."""
    if why:
        message = (
            f"the spec changed (generation {res.generation}) while Job {job.name} ran generation "
            f"{job.generation}, and {why}: stopping it; its provider requests are cancelled once its "
            f"pod is gone, then generation {res.generation} runs"
        )
    else:
        message = was.message or f"stopping Job {job.name} for generation {res.generation}"
    _write(
        status,
        CommonStatus(
            phase=Phase.PENDING, job_name=job.name, observed_generation=job.generation, message=message
        ),
    )
    status["conditions"] = _working(status, res, world.now, "Superseding", message)
    decision = _finish(res, status, world)
    decision.stop_job = None if job.deleting else job
    return decision


def _superseded(res: Observed, status: dict[str, Any], world: World) -> Decision:
    """The superseded run is stopped and its provider work cancelled: record what it cost (nothing
    when nothing was billed; its estimate when something may have been) and run the current
    generation."""
    assert world.superseded is not None
    was = res.state
    old, name, cost = was.observed_generation, was.job_name, was.cost
    counted = list(cost.counted_requests) if cost is not None else []
    stopped = world.superseded
    usage = spent(stopped.outcomes, stopped.completed, counted) if stopped.seen else None
    if world.prices is not None and cost is not None:
        cost = settled(cost, usage, world.prices, was.started_at or world.now)
        status["cost"] = cost.wire()
    status.pop("jobName", None)
    billed = "nothing was billed" if usage == [] else "what it may have billed counts at its estimate"
    message = (
        f"generation {res.generation} superseded generation {old}: Job {name} was stopped; "
        f"{summary(stopped.outcomes) if stopped.seen else 'its provider requests are unknown (no store)'}; "
        f"{billed}"
    )
    decision = _start(res, status, cost, world, None)
    decision.events.insert(0, Event("Normal" if usage == [] else "Warning", "Superseded", message[:1024]))
    return decision


def _lost_job(res: Observed, was: CommonStatus) -> JobState | None:
    """A Job the status says is running but that no longer exists (deleted by its TTL while the
    operator was away, or by hand). Its result, if it left one, is in the store; if not, the
    generation fails with reason JobLost rather than silently paying for a second run."""
    if was.job_name and was.phase in (Phase.PENDING, Phase.RUNNING) and was.observed_generation:
        return JobState(
            name=f"lost:{was.job_name}",
            namespace=res.namespace,
            uid=res.uid,
            generation=was.observed_generation,
            version=_lost_version(res, was),
            failed_reason="JobLost",
            failed_message=f"Job {was.job_name} no longer exists",
        )
    return None


def _declared(res: Observed) -> ControllerKind:
    return controller_kind(res.kind.kind)


def _lost_version(res: Observed, was: CommonStatus) -> int:
    """The version a lost Job was making: status.runVersion (statuses before it: a LoraTraining's
    next version, the unversioned layout of the others)."""
    if was.run_version:
        return was.run_version
    return latest_version(was) + 1 if _declared(res).numbered_before_run_version else 0


def _unreadable(
    res: Observed, status: dict[str, Any], job: JobState, unreadable: ResultUnreadable, now: datetime
) -> RunFailure | None:
    """A finished Job whose stored result cannot be read: for RESULT_READ_SECONDS after it finished,
    the status says so (still Running: the result may well be there); after that, a transient
    StoreUnavailable failure naming where the result and outputs are kept."""
    name = job.name.removeprefix("lost:")
    finished = parse_timestamp(job.finished_at) if job.finished_at else None
    waited = (now - finished).total_seconds() if finished is not None else 0.0
    if waited < RESULT_READ_SECONDS:
        message = (
            f"Job {name} finished; its result {unreadable.uri} cannot be read from the store "
            f"({unreadable.error}); the operator reads it again with backoff, "
            f"and records the run as Failed (StoreUnavailable) {int(RESULT_READ_SECONDS // 60)} minutes "
            "after the Job finished if the store is still away"
        )
        _write(status, CommonStatus(phase=Phase.RUNNING, job_name=name, message=message))
        status["conditions"] = _working(status, res, now, "ResultUnreadable", message)
        return None
    return RunFailure(
        reason="StoreUnavailable",
        message=(
            f"Job {name} finished, and its result {unreadable.uri} could not be read from the store for "
            f"{int(waited // 60)} minutes ({unreadable.error}); whatever the run stored is kept there"
        ),
        transient=True,
        usage=None,
    )


def _recorded(was: CommonStatus, job: JobState) -> bool:
    return (
        was.job_name == job.name.removeprefix("lost:")
        and was.phase in (Phase.SUCCEEDED, Phase.FAILED)
        and was.observed_generation == job.generation
    )


def _conditions(status: dict[str, Any], res: Observed, now: datetime, **kwargs: Any) -> list[dict[str, Any]]:
    return conditions_for(status.get("conditions") or [], generation=res.generation, now=now, **kwargs)


def _working(
    status: dict[str, Any], res: Observed, now: datetime, reason: str, message: str
) -> list[dict[str, Any]]:
    """The conditions of a resource on its way: not Ready, Reconciling for `reason`, not Stalled."""
    return _conditions(
        status, res, now, ready=False, reconciling=True, stalled=False, reason=reason, message=message
    )


# Why a Job's pod does not run: a Pending reason (the Job keeps trying: a quota raised, a node
# added, a Secret created, and it goes on by itself), or its pod stuck on a lost node (pods.py).
POD_PROBLEMS = ("PodNotCreated", "PodNotScheduled", "PodNotStarting", NODE_LOST)


def pod_reason(world: World) -> tuple[str, str]:
    """(reason, what stands in the way) when the pod is not running for a known cause, else ("", "")."""
    if world.creation_problem:
        return "PodNotCreated", world.creation_problem
    if world.pod_problem.startswith(f"{NODE_LOST}: "):
        return NODE_LOST, world.pod_problem.removeprefix(f"{NODE_LOST}: ")
    if world.pod_problem.startswith("Unschedulable"):
        return "PodNotScheduled", world.pod_problem.removeprefix("Unschedulable: ")
    if world.pod_problem:
        return "PodNotStarting", world.pod_problem
    return "", ""


def unschedulable(job: JobState, why: str) -> str:
    """PodNotScheduled's message, in GPUs for a GPU Job: the scheduler counts them as any resource
    ("Insufficient nvidia.com/gpu"), whether every GPU is taken or no node has any."""
    pod = "the pod of" if job.what == "Job" else "a pod of"  # a JobSet's, a TrainJob's: one per node
    if not job.gpus:
        return f"{pod} {job.what} {job.name} cannot be scheduled: {why}"
    resource = job.gpus.split(" ", 1)[-1]
    if f"Insufficient {resource}" in why:
        return (
            f"{pod} {job.what} {job.name} cannot be scheduled: no node has {job.gpus} GPU free (every GPU "
            f"is taken, or no node has one); it starts when one comes free: {why}"
        )
    return f"{pod} {job.what} {job.name} (asking for {job.gpus} GPU) cannot be scheduled: {why}"


def queued(job: JobState, world: World) -> str:
    """Queued's message for a Job held suspended: by Kueue, in Kueue's words where its Workload
    was read. The operator never resumes it, and no deadline runs meanwhile: Kubernetes starts
    activeDeadlineSeconds when the Job is resumed."""
    if not job.queue:
        return (
            f"Job {job.name} is suspended (spec.suspend) and has no pod; it runs when whoever "
            "suspended it resumes it"
        )
    if world.workload_read:
        said = explain(world.workload, world.now)
        where = f" (Workload {world.workload.name})" if world.workload is not None else ""
        return f"{job.what} {job.name} waits in Kueue queue {job.queue!r}: {said}{where}"
    return (
        f"{job.what} {job.name} waits in Kueue queue {job.queue!r}: Kueue holds it suspended until the queue "
        f"admits its workload (kubectl get workloads -n {job.namespace} shows why; kubectl describe job "
        f"-n {job.namespace} {job.name} names it)"
    )


def _running(
    res: Observed, status: dict[str, Any], was: CommonStatus, job: JobState, world: World
) -> dict[str, Any]:
    started, reason, message = _where(res, was, job, world)
    _write(
        status,
        CommonStatus(
            phase=Phase.RUNNING if started else Phase.PENDING,
            job_name=job.name,
            observed_generation=job.generation,
            message=message,
        ),
    )
    stalled = reason == NODE_LOST  # it waits for the node, or for a person
    status["conditions"] = _conditions(
        status,
        res,
        world.now,
        ready=False,
        reconciling=not stalled,
        stalled=stalled,
        reason=reason,
        message=message,
    )
    return status


def _where(res: Observed, was: CommonStatus, job: JobState, world: World) -> tuple[bool, str, str]:
    """Whether the Job's run has started, and the reason and message of where it is."""
    # Running once the pod is ready, or once the worker has reported a stage for this Job; a Job
    # held suspended (Kueue admits it, or evicted it) waits as Queued whatever ran before.
    started = not job.suspended and (job.ready > 0 or (bool(was.stage) and was.job_name == job.name))
    problem, why = ("", "") if job.suspended else pod_reason(world)
    if job.generation < res.generation:
        return (
            started,
            "SpecChanged",
            (
                f"the spec changed (generation {res.generation}) while Job {job.name} runs generation "
                f"{job.generation}; the change runs when it finishes"
            ),
        )
    if problem == NODE_LOST:  # started or not: its pod went with its node, and none replaces it
        return started, problem, why
    if started:
        return started, "Running", f"Job {job.name} is running"
    if job.suspended:
        return started, "Queued", queued(job, world)
    return started, problem or "JobCreated", _not_started(job, problem, why)


def _not_started(job: JobState, problem: str, why: str) -> str:
    """What keeps a Job's pod from starting, or that the Job was just created."""
    if problem == "PodNotCreated":
        return f"Job {job.name} cannot create its pod: {why}"
    if problem == "PodNotScheduled":
        return unschedulable(job, why)
    if problem:
        return f"the pod of Job {job.name} cannot start: {why}"
    return _created(job.name, job.version, job.generation)


def _apply_outcome(
    res: Observed,
    status: dict[str, Any],
    was: CommonStatus,
    job: JobState,
    outcome: RunResult | RunFailure,
    now: datetime,
) -> tuple[dict[str, Any], RunResult | None]:
    name = job.name.removeprefix("lost:")
    completed = parse_timestamp(job.completion_time) or now
    _write(status, CommonStatus(job_name=name, observed_generation=job.generation, completed_at=completed))
    status.pop("pool", None)  # where a warm pool had the request: a killed worker leaves its last
    lost = job.name.startswith("lost:")
    if isinstance(outcome, RunResult) and outcome.generation == job.generation and (job.complete or lost):
        message = outcome.summary()
        _write(status, CommonStatus(phase=Phase.SUCCEEDED, progress=100, stage="done", message=message))
        outcome.merge_outputs(status, started_at=format_time(was.started_at) if was.started_at else None)
        status["conditions"] = _conditions(
            status,
            res,
            now,
            ready=True,
            reconciling=False,
            stalled=False,
            reason="Succeeded",
            message=message,
        )
        return status, outcome
    if isinstance(outcome, RunFailure):
        reason, message = outcome.reason, outcome.explained()
        outcome.merge_outputs(status)  # status.dataset of a DatasetTooSmall
    elif job.failed_reason:
        reason = job.failed_reason
        message = JOB_FAILURES.get(reason, job.failed_message or f"Job {name} failed")
    else:
        reason, message = (
            "ResultMissing",
            f"Job {name} completed but left no result for generation {job.generation}",
        )
    _write(status, CommonStatus(phase=Phase.FAILED, stage="", message=f"{reason}: {message}"))
    status["conditions"] = _conditions(
        status, res, now, ready=False, reconciling=False, stalled=True, reason=reason, message=message
    )
    return status, None


def _start(
    res: Observed, status: dict[str, Any], cost: Cost | None, world: World, recorded: RunResult | None
) -> Decision:
    """Run the current generation, unless something has to be waited for (`cost`: the status's
    spend so far)."""
    found = _blocked(res, world)
    if isinstance(found, _Wait):
        return _waiting(res, status, world, recorded, found)
    return _started(res, status, cost, world, recorded, found)


@dataclass(frozen=True)
class _Wait:
    """Why the current generation cannot start yet: a condition's reason and message, and whether
    it waits for a person (stalled) rather than for the cluster."""

    reason: str
    message: str
    stalled: bool


def _blocked(res: Observed, world: World) -> _Wait | Resolved:
    """The first thing the generation waits for, in the order a user fixes them; else what its
    references resolved to."""
    if world.owner_problem:
        return _Wait("OwnerNotAllowed", world.owner_problem, stalled=True)
    if world.missing_credentials:
        provider = run_provider(res.spec, world.loras)
        return _Wait(
            "MissingCredentials",
            f"the operator has no {world.missing_credentials} for provider {provider!r}: an administrator "
            f"sets it in the chart ({provider_entry(provider).chart_secret}), or use provider: offline",
            stalled=True,
        )
    if unloadable := _declared(res).lora_problem(res.spec):
        return _Wait("LoraIncompatible", unloadable, stalled=True)
    if world.gpus_refused is not None:  # TooManyGpus, BackendUnavailable (placement.py)
        return _Wait(*world.gpus_refused, stalled=True)
    if refused := first_refusal(world.crossed):
        return _Wait(ACCESS_REFUSED, refused.refusal, stalled=True)
    found = resolve(res.spec, res.namespace, references(world))
    if isinstance(found, Refusal):
        return _Wait(found.reason, found.message, stalled=found.stalled)
    if world.over_budget:
        return _Wait("BudgetExceeded", world.over_budget, stalled=True)
    if not world.may_start:
        return _Wait(
            "Queued",
            f"waiting for a free slot: namespace {res.namespace} runs its maximum of concurrent Jobs",
            stalled=False,
        )
    return found


def _waiting(
    res: Observed, status: dict[str, Any], world: World, recorded: RunResult | None, wait: _Wait
) -> Decision:
    """Pending for `wait`'s reason, with no Job."""
    g = res.generation
    _write(
        status,
        CommonStatus(phase=Phase.PENDING, message=wait.message, observed_generation=g, stage="", progress=0),
    )
    # A waiting generation has no Job: the last run's name, kept beside a Pending phase, would
    # read as this generation's Job, lost (`_lost_job`) on the next look.
    status.pop("jobName", None)
    status["conditions"] = _conditions(
        status,
        res,
        world.now,
        ready=False,
        reconciling=not wait.stalled,
        stalled=wait.stalled,
        reason=wait.reason,
        message=wait.message,
    )
    decision = _finish(res, status, world, recorded=recorded)
    decision.waiting = wait.reason
    return decision


def _started(
    res: Observed,
    status: dict[str, Any],
    cost: Cost | None,
    world: World,
    recorded: RunResult | None,
    found: Resolved,
) -> Decision:
    """The generation's Job, as a snapshot of what it runs, and its status as created."""
    g = res.generation
    version = next_version(res.kind.kind, status, world.stored_version)
    snapshot = SpecSnapshot(
        kind=res.kind.kind,
        name=res.name,
        namespace=res.namespace,
        uid=res.uid,
        generation=g,
        version=version,
        spec=res.spec,
        loras=found.loras,
        skip_evaluation=world.skip_evaluation,
        budget=RunBudget(usd=max(0.0, world.budget_left[0]), whose=world.budget_left[1])
        if world.budget_left is not None
        else None,
        lora=found.lora,
        image=found.image,
        shared=[SharedInput(uid=c.holder.uid, owner=c.holder.owner, access=c.needs) for c in world.crossed],
    )
    from .naming import job_name  # local: keeps this module's imports about decisions

    name = job_name(res.kind, res.name, res.uid, g)
    message = _created(name, version, g)
    _write(status, CommonStatus(phase=Phase.PENDING, job_name=name, observed_generation=g, message=message))
    _begun(status, cost, snapshot, version, world.now, world)
    status["conditions"] = _working(status, res, world.now, "JobCreated", message)
    decision = _finish(res, status, world, recorded=recorded)
    decision.job = snapshot
    if world.skip_evaluation:
        decision.events.append(Event("Warning", "LikenessSkipped", world.skip_evaluation[:1024]))
    decision.events += [Event("Normal", "SharedInputUsed", _used(c)) for c in world.crossed]
    return decision


def _used(crossed: Crossing) -> str:
    """The audit's words of a use across owners: both owners and the key's folder, no more."""
    return (
        f"{crossed.input.field} uses {crossed.holder.named} of owner {crossed.holder.owner!r}, shared with "
        f"owner {crossed.owner!r} for {crossed.needs}"
    )


def references(world: World) -> Catalog:
    """What the spec's references resolve against in a cluster: the resources the operator read."""
    return Catalog(room="operator", loras=world.loras, image=world.image, lineage=lora_of_uri)


def run_provider(spec: Mapping[str, Any], loras: Mapping[str, LoraState | None]) -> str:
    """The provider a run of `spec` uses: the spec's; a LoraEvaluation that names none, the provider
    that trained the version its loraRef resolves to ("" while it resolves to none)."""
    named = str(spec.get("provider") or "")
    if named or "loraRef" not in spec:
        return named
    ref = spec["loraRef"]
    lora = loras.get(lora_key(ref))
    if lora is None:
        return ""
    found = lora.version(int(ref.get("version") or lora.latest_version))
    return found.provider if found is not None else ""


def _adopt_start(status: dict[str, Any], cost: Cost | None, job: JobState, world: World) -> None:
    """What `_start` writes for `job`, when the status never got it: the Job was created but the
    status write after it was lost (the API server went away between them, or a new leader took
    over first). Without it the run would have no runVersion nor startedAt, and no estimate: its
    cost would never be settled nor counted in its budget. The estimate is of what the Job runs
    (an offline operator's Job of a paid provider runs `offline`: it costs nothing)."""
    snapshot = SpecSnapshot.model_validate_json(job.snapshot) if job.snapshot else None
    _begun(status, cost, snapshot, job.version, parse_timestamp(job.start_time) or world.now, world)


def _begun(
    status: dict[str, Any],
    cost: Cost | None,
    snapshot: SpecSnapshot | None,
    version: int,
    started_at: datetime,
    world: World,
) -> None:
    """What a run's start writes: its version and start, the latest run's report gone (this run's
    comes with its outcome), and its estimate (without the likeness evaluation it skips, so that
    its share of the budget is without it too), with `cost`'s spend so far."""
    _write(status, CommonStatus(run_version=version, progress=0, stage="", started_at=started_at))
    status.pop("completedAt", None)
    status.pop("dataset", None)
    if world.prices is None or snapshot is None:
        return
    spec = snapshot.priced_spec()
    if snapshot.skip_evaluation:
        spec = without_evaluation(snapshot.kind, spec) or spec
    previous = cost.wire() if cost is not None else None
    estimate = estimated(snapshot.kind, spec, world.prices, previous, baseline_cached=world.baseline_cached)
    status["cost"] = estimate.wire()


def _settle_cost(status: dict[str, Any], was: CommonStatus, world: World) -> Cost | None:
    """The recorded run's actual cost into status.cost (issue 12's spend); the status's cost."""
    if world.prices is None or was.cost is None or world.outcome is None:
        return was.cost
    cost = settled(was.cost, world.outcome.usage, world.prices, was.started_at or world.now)
    status["cost"] = cost.wire()
    return cost


def _write(status: dict[str, Any], fields: CommonStatus) -> None:
    """The fields given to `fields` into the status, as the API server keeps them (a phase as a
    plain string, a time as metav1.Time), on the wire and in the catalog."""
    status.update(fields.model_dump(mode="json", by_alias=True, exclude_unset=True))


def _created(job_name: str, version: int, generation: int) -> str:
    """The message while a Job's pod starts (the same whether just created or seen since)."""
    what = f"version {version}" if version else f"generation {generation}"
    return f"created Job {job_name} for {what}; waiting for its pod to start"


def _finish(
    res: Observed, status: dict[str, Any], world: World, *, recorded: RunResult | None = None
) -> Decision:
    """The decision, with an Event when the phase or its reason changed."""
    declared = _declared(res)
    promotion_events = mirror_promotions(status, res) if declared.promotions else []
    promotion_events += mirror_verdicts(status, res, world.verdict_refusals) if declared.verdicts else []
    stop = stops.followed(status, res.state, res.annotations) if declared.stops else None
    decided = _gated(res, status, world, declared)
    decision = Decision(status=status, state=decided, outcome_recorded=recorded)
    decision.events += _phase_events(res.state, decided)
    decision.events += promotion_events
    if stop is not None:
        decision.events += [Event(*said) for said in stop.events]
        decision.remove_annotation = STOP_ANNOTATION if stop.remove else ""
    return decision


def _gated(res: Observed, status: dict[str, Any], world: World, declared: ControllerKind) -> CommonStatus:
    """`status` as its kind's model, with the conditions that gate on the likeness set."""
    decided = res.state if status == res.status else read_status(res.kind, status)  # most looks write nothing
    gates = [
        *([likeness_condition(decided)] if declared.likeness and likeness(decided) is not None else []),
        *([evaluated_condition(decided, res.generation)] if res.kind.likeness_plan is not None else []),
    ]
    if gates:
        decided = decided.model_copy(update={"conditions": _set_gates(status, gates, world.now)})
    return decided


# The reasons a phase's Event is a warning for, besides Failed: the run waits on something a
# person must mend (api/reasons.py's stalled Pending reasons), its pod cannot go on, or its result
# cannot be read.
_WARNED = frozenset(
    {name for name, reason in REASONS.items() if reason.phase == PENDING and reason.stalled}
    | {*POD_PROBLEMS, "ResultUnreadable"}
)


def _phase_events(was: CommonStatus, decided: CommonStatus) -> list[Event]:
    """The Events of a change of phase or of its reason (none where neither changed)."""
    before, (phase, reason) = (was.phase, ready_reason(was)), (decided.phase, ready_reason(decided))
    if before == (phase, reason) or not phase:
        return []
    failed = phase == Phase.FAILED or reason in _WARNED
    events = [Event("Warning" if failed else "Normal", str(reason or phase), decided.message)]
    if phase == Phase.SUCCEEDED and (poor := _poor_likeness(decided)):
        events.append(Event("Warning", "LikenessPoor", poor))
    if phase == Phase.SUCCEEDED and (chosen := _checkpoint_chosen(decided)):
        events.append(Event("Normal", "CheckpointChosen", chosen))
    if phase == Phase.SUCCEEDED and (ended := stops.stopped_event(decided)):
        events.append(Event("Normal", "TrainingStopped", ended))
    return events


def mirror_promotions(status: dict[str, Any], res: Observed) -> list[Event]:
    """The checkpoints people promoted (the LoraTraining's annotation, docs/likeness.md#choosing-
    a-checkpoint-yourself) in its status's versions, and an Event when they or what is wrong with
    the annotation change."""
    versions = [dict(v) for v in status.get("versions") or []]
    promoted, problem = promotions_of(res.annotations.get(PROMOTED_ANNOTATION), versions)
    before = {int(v.get("version") or 0): v.get("promotion") for v in versions}
    for entry in versions:
        chosen = promoted.get(int(entry.get("version") or 0))
        if chosen is None:
            entry.pop("promotion", None)
        else:
            entry["promotion"] = chosen.wire()
    if versions:
        status["versions"] = versions
    events = []
    after = {int(v.get("version") or 0): v.get("promotion") for v in versions}
    changed = [n for n in sorted(after) if after[n] != before.get(n)]
    if changed:
        said = []
        for number in changed:
            chosen = promoted.get(number)
            if chosen is None:
                said.append(f"version {number}: back to its automatic choice")
            else:
                said.append(
                    f"version {number}: its model is step {chosen.step}'s LoRA (the automatic choice: step "
                    f"{chosen.automatic_step})"
                )
        events.append(Event("Normal", "CheckpointPromoted", "; ".join(said)[:1024]))
    if problem != (res.state.promotion_problem if isinstance(res.state, LoraTrainingStatus) else ""):
        if problem:
            events.append(Event("Warning", "PromotionRefused", problem[:1024]))
            status["promotionProblem"] = problem[:1024]
        else:
            status.pop("promotionProblem", None)
    return events


def mirror_verdicts(
    status: dict[str, Any], res: Observed, refusals: Mapping[tuple[int, int], str] | None
) -> list[Event]:
    """The evaluations people chose as its versions' verdicts (the LoraTraining's annotation,
    docs/likeness.md#one-verdict-per-version) in its status's versions, as mirror_promotions does
    the checkpoints, and an Event when they or what is wrong with the annotation change. The
    status does not list re-evaluations: `refusals` (World.verdict_refusals) says from the catalog
    why one cannot be a verdict; where it is None only the versions are checked, and the catalog's
    reading of the record holds the rest (catalog/verdicts.py)."""
    versions = [dict(v) for v in status.get("versions") or []]

    def refusal(version: int, evaluation: int) -> str | None:
        return None if refusals is None else refusals.get((version, evaluation))

    chosen, problem = verdicts_of(res.annotations.get(VERDICTS_ANNOTATION), versions, refusal)
    before = {int(v.get("version") or 0): v.get("verdictChoice") for v in versions}
    for entry in versions:
        choice = chosen.get(int(entry.get("version") or 0))
        if choice is None:
            entry.pop("verdictChoice", None)
        else:
            entry["verdictChoice"] = choice.wire()
    if versions:
        status["versions"] = versions
    events = []
    after = {int(v.get("version") or 0): v.get("verdictChoice") for v in versions}
    changed = [n for n in sorted(after) if after[n] != before.get(n)]
    if changed:
        said = [
            f"version {n}: its verdict is evaluation e{chosen[n].evaluation}'s"
            if n in chosen
            else f"version {n}: back to its own evaluation's verdict"
            for n in changed
        ]
        events.append(Event("Normal", "VerdictChosen", "; ".join(said)[:1024]))
    if problem != (res.state.verdict_problem if isinstance(res.state, LoraTrainingStatus) else ""):
        if problem:
            events.append(Event("Warning", "VerdictRefused", problem[:1024]))
            status["verdictProblem"] = problem[:1024]
        else:
            status.pop("verdictProblem", None)
    return events


def _checkpoint_chosen(decided: CommonStatus) -> str:
    """Where the newest version's model is an earlier checkpoint than its training's last step
    (docs/likeness.md#checkpoints), which one and why ("" otherwise)."""
    report = likeness(decided)
    if report is None:
        return ""
    chosen, final = report.chosen_step, report.final_step
    if chosen is None or final is None or chosen == final:
        return ""
    return (
        f"version {latest_version(decided)}: its model is the LoRA of step {chosen}, not of the last "
        f"step {final} (kept as finalModelUri): {report.choice}"
    )[:1024]


def _poor_likeness(decided: CommonStatus) -> str:
    """Why the newest version does not look like the person ("" when it does, or is unmeasured):
    it is kept and usable, and this says so where people look (docs/likeness.md)."""
    report = likeness(decided)
    if report is None or report.verdict != "poor":
        return ""
    reasons = "; ".join(report.reasons)
    return f"version {latest_version(decided)} is kept and usable, but {reasons}"[:1024]


@dataclass(frozen=True)
class Gate:
    """One condition to set: its type, status, reason and message, of a spec generation."""

    type: str
    state: str
    reason: str
    message: str
    generation: int


def _set_gates(status: dict[str, Any], gates: list[Gate], now: datetime) -> list[Condition]:
    """`gates` into the status's conditions; the conditions, typed."""
    conditions = list(status.get("conditions") or [])
    for gate in gates:
        conditions = set_condition(
            conditions, gate.type, gate.state, gate.reason, gate.message[:1024], gate.generation, now
        )
    status["conditions"] = conditions
    return read_common({"conditions": conditions}).conditions


def likeness_condition(decided: CommonStatus) -> Gate:
    """`LikenessPoor` for the newest version's likeness (docs/likeness.md): True when it does not
    look like the person (it is still kept and usable: Ready stays True), False when it does,
    Unknown when nothing could be measured (no faces, unmeasured, skipped). Its observedGeneration
    is that version's spec generation, so that `kubectl wait` on it after a spec change waits for
    the new generation's version instead of taking the old one's verdict."""
    report = likeness(decided)
    verdict = report.verdict if report is not None else None
    found = report.reasons if report is not None else []
    version = latest_version(decided)
    generation = _version_generation(decided, version)
    reasons = "; ".join(found)
    if verdict == "poor":
        state, reason, message = "True", "LikenessPoor", _poor_likeness(decided)
    elif verdict == "good":
        state, reason, message = "False", "LikenessGood", f"version {version} looks like the person"
        good = likeness_reasons(found)
        message += f" ({good})" if good else ""
    else:
        state, reason = "Unknown", "LikenessUnmeasured"
        message = f"version {version}: likeness {verdict}" + (f" ({reasons})" if reasons else "")
    return Gate("LikenessPoor", state, reason, message, generation)


# LikenessEvaluated's reason by the verdict of the generation's report.
_EVALUATED_REASONS = {
    "good": "LikenessGood",
    "poor": "LikenessPoor",
    "no-faces": "LikenessUnmeasured",
    "unmeasured": "LikenessUnmeasured",
    "skipped": "LikenessSkipped",
}


def _version_generation(decided: CommonStatus, version: int) -> int:
    """The spec generation version `version` was made from (0 where the status does not list it)."""
    return next((v.generation for v in versions(decided) if v.version == version), 0)


def evaluated_condition(decided: CommonStatus, generation: int) -> Gate:
    """`LikenessEvaluated`, the gate that resolves (docs/likeness.md#gates): True once the run of
    the spec's current `generation` has ended, whatever came of it, its reason the verdict of that
    run's likeness report (LikenessGood, LikenessPoor, LikenessUnmeasured, LikenessSkipped), or
    LikenessNotEvaluated where the run ended without a report (it failed, or made none); Unknown
    (LikenessPending) until then. `kubectl wait --for=condition=LikenessEvaluated` returns on every
    outcome, and the reason says which."""
    ended = decided.observed_generation == generation and decided.phase in (Phase.SUCCEEDED, Phase.FAILED)
    version = latest_version(decided)
    report = likeness(decided)
    made = decided.phase == Phase.SUCCEEDED and _version_generation(decided, version) == generation
    if not ended:
        state, reason = "Unknown", "LikenessPending"
        message = f"generation {generation}'s run has not ended: its likeness is not known yet"
    elif made and report is not None and report.verdict in _EVALUATED_REASONS:
        reasons = "; ".join(report.reasons)
        state, reason = "True", _EVALUATED_REASONS[report.verdict]
        message = f"version {version}: likeness {report.verdict}" + (f" ({reasons})" if reasons else "")
    else:
        state, reason = "True", "LikenessNotEvaluated"
        why = decided.message or "it made no likeness report"
        message = f"generation {generation}'s run ended without a likeness report: {why}"
    return Gate("LikenessEvaluated", state, reason, message, generation)
