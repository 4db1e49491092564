"""What the operator reads off a worker pod (pure parsing), kept in an index of the Jobs' pods
(a label-selected watch) instead of listing pods: why a pod cannot start, and the worker's
termination message when it has finished."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .kube import POD_START_PROBLEMS


@dataclass(frozen=True)
class PodState:
    name: str
    namespace: str
    job: str
    problem: str = ""  # "CreateContainerConfigError: secret \"x\" not found", "Unschedulable: 0/1 nodes ..."
    finished_at: str = ""  # when the worker container terminated ("" while it runs)
    message: str | None = None  # its termination message


def pod_state(pod: dict[str, Any]) -> PodState | None:
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    job = labels.get("batch.kubernetes.io/job-name") or labels.get("job-name")
    if not job:
        return None
    problem, finished_at, message = "", "", None
    for condition in (pod.get("status") or {}).get("conditions") or []:  # the scheduler's verdict
        if (condition.get("type"), condition.get("status"), condition.get("reason")) == (
            "PodScheduled",
            "False",
            "Unschedulable",
        ):
            problem = f"Unschedulable: {condition.get('message', '')}".strip(": ")
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        state = container.get("state") or {}
        waiting = state.get("waiting") or {}
        if waiting.get("reason") in POD_START_PROBLEMS:
            problem = f"{waiting['reason']}: {waiting.get('message', '')}".strip(": ")
        terminated = state.get("terminated")
        if container.get("name") == "worker" and terminated:
            finished_at = str(terminated.get("finishedAt") or "")
            message = terminated.get("message")
    return PodState(meta.get("name", ""), meta.get("namespace", ""), job, problem, finished_at, message)


def pod_problem(pods: list[PodState]) -> str:
    return next((p.problem for p in pods if p.problem), "")


def termination_message(pods: list[PodState]) -> str | None:
    """The worker's termination message from the Job's latest finished pod."""
    finished = sorted((p for p in pods if p.finished_at), key=lambda p: p.finished_at)
    return finished[-1].message if finished else None
