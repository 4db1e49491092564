"""The Job controller, as kube-controller-manager runs it in Kubernetes 1.31+ (NonIndexed Jobs).

For each Job it creates pods from the template (`<job>-<5 random>` through generateName, the
template's labels, a controller ownerReference with blockOwnerDeletion, and the
`batch.kubernetes.io/job-tracking` finalizer), counts finished pods through
`status.uncountedTerminatedPods` before removing their finalizer, keeps
`active`/`ready`/`terminating`/`succeeded`/`failed`/`startTime`/`completionTime`, and decides:

- `podFailurePolicy` (onExitCodes In/NotIn with containerName, onPodConditions; FailJob,
  Ignore, Count) before `backoffLimit`, then `activeDeadlineSeconds`;
- failures recreate pods after the pod-failure backoff: `backoff_base` seconds (10 in
  Kubernetes), doubling per consecutive failure, capped at `backoff_cap` (600 s: the
  controller's MaxJobPodFailureBackOff since 1.28; the Job docs still say six minutes);
- the 1.31+ condition sequence: FailureTarget (BackoffLimitExceeded, PodFailurePolicy or
  DeadlineExceeded) first, active pods deleted, Failed once none is left terminating;
  SuccessCriteriaMet (CompletionsReached) first, Complete with completionTime once every
  finished pod is counted;
- `suspend` (active pods deleted without counting them, Suspended condition, startTime reset on
  resume).

Not done (see tests/README): Indexed Jobs, backoffLimitPerIndex, successPolicy, managedBy,
pod adoption by selector, restartPolicy OnFailure restart counting.
"""

from __future__ import annotations

import time
from typing import Any

from . import events
from .errors import ApiError
from .jobpolicy import (
    BACKOFF_LIMIT_EXCEEDED,
    COMPLETIONS_REACHED,
    DEADLINE_EXCEEDED,
    POD_FAILURE_POLICY,
    TRACKING_FINALIZER,
    backoff_delay,
    condition,
    controller_uid,
    deleting,
    ensure_condition,
    epoch,
    finished_time,
    has_tracking_finalizer,
    is_active,
    is_finished,
    is_pod_failed,
    is_ready,
    is_terminating,
    match_pod_failure_policy,
    new_condition,
    only_replace_failed,
    phase,
)
from .loop import Controller
from .store import Change, clone

JOBS, PODS = ("batch", "jobs"), ("", "pods")
COMPONENT = "job-controller"
REMOVE_TRACKING_FINALIZER = {"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}}
STRATEGIC = "application/strategic-merge-patch+json"


class JobController(Controller):
    name = COMPONENT
    watches = (JOBS, PODS)

    def __init__(
        self, cp: Any, user: Any = None, *, backoff_base: float = 10.0, backoff_cap: float = 600.0
    ) -> None:
        super().__init__(cp, user)
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        # job (namespace, name) -> (failures since the last success, time of the last failure)
        self._backoff: dict[tuple[str, str], tuple[int, float | None]] = {}
        self._seen_failed: dict[str, float] = {}  # pod uid -> when this controller saw it fail

    # --- what to sync -----------------------------------------------------------------------------

    def observe(self, change: Change) -> None:
        obj = change.obj
        ns, name = obj["metadata"].get("namespace", ""), obj["metadata"]["name"]
        if change.key == JOBS:
            self.enqueue(("job", ns, name))
            if change.type == "DELETED":  # its pods are orphans now: their finalizers go
                for pod in self.cp.store.items(PODS, ns):
                    if controller_uid(pod) == obj["metadata"]["uid"] and has_tracking_finalizer(pod):
                        self.enqueue(("orphan", ns, pod["metadata"]["name"]))
            return
        owner = _job_ref(obj)
        if owner is not None:
            self.enqueue(("job", ns, owner["name"]))
            if change.type != "DELETED" and has_tracking_finalizer(obj):
                self.enqueue(("orphan", ns, name))  # a no-op unless its Job is gone or finished
        elif change.type != "DELETED" and has_tracking_finalizer(obj):
            self.enqueue(("orphan", ns, name))

    def resync(self) -> None:
        with self.cp.store.lock:
            uids = {p["metadata"]["uid"] for p in self.cp.store.items(PODS)}
            self._seen_failed = {uid: t for uid, t in self._seen_failed.items() if uid in uids}
            for job in self.cp.store.items(JOBS):
                self.enqueue(("job", job["metadata"]["namespace"], job["metadata"]["name"]))
            for pod in self.cp.store.items(PODS):
                if has_tracking_finalizer(pod):
                    self.enqueue(("orphan", pod["metadata"]["namespace"], pod["metadata"]["name"]))

    def sync(self, key: tuple[str, str, str]) -> None:
        kind, ns, name = key
        if kind == "orphan":
            self._sync_orphan(ns, name)
        else:
            self._sync_job(ns, name)

    # --- orphans: pods whose Job is gone or finished keep no finalizer ----------------------------

    def _sync_orphan(self, ns: str, name: str) -> None:
        pod = self.read(*PODS, ns, name)
        if pod is None or not has_tracking_finalizer(pod):
            return
        ref = _job_ref(pod)
        if ref is not None:
            job = self.read(*JOBS, ns, ref["name"])
            if job is not None and job["metadata"]["uid"] == ref.get("uid") and not is_finished(job):
                return  # its Job still tracks it
        self._remove_finalizer(pod)

    def _remove_finalizer(self, pod: dict[str, Any]) -> None:
        """Remove the tracking finalizer (a pod already gone is fine; other errors raise)."""
        m = pod["metadata"]
        self.gone_ok(
            "patch",
            self.type(*PODS),
            m["namespace"],
            m["name"],
            REMOVE_TRACKING_FINALIZER,
            content_type=STRATEGIC,
        )

    # --- one Job ----------------------------------------------------------------------------------

    def _sync_job(self, ns: str, name: str) -> None:
        key = (ns, name)
        job = self.read(*JOBS, ns, name)
        if job is None:
            self._backoff.pop(key, None)
            return
        if is_finished(job):
            self._backoff.pop(key, None)
            for pod in self._pods(job):
                if has_tracking_finalizer(pod):
                    self._remove_finalizer(pod)
            return
        spec = job.get("spec") or {}
        old_status = job.get("status") or {}
        status = clone(old_status)
        uncounted = status.get("uncountedTerminatedPods") or {}
        uncounted_succeeded = list(uncounted.get("succeeded") or [])
        uncounted_failed = list(uncounted.get("failed") or [])
        policy = spec.get("podFailurePolicy")

        pods = self._pods(job)
        active_pods = [p for p in pods if is_active(p)]
        active, ready = len(active_pods), sum(1 for p in active_pods if is_ready(p))
        terminating = sum(1 for p in pods if is_terminating(p))
        fresh = [p for p in pods if has_tracking_finalizer(p)]
        new_succeeded = [p for p in fresh if _uid(p) not in uncounted_succeeded and phase(p) == "Succeeded"]
        new_failed = [p for p in fresh if _uid(p) not in uncounted_failed and is_pod_failed(p, job)]
        succeeded = int(status.get("succeeded") or 0) + len(new_succeeded) + len(uncounted_succeeded)
        counted_failures = sum(1 for p in new_failed if match_pod_failure_policy(policy, p)[1])
        failed = int(status.get("failed") or 0) + counted_failures + len(uncounted_failed)
        suspended = bool(spec.get("suspend"))
        if not status.get("startTime") and not suspended:
            status["startTime"] = _now()
        backoff = self._new_backoff(key, new_succeeded, new_failed)

        finished = self._heading_for(job, pods, failed, status)
        conditions = list(status.get("conditions") or [])
        if finished is not None:  # the Job is failing (or done): its active pods go, finalizers kept
            deleted_ready, deleted = self._delete_pods(job, active_pods, keep_finalizer=True)
            if deleted != active:
                finished = None
            active, ready, terminating = active - deleted, ready - deleted_ready, terminating + deleted
        else:
            if not deleting(job):
                active, ready, terminating = self._manage(
                    job, active_pods, succeeded, terminating, ready, backoff
                )
            completions = spec.get("completions")
            done = succeeded > 0 if completions is None else succeeded >= int(completions)
            if done and active == 0:
                finished = ("SuccessCriteriaMet", *COMPLETIONS_REACHED)
            elif not deleting(job):
                self._suspension(job, status, conditions, suspended)

        status["active"], status["ready"], status["terminating"] = active, ready, terminating

        # count finished pods (uncountedTerminatedPods first), then let their finalizers go
        with_finalizer = {_uid(p) for p in fresh}
        _count_released(status, uncounted_succeeded, uncounted_failed, with_finalizer)
        release = _to_release(job, fresh, finished, uncounted_succeeded, uncounted_failed)
        if finished and finished[0] == "FailureTarget":
            conditions.append(new_condition(*finished))
            finished = ("Failed", finished[1], finished[2])
        if finished and finished[0] == "SuccessCriteriaMet":
            if not any(c.get("type") == "SuccessCriteriaMet" for c in conditions):
                conditions.append(new_condition(*finished))
            finished = ("Complete", finished[1], finished[2])
        status["conditions"] = conditions
        job = self._write_status(job, status, uncounted_succeeded, uncounted_failed)
        self._backoff[key] = backoff
        for pod in release:
            self._remove_finalizer(pod)
            with_finalizer.discard(_uid(pod))
        _count_released(status, uncounted_succeeded, uncounted_failed, with_finalizer)
        enacted = False
        if finished and not uncounted_succeeded and not uncounted_failed and terminating == 0:
            conditions = status.setdefault("conditions", [])
            enacted = ensure_condition(conditions, finished[0], "True", finished[1], finished[2])
            if finished[0] == "Complete":
                status["completionTime"] = next(
                    c["lastTransitionTime"] for c in conditions if c["type"] == "Complete"
                )
        self._write_status(job, status, uncounted_succeeded, uncounted_failed)
        if enacted and finished:
            if finished[0] == "Complete":
                self._event(job, "Normal", "Completed", "Job completed")
            else:
                self._event(job, "Warning", finished[1], finished[2])

    def _heading_for(
        self, job: dict[str, Any], pods: list[dict[str, Any]], failed: int, status: dict[str, Any]
    ) -> tuple[str, str, str] | None:
        """The (type, reason, message) of the condition the Job is heading for, if any."""
        met, target = condition(job, "SuccessCriteriaMet"), condition(job, "FailureTarget")
        if met and met.get("status") == "True":
            return ("SuccessCriteriaMet", met.get("reason", ""), met.get("message", ""))
        if target and target.get("status") == "True":
            return ("Failed", target.get("reason", ""), target.get("message", ""))
        if message := _fail_job_message(job, pods):
            return ("FailureTarget", POD_FAILURE_POLICY, message)
        if failed > int(job["spec"].get("backoffLimit", 6)):
            return ("FailureTarget", *BACKOFF_LIMIT_EXCEEDED)
        left = self._deadline_left(job, status)
        if left is not None and left <= 0:
            return ("FailureTarget", *DEADLINE_EXCEEDED)
        if left is not None:
            self.enqueue(("job", job["metadata"]["namespace"], job["metadata"]["name"]), left)
        return None

    # --- manageJob: create or delete pods ---------------------------------------------------------

    def _manage(
        self,
        job: dict[str, Any],
        active_pods: list[dict[str, Any]],
        succeeded: int,
        terminating: int,
        ready: int,
        backoff: tuple[int, float | None],
    ) -> tuple[int, int, int]:
        spec = job["spec"]
        active = len(active_pods)
        if spec.get("suspend"):
            removed_ready, removed = self._delete_pods(job, active_pods, keep_finalizer=False)
            return active - removed, ready - removed_ready, terminating + removed
        parallelism = int(spec.get("parallelism", 1))
        completions = spec.get("completions")
        if completions is None:
            want = active if succeeded > 0 else parallelism
        else:
            want = max(0, min(int(completions) - succeeded, parallelism))
        if active > want:  # not-ready, unscheduled and pending pods go first
            extra = sorted(active_pods, key=_removal_order)[: active - want]
            removed_ready, removed = self._delete_pods(job, extra, keep_finalizer=False)
            return active - removed, ready - removed_ready, terminating + removed
        waiting_for = terminating if only_replace_failed(job) else 0
        missing = want - waiting_for - active
        if missing <= 0:
            return active, ready, terminating
        failures, last = backoff
        if failures and last is not None:
            left = backoff_delay(failures, self.backoff_base, self.backoff_cap) - (time.time() - last)
            if left > 0:
                self.enqueue(("job", job["metadata"]["namespace"], job["metadata"]["name"]), left)
                return active, ready, terminating
        return active + self._create_pods(job, missing), ready, terminating

    def _create_pods(self, job: dict[str, Any], count: int) -> int:
        """Slow start: batches of 1, 2, 4, ... stopping at the first failed batch."""
        created, batch, error = 0, 1, None
        while created < count and error is None:
            for _ in range(min(batch, count - created)):
                try:
                    pod = self.call(
                        "create", self.type(*PODS), job["metadata"]["namespace"], body=_pod_for(job)
                    ).body
                except ApiError as exc:
                    if _namespace_terminating(exc):
                        return created
                    error = exc
                    break
                created += 1
                self._event(job, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
            batch *= 2
        if error is not None:
            self._event(job, "Warning", "FailedCreate", f"Error creating: {error.message}")
            raise error
        return created

    def _delete_pods(
        self, job: dict[str, Any], pods: list[dict[str, Any]], *, keep_finalizer: bool
    ) -> tuple[int, int]:
        """(ready pods deleted, pods deleted). deleteActivePods keeps the finalizers (the pods count
        as failed later); deleteJobPods (suspend, too many) lets them go first."""
        deleted_ready = deleted = 0
        for pod in pods:
            m = pod["metadata"]
            if not keep_finalizer and has_tracking_finalizer(pod):
                self._remove_finalizer(pod)
            if self.gone_ok("delete", self.type(*PODS), m["namespace"], m["name"]):
                self._event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {m['name']}")
            deleted += 1
            deleted_ready += 1 if is_ready(pod) else 0
        return deleted_ready, deleted

    def _suspension(
        self, job: dict[str, Any], status: dict[str, Any], conditions: list[dict[str, Any]], suspended: bool
    ) -> None:
        if suspended:
            if ensure_condition(conditions, "Suspended", "True", "JobSuspended", "Job suspended"):
                self._event(job, "Normal", "Suspended", "Job suspended")
        elif ensure_condition(conditions, "Suspended", "False", "JobResumed", "Job resumed"):
            self._event(job, "Normal", "Resumed", "Job resumed")
            # activeDeadlineSeconds counts the time a Job is continuously active
            status["startTime"] = _now()

    # --- helpers ------------------------------------------------------------------------------

    def _pods(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        uid = job["metadata"]["uid"]
        return [p for p in self.items(*PODS, job["metadata"]["namespace"]) if controller_uid(p) == uid]

    def _deadline_left(self, job: dict[str, Any], status: dict[str, Any]) -> float | None:
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
        start = epoch(status.get("startTime"))
        if deadline is None or start is None or (job.get("spec") or {}).get("suspend"):
            return None
        return float(deadline) - (time.time() - start)

    def _failure_time(self, pod: dict[str, Any]) -> float:
        """When the pod failed: its finish time, as getFinishedTime reads it. API timestamps have
        one-second resolution, so the end of that second is used unless this controller saw the
        failure earlier: never before the real failure, so the backoff is never cut short."""
        seen = self._seen_failed.setdefault(_uid(pod), time.time())
        return min(seen, finished_time(pod) + 1.0)

    def _new_backoff(
        self, key: tuple[str, str], succeeded: list[dict[str, Any]], failed: list[dict[str, Any]]
    ) -> tuple[int, float | None]:
        """backoffStore.newBackoffRecord: consecutive failures since the last success."""
        failures, last = self._backoff.get(key, (0, None))
        times = sorted(self._failure_time(p) for p in failed)
        if not succeeded:
            if not times:
                return failures, last
            return failures + len(times), times[-1]
        last_success = max(finished_time(p) for p in succeeded)
        after = [t for t in times if t > last_success]
        return len(after), (after[-1] if after else None)

    def _write_status(
        self, job: dict[str, Any], status: dict[str, Any], succeeded: list[str], failed: list[str]
    ) -> dict[str, Any]:
        status["uncountedTerminatedPods"] = {
            **({"succeeded": list(succeeded)} if succeeded else {}),
            **({"failed": list(failed)} if failed else {}),
        }
        for counter in ("active", "succeeded", "failed"):  # int32 omitempty
            if not status.get(counter):
                status.pop(counter, None)
        if not status.get("conditions"):
            status.pop("conditions", None)
        if status == (job.get("status") or {}):
            return job
        body = {**job, "status": clone(status)}
        m = job["metadata"]
        try:
            written: dict[str, Any] = self.call(
                "update", self.type(*JOBS), m["namespace"], m["name"], body, subresource="status"
            ).body
        except ApiError as exc:
            if exc.code != 404:
                raise
            return job  # deleted meanwhile: its pods are orphans now (see observe)
        return written

    def _event(self, job: dict[str, Any], type_: str, reason: str, message: str) -> None:
        events.record(self, job, "Job", "batch/v1", type_, reason, message, component=COMPONENT)


def _to_release(
    job: dict[str, Any],
    fresh: list[dict[str, Any]],
    finished: tuple[str, str, str] | None,
    uncounted_succeeded: list[str],
    uncounted_failed: list[str],
) -> list[dict[str, Any]]:
    """The pods whose finalizer can go (canRemoveFinalizer), each added to the uncounted lists
    first: a Succeeded pod as succeeded; a failed one, or any pod of a failing Job, as failed
    unless the podFailurePolicy ignores it."""
    policy = (job.get("spec") or {}).get("podFailurePolicy")
    release = []
    for pod in fresh:
        failed_pod = is_pod_failed(pod, job)
        if not (deleting(job) or finished or phase(pod) == "Succeeded" or failed_pod):
            continue
        release.append(pod)
        uid = _uid(pod)
        if phase(pod) == "Succeeded" and uid not in uncounted_failed:
            if uid not in uncounted_succeeded:
                uncounted_succeeded.append(uid)
        elif (
            (failed_pod or (finished and finished[0] != "SuccessCriteriaMet"))
            and uid not in uncounted_failed
            and match_pod_failure_policy(policy, pod)[1]
        ):
            uncounted_failed.append(uid)
    return release


def _count_released(
    status: dict[str, Any], succeeded: list[str], failed: list[str], with_finalizer: set[str]
) -> None:
    """cleanUncountedPodsWithoutFinalizers: uncounted pods whose finalizer is gone are counted."""
    for uids, counter in ((succeeded, "succeeded"), (failed, "failed")):
        released = [uid for uid in uids if uid not in with_finalizer]
        if released:
            status[counter] = int(status.get(counter) or 0) + len(released)
            uids[:] = [uid for uid in uids if uid in with_finalizer]


def _fail_job_message(job: dict[str, Any], pods: list[dict[str, Any]]) -> str | None:
    policy = (job.get("spec") or {}).get("podFailurePolicy")
    if not policy:
        return None
    for pod in pods:
        if is_pod_failed(pod, job):
            message, _, _ = match_pod_failure_policy(policy, pod)
            if message:
                return message
    return None


def _pod_for(job: dict[str, Any]) -> dict[str, Any]:
    """GetPodFromTemplate, with the tracking finalizer and the controller reference."""
    template = clone(job["spec"]["template"])
    tm = template.get("metadata") or {}
    m = job["metadata"]
    finalizers = list(tm.get("finalizers") or [])
    if TRACKING_FINALIZER not in finalizers:
        finalizers.append(TRACKING_FINALIZER)
    metadata: dict[str, Any] = {
        "generateName": f"{m['name']}-",
        "labels": dict(tm.get("labels") or {}),
        "finalizers": finalizers,
        "ownerReferences": [
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": m["name"],
                "uid": m["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    if tm.get("annotations"):
        metadata["annotations"] = dict(tm["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template.get("spec") or {}}


def _job_ref(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "Job" and ref.get("apiVersion") == "batch/v1":
            return dict(ref)
    return None


def _removal_order(pod: dict[str, Any]) -> tuple[int, int, int]:
    """controller.ActivePods: unscheduled < scheduled, pending < running, not ready < ready."""
    order = {"Pending": 0, "Unknown": 1, "Running": 2}
    return (
        1 if (pod.get("spec") or {}).get("nodeName") else 0,
        order.get(phase(pod), 1),
        1 if is_ready(pod) else 0,
    )


def _namespace_terminating(exc: ApiError) -> bool:
    causes = (exc.details or {}).get("causes") or []
    return any(c.get("reason") == "NamespaceTerminating" for c in causes)


def _uid(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["uid"])


def _now() -> str:
    from . import meta

    return meta.now()
