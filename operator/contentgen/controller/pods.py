"""What the operator reads off a worker pod (pure parsing), kept in an index of the Jobs' pods
(a label-selected watch) instead of listing pods: why a pod cannot start, and the worker's
termination message when it has finished (for a worker the kernel killed for its memory, a
failure the operator words itself: the worker had no chance to), and a pod deleted whose end its
node never confirms (NodeLost)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from contentgen.api import RunFailure, parse_timestamp
from contentgen.api.reading import condition

from .kube import POD_START_PROBLEMS
from .naming import LABEL_KIND
from .objects import Pod, PodStatus


@dataclass(frozen=True)
class PodState:
    name: str
    namespace: str
    job: str
    problem: str = ""  # "CreateContainerConfigError: secret \"x\" not found", "Unschedulable: 0/1 nodes ..."
    finished_at: str = ""  # when the worker container terminated ("" while it runs)
    message: str | None = None  # its termination message
    node: str = ""  # the node it was bound to
    # Deleted (metadata.deletionTimestamp: the delete's time plus its grace period, by when the
    # kubelet has stopped it) and not ended yet (phase neither Succeeded nor Failed); "" otherwise.
    deleting_until: str = ""
    deleted_by: str = ""  # why: its DisruptionTarget condition ("DeletionByTaintManager: ..."), if any
    # When the node controller marked it not ready, its node having stopped answering: Ready False
    # while ContainersReady stays True, which a kubelet never writes for a pod without readiness
    # gates (its Ready is its containers' readiness); "" otherwise.
    unanswered_since: str = ""
    # rank 0's pod, whose worker runs the pipeline and leaves the run's termination message: a
    # Job's, or of a JobSet's nodes the first (completion index 0)
    leader: bool = True


# Only a pod's kubelet ends a deleted pod (it stops the containers, then removes the pod); a pod
# still there this long after its grace period ran out has a kubelet that does not answer: a node
# down or cut off. The Job controller makes no pod in its place (podReplacementPolicy Failed, as
# a podFailurePolicy wants) and Kubernetes never removes it by itself (the pod garbage collector
# only does on a node tainted node.kubernetes.io/out-of-service). Before that, a node that stops
# answering shows on its pods as the node controller's Ready False; it evicts them after their
# toleration (300 s by default) where another node is ready, and never where none is.
NODE_LOST = "NodeLost"
# The worker's container: a Job's and a JobSet's `worker`, a TrainJob's `node` (Trainer's name)
WORKERS = ("worker", "node")
CONFIRM_SECONDS = 15.0  # what a live kubelet may take past the grace period to report the end


def pod_state(raw: Mapping[str, Any]) -> PodState | None:
    pod = Pod.of(raw)
    labels = pod.metadata.labels
    # a JobSet's pods (a TrainJob's JobSet is named after it) are its own, not its Jobs'
    job = (
        labels.get("jobset.sigs.k8s.io/jobset-name")
        or labels.get("batch.kubernetes.io/job-name")
        or labels.get("job-name")
    )
    if not job:
        return None
    finished_at, message = _worker_end(pod, labels.get(LABEL_KIND) or "")
    disruption = condition(pod.status.conditions, "DisruptionTarget")
    return PodState(
        pod.metadata.name,
        pod.metadata.namespace,
        job,
        _start_problem(pod.status),
        finished_at,
        message,
        node=pod.spec.node_name,
        deleting_until="" if _ended(pod.status) else pod.metadata.deletion_timestamp,
        deleted_by=f"{disruption.reason}: {disruption.message}".strip(": ") if disruption.true else "",
        unanswered_since=_unanswered_since(pod),
        leader=labels.get("batch.kubernetes.io/job-completion-index", "0") == "0",
    )


def _ended(status: PodStatus) -> bool:
    return status.phase in ("Succeeded", "Failed")


def _start_problem(status: PodStatus) -> str:
    """Why the pod does not start: a container's waiting reason of POD_START_PROBLEMS, else the
    scheduler's verdict; "" for none."""
    problem = ""
    scheduled = condition(status.conditions, "PodScheduled")
    if (scheduled.status, scheduled.reason) == ("False", "Unschedulable"):
        problem = f"Unschedulable: {scheduled.message}".strip(": ")
    for container in status.container_statuses:
        waiting = container.state.waiting
        if waiting.reason in POD_START_PROBLEMS:
            problem = f"{waiting.reason}: {waiting.message}".strip(": ")
    return problem


def _worker_end(pod: Pod, kind: str) -> tuple[str, str | None]:
    """(when the worker container terminated, its termination message): ("", None) while it runs;
    for a worker the kernel killed at its memory limit, the operator's own words."""
    for container in pod.status.container_statuses:
        terminated = container.state.terminated
        if container.name in WORKERS and terminated is not None:
            if terminated.reason == "OOMKilled":
                return terminated.finished_at, out_of_memory(pod, kind)
            return terminated.finished_at, terminated.message
    return "", None


def _unanswered_since(pod: Pod) -> str:
    """When the node controller marked a running pod not ready (see PodState); "" otherwise."""
    ready = condition(pod.status.conditions, "Ready")
    containers = condition(pod.status.conditions, "ContainersReady")
    marked = (
        pod.status.phase == "Running"
        and not pod.spec.readiness_gates
        and (ready.status, containers.status) == ("False", "True")
    )
    return (ready.last_transition_time or "?") if marked else ""


def node_lost(pod: PodState, now: datetime) -> str:
    """The line `NodeLost: ...` for a pod deleted and never ended (stuck Terminating), once its
    kubelet had its grace period and `CONFIRM_SECONDS` more to end it, or one whose node the node
    controller found silent; else ""."""
    until = parse_timestamp(pod.deleting_until) if pod.deleting_until else None
    node = pod.node or "its node"
    if until is None or now < until + timedelta(seconds=CONFIRM_SECONDS):
        if not pod.unanswered_since:
            return ""
        return (
            f"{NODE_LOST}: pod {pod.name} of Job {pod.job} is on {node}, which stopped answering (the "
            f"node controller marked the pod not ready at {pod.unanswered_since}: kubectl get node {node}); "
            "the worker's fate is unknown and no pod replaces it: Kubernetes evicts it after its "
            "toleration if another node is ready, never if none is, so the run waits for the node, or "
            f"for `kubectl delete pod -n {pod.namespace} {pod.name} --force` once the node is known to "
            "be down, or ends at its Job's activeDeadlineSeconds"
        )
    why = {
        "DeletionByTaintManager": f"evicted by the taint manager ({node} has a NoExecute taint: "
        "unreachable or not ready)",
        "TerminationByKubelet": f"ended by the kubelet of {node} (node pressure or shutdown)",
        "EvictionByEvictionAPI": "evicted",
        "PreemptionByScheduler": "preempted by the scheduler",
    }.get(pod.deleted_by.partition(":")[0], "deleted")
    # no time that grows: the line, and so the status, stays the same from one look to the next
    return (
        f"{NODE_LOST}: pod {pod.name} of Job {pod.job} was {why} and is stuck Terminating: {node} has not "
        f"confirmed its end, due by {pod.deleting_until} (down or cut off: kubectl get node {node}); no "
        f"pod replaces it until then, so the run waits for the node, or for `kubectl delete pod -n "
        f"{pod.namespace} {pod.name} --force` once the node is known to be down, or ends at its Job's "
        "activeDeadlineSeconds"
    )


def changes_at(pods: list[PodState], now: datetime) -> datetime | None:
    """When `pod_problem` will next say otherwise with nothing in the cluster to announce it: a
    deleted pod's grace period and `CONFIRM_SECONDS` running out (no event marks that moment, so
    the reconciler looks again then rather than when its backoff next comes: NodeLost's stuck
    Terminating, said on time); None when no such moment is ahead."""
    until = [parse_timestamp(p.deleting_until) for p in pods if p.deleting_until]
    due = [at + timedelta(seconds=CONFIRM_SECONDS) for at in until if at is not None]
    return min((at for at in due if at > now), default=None)


def out_of_memory(pod: Pod, kind: str) -> str:
    """The termination message of a worker the kernel killed at its memory limit (its own, cut
    short, is at most its last log lines): reason OOMKilled, the limit and where it is set. What a
    provider billed before is not known (usage None)."""
    worker = pod.spec.container("worker")
    limit = worker.resources.limits.get("memory", "") if worker is not None else ""
    setting = f"jobs.{kind}.resources.limits.memory" if kind else "the Job's memory limit"
    failure = RunFailure(
        reason="OOMKilled",
        message=f"the worker was killed for using more than its memory limit ({limit or 'unset'}); "
        f"raise {setting} (the chart's value) and edit the spec to run again",
    )
    return failure.model_dump_json(by_alias=True, exclude_none=True)


def pod_problem(pods: list[PodState], now: datetime) -> str:
    """Why the Job's pod does not run: one stuck on a lost node first (the others are gone)."""
    lost = next((line for p in pods if (line := node_lost(p, now))), "")
    return lost or next((p.problem for p in pods if p.problem), "")


def end_may_come(pods: list[PodState], now: datetime) -> bool:
    """Whether a pod of a failed Job may still end and say why (its termination message): none
    has ended yet, and some is not stuck on a lost node, which never will."""
    return bool(pods) and not any(p.finished_at for p in pods) and not all(node_lost(p, now) for p in pods)


def termination_message(pods: list[PodState]) -> str | None:
    """The worker's termination message from the Job's latest finished pod: of a JobSet's, its
    first node's (rank 0), unless only another's has ended (its failure)."""
    finished = sorted((p for p in pods if p.finished_at), key=lambda p: p.finished_at)
    led = [p for p in finished if p.leader]
    return (led or finished)[-1].message if finished else None
