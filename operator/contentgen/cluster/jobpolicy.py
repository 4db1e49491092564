"""The Job controller's decisions that need no API: which pods count as active, ready,
terminating or failed, what a podFailurePolicy says about a failed pod, the pod-recreation
backoff, and the Job's conditions. Each follows kubernetes/kubernetes pkg/controller/job
(job_controller.go, pod_failure_policy.go, backoff_utils.go) as of 1.31+.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from . import meta

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"

# Reasons and messages exactly as the real controller writes them.
BACKOFF_LIMIT_EXCEEDED = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE_EXCEEDED = ("DeadlineExceeded", "Job was active longer than specified deadline")
POD_FAILURE_POLICY = "PodFailurePolicy"
COMPLETIONS_REACHED = ("CompletionsReached", "Reached expected number of succeeded pods")


def epoch(timestamp: Any) -> float | None:
    """A metav1.Time (RFC 3339, one-second resolution) as seconds since the epoch."""
    if not timestamp:
        return None
    parsed = datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


# --- pods -------------------------------------------------------------------------------------


def phase(pod: dict[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def deleting(obj: dict[str, Any]) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def is_active(pod: dict[str, Any]) -> bool:
    """controller.FilterActivePods."""
    return phase(pod) not in ("Succeeded", "Failed") and not deleting(pod)


def is_terminating(pod: dict[str, Any]) -> bool:
    """controller.CountTerminatingPods."""
    return deleting(pod) and phase(pod) not in ("Succeeded", "Failed")


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def is_ready(pod: dict[str, Any]) -> bool:
    cond = condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def has_tracking_finalizer(pod: dict[str, Any]) -> bool:
    return TRACKING_FINALIZER in (pod["metadata"].get("finalizers") or [])


def only_replace_failed(job: dict[str, Any]) -> bool:
    """Replacement pods wait until the old ones are Failed, not merely terminating."""
    spec = job.get("spec") or {}
    return spec.get("podReplacementPolicy") == "Failed" or bool(spec.get("podFailurePolicy"))


def is_pod_failed(pod: dict[str, Any], job: dict[str, Any]) -> bool:
    if phase(pod) == "Failed":
        return True
    if only_replace_failed(job):
        return False
    # deleted pods count as failed: they may never reach the Failed phase
    return deleting(pod) and phase(pod) != "Succeeded"


def controller_uid(obj: dict[str, Any]) -> str:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid", ""))
    return ""


def finished_time(pod: dict[str, Any]) -> float:
    """backoff_utils.getFinishedTime: the last container finish, else when Ready became False,
    else the deletion time less its grace period, else the creation time."""
    status = pod.get("status") or {}
    finishes = []
    for container in status.get("containerStatuses") or []:
        terminated = (container.get("state") or {}).get("terminated") or {}
        finishes.append(epoch(terminated.get("finishedAt")))
    if finishes and all(t is not None for t in finishes):
        return max(t for t in finishes if t is not None)
    ready = condition(pod, "Ready")
    if ready and ready.get("status") == "False" and epoch(ready.get("lastTransitionTime")):
        return epoch(ready.get("lastTransitionTime")) or 0.0
    deleted = epoch(pod["metadata"].get("deletionTimestamp"))
    if deleted is not None:
        return deleted - float(pod["metadata"].get("deletionGracePeriodSeconds") or 0)
    return epoch(pod["metadata"].get("creationTimestamp")) or 0.0


# --- podFailurePolicy -----------------------------------------------------------------------------


def _exit_code_matches(code: int, requirement: dict[str, Any]) -> bool:
    values = requirement.get("values") or []
    if requirement.get("operator") == "In":
        return code in values
    if requirement.get("operator") == "NotIn":
        return code not in values
    return False


def _matching_container(pod: dict[str, Any], requirement: dict[str, Any]) -> dict[str, Any] | None:
    status = pod.get("status") or {}
    for statuses in (status.get("containerStatuses") or [], status.get("initContainerStatuses") or []):
        for container in statuses:
            terminated = (container.get("state") or {}).get("terminated")
            if terminated is None:
                continue
            name = requirement.get("containerName")
            if name and name != container.get("name"):
                continue
            code = int(terminated.get("exitCode") or 0)
            if code != 0 and _exit_code_matches(code, requirement):
                return dict(container)
    return None


def _matching_condition(pod: dict[str, Any], patterns: list[dict[str, Any]]) -> dict[str, Any] | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        for pattern in patterns:
            if cond.get("type") == pattern.get("type") and cond.get("status") == pattern.get(
                "status", "True"
            ):
                return dict(cond)
    return None


def match_pod_failure_policy(
    policy: dict[str, Any] | None, pod: dict[str, Any]
) -> tuple[str | None, bool, str | None]:
    """(the Job failure message of a FailJob rule, whether the failure counts towards
    backoffLimit, the action of the matching rule). The first matching rule decides."""
    if not policy:
        return None, True, None
    ns, name = pod["metadata"].get("namespace", ""), pod["metadata"]["name"]
    for index, rule in enumerate(policy.get("rules") or []):
        action = rule.get("action")
        if rule.get("onExitCodes"):
            container = _matching_container(pod, rule["onExitCodes"])
            if container is None:
                continue
            if action == "FailJob":
                code = container["state"]["terminated"]["exitCode"]
                return (
                    f"Container {container.get('name')} for pod {ns}/{name} failed with exit code {code} "
                    f"matching FailJob rule at index {index}",
                    True,
                    action,
                )
        elif rule.get("onPodConditions"):
            cond = _matching_condition(pod, rule["onPodConditions"])
            if cond is None:
                continue
            if action == "FailJob":
                kind = cond.get("type")
                return (
                    f"Pod {ns}/{name} has condition {kind} matching FailJob rule at index {index}",
                    True,
                    action,
                )
        else:
            continue
        if action == "Ignore":
            return None, False, action
        if action in ("Count", "FailIndex"):  # FailIndex counts; per-index limits are not supported
            return None, True, action
    return None, True, None


# --- backoff ------------------------------------------------------------------------------------


def backoff_delay(failures: int, base: float, cap: float) -> float:
    """base, 2·base, 4·base, ... capped: the delay before the pod after `failures` consecutive
    failures (getRemainingTimeForFailuresCount)."""
    if failures <= 0:
        return 0.0
    delay = base
    for _ in range(1, failures):
        delay *= 2
        if delay >= cap:
            return cap
    return min(delay, cap)


# --- conditions ---------------------------------------------------------------------------------


def new_condition(type_: str, reason: str, message: str, status: str = "True") -> dict[str, Any]:
    now = meta.now()
    cond: dict[str, Any] = {"type": type_, "status": status, "lastProbeTime": now, "lastTransitionTime": now}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def ensure_condition(
    conditions: list[dict[str, Any]], type_: str, status: str, reason: str, message: str
) -> bool:
    """ensureJobConditionStatus: update the condition of that type or append it (never append a
    False one). True when the list changed."""
    for i, cond in enumerate(conditions):
        if cond.get("type") == type_:
            if (cond.get("status"), cond.get("reason", ""), cond.get("message", "")) != (
                status,
                reason,
                message,
            ):
                conditions[i] = new_condition(type_, reason, message, status)
                return True
            return False
    if status != "False":
        conditions.append(new_condition(type_, reason, message, status))
        return True
    return False


def is_finished(job: dict[str, Any]) -> str:
    """ "Complete" or "Failed" once the Job has that condition True, else ""."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return str(cond["type"])
    return ""
