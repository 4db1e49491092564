"""What Kueue says about a Job it holds suspended: the Job's Workload read as plain values, and
the words the resource's Queued message carries (pure).

As Kueue writes them (read in its source, release v0.19.2, `apis/kueue/v1beta2`,
`pkg/controller/jobframework`, `pkg/workload`, `pkg/scheduler`):

- A batch/v1 Job's Workload is in the Job's namespace, named `job-{job name}-{5 hex digits}`, with
  the Job as its controller owner and the label `kueue.x-k8s.io/job-uid` = the Job's uid. It
  carries none of the Job's labels unless Kueue's `labelKeysToCopy` names them.
- `QuotaReserved` False says why it waits: the scheduler's words ("couldn't assign flavors to pod
  set main: insufficient unused quota for nvidia.com/gpu in flavor default-flavor, 1 more
  needed"), or the queue's ("LocalQueue gpus doesn't exist", "ClusterQueue gpus is stopped");
  reason `Pending`/`Inadmissible`, or finer ones (`WaitingForQuota`, `Misconfigured`,
  `Suspended` ...) with the UnadmittedWorkloadsObservability gate.
- `QuotaReserved` True and `Admitted` True: admitted; Kueue then resumes the Job. Quota reserved
  but not admitted: its admission checks are not all Ready (`status.admissionChecks`).
- `Evicted` True (reason `Preempted`, `PodsReadyTimeout`, `AdmissionCheck`, `ClusterQueueStopped`,
  `LocalQueueStopped`, `Deactivated...`): Kueue suspends the Job again. It is written first, while
  `Admitted` and `QuotaReserved` are still True (Kueue is stopping the Job), then the quota is
  given back; it stays True until quota is reserved again, while `QuotaReserved` False says why it
  waits now. A backoff before it is
  queued again is `status.requeueState` (`requeueAt`, `count`).
- `spec.active` false: deactivated, never admitted until someone activates it again.
- `Finished` True on a Job that never ran: Kueue gave up on it (e.g. `FailedToStart`).

Kueue serves `v1beta2` from 0.15 (its storage version from 0.16) and `v1beta1` in every release
(the only one up to 0.14; deprecated from 0.16, still served by 0.19); the fields read here are
the same in both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contentgen.api import format_time, parse_timestamp

from . import objects

GROUP = "kueue.x-k8s.io"
VERSIONS = ("v1beta2", "v1beta1")  # the preferred first
LABEL_JOB_UID = "kueue.x-k8s.io/job-uid"  # on a Workload: the uid of the Job it was made for
MAX_WORDS = 2000  # of Kueue's words in a status message (Kueue allows 32 KiB per condition)


@dataclass(frozen=True)
class Condition:
    status: str
    reason: str
    message: str


@dataclass(frozen=True)
class AdmissionCheck:
    name: str
    state: str  # Pending | Ready | Retry | Rejected
    message: str


@dataclass(frozen=True)
class Workload:
    """What the operator reads of a Workload."""

    name: str
    active: bool = True  # spec.active
    conditions: Mapping[str, Condition] = field(default_factory=dict)  # by type
    cluster_queue: str = ""  # status.admission.clusterQueue: where quota is reserved
    checks: tuple[AdmissionCheck, ...] = ()
    requeue_at: datetime | None = None  # status.requeueState.requeueAt
    requeue_count: int = 0  # status.requeueState.count

    def true(self, kind: str) -> Condition | None:
        condition = self.conditions.get(kind)
        return condition if condition is not None and condition.status == "True" else None


def workload_state(raw: Mapping[str, Any]) -> Workload:
    return _state(objects.Workload.of(raw))


def _state(obj: objects.Workload) -> Workload:
    status = obj.status
    return Workload(
        name=obj.metadata.name,
        active=obj.spec.active is not False,
        conditions={c.type: Condition(c.status, c.reason, c.message) for c in status.conditions},
        cluster_queue=status.admission.cluster_queue,
        checks=tuple(AdmissionCheck(c.name, c.state, c.message) for c in status.admission_checks),
        requeue_at=parse_timestamp(status.requeue_state.requeue_at),
        requeue_count=status.requeue_state.count,
    )


def workload_of(items: Iterable[Mapping[str, Any]], job_uid: str) -> Workload | None:
    """The Workload Kueue made for the Job of `job_uid`, among those the label selected: the one
    the Job controls (Kueue replaces one that no longer matches its Job; the new one is newer)."""
    ours = [
        obj
        for obj in map(objects.Workload.of, items)
        if not obj.metadata.deletion_timestamp
        and any(ref.uid == job_uid and ref.controller for ref in obj.metadata.owner_references)
    ]
    if not ours:
        return None
    return _state(max(ours, key=lambda o: o.metadata.creation_timestamp))


def explain(workload: Workload | None, now: datetime) -> str:
    """Why Kueue holds the Job, in Kueue's own words where it has some."""
    words = _explain(workload, now)
    return words if len(words) <= MAX_WORDS else f"{words[: MAX_WORDS - 3]}..."


def _explain(workload: Workload | None, now: datetime) -> str:
    if workload is None:
        return "Kueue has made no Workload for it yet"
    if finished := workload.true("Finished"):
        return f"Kueue finished its Workload without running it: {_said(finished)}"
    evicted = workload.true("Evicted")
    if not workload.active:
        why = f": {_said(evicted)}" if evicted else ""
        return (
            f"its Workload is deactivated (spec.active: false){why}; Kueue admits it only once it is "
            "active again"
        )
    queue = f"ClusterQueue {workload.cluster_queue!r}" if workload.cluster_queue else "its ClusterQueue"
    if evicted and (workload.true("Admitted") or workload.true("QuotaReserved")):
        # Kueue says Evicted first, then stops the Job and gives its quota back (seen on the real one)
        stopping = f"evicted ({evicted.reason}): {_said(evicted)}; Kueue stops the Job and queues it again"
        return "; ".join(filter(None, (stopping, _backoff(workload, now))))
    if workload.true("Admitted"):
        return f"admitted by {queue}; Kueue resumes the Job"
    if workload.true("QuotaReserved"):
        return _reserved(workload, queue)
    return _pending(workload, evicted, now)


def _reserved(workload: Workload, queue: str) -> str:
    """Quota reserved, not admitted: the admission checks not Ready, else Admitted's word."""
    waiting = [
        f"{c.name} is {c.state}" + (f" ({c.message})" if c.message else "")
        for c in workload.checks
        if c.state != "Ready"
    ]
    admitted = workload.conditions.get("Admitted")
    why = "; ".join(waiting) or (_said(admitted) if admitted is not None else "")
    return f"quota reserved in {queue}, not admitted yet" + (f": {why}" if why else "")


def _pending(workload: Workload, evicted: Condition | None, now: datetime) -> str:
    """No quota yet: an eviction, QuotaReserved's word, and a requeue's backoff, each where there."""
    parts = []
    if evicted:
        parts.append(f"evicted ({evicted.reason}): {evicted.message or 'no message'}")
    pending = workload.conditions.get("QuotaReserved")
    if pending is not None and (evicted is None or pending.message != evicted.message):
        parts.append(_said(pending))
    if backoff := _backoff(workload, now):
        parts.append(backoff)
    return "; ".join(parts) or "Kueue has not considered its Workload yet"


def _backoff(workload: Workload, now: datetime) -> str:
    """When Kueue queues it again after an eviction's backoff, while that is still to come."""
    if workload.requeue_at is None or workload.requeue_at <= now:
        return ""
    times = "time" if workload.requeue_count == 1 else "times"
    return (
        f"Kueue queues it again at {format_time(workload.requeue_at)} (backoff; requeued "
        f"{workload.requeue_count} {times})"
    )


def _said(condition: Condition) -> str:
    """A condition's message (its reason when it has none)."""
    return condition.message or condition.reason or "no reason given"
