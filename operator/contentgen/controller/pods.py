"""What the operator reads off a worker pod (pure parsing), kept in an index of the Jobs' pods
(a label-selected watch) instead of listing pods: why a pod cannot start, and the worker's
termination message when it has finished (for a worker the kernel killed for its memory, a
failure the operator words itself: the worker had no chance to)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contentgen.api import RunFailure

from .kube import POD_START_PROBLEMS
from .naming import LABEL_KIND


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
            if terminated.get("reason") == "OOMKilled":
                message = out_of_memory(pod, str(labels.get(LABEL_KIND) or ""))
    return PodState(meta.get("name", ""), meta.get("namespace", ""), job, problem, finished_at, message)


def out_of_memory(pod: dict[str, Any], kind: str) -> str:
    """The termination message of a worker the kernel killed at its memory limit (its own, cut
    short, is at most its last log lines): reason OOMKilled, the limit and where it is set. What a
    provider billed before is not known (usage None)."""
    containers = (pod.get("spec") or {}).get("containers") or []
    worker: dict[str, Any] = next((c for c in containers if c.get("name") == "worker"), {})
    limit = ((worker.get("resources") or {}).get("limits") or {}).get("memory", "")
    setting = f"jobs.{kind}.resources.limits.memory" if kind else "the Job's memory limit"
    failure = RunFailure(
        reason="OOMKilled",
        message=f"the worker was killed for using more than its memory limit ({limit or 'unset'}); "
        f"raise {setting} (the chart's value) and edit the spec to run again",
    )
    return failure.model_dump_json(by_alias=True, exclude_none=True)


def pod_problem(pods: list[PodState]) -> str:
    return next((p.problem for p in pods if p.problem), "")


def termination_message(pods: list[PodState]) -> str | None:
    """The worker's termination message from the Job's latest finished pod."""
    finished = sorted((p for p in pods if p.finished_at), key=lambda p: p.finished_at)
    return finished[-1].message if finished else None
