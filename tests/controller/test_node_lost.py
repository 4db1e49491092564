"""A worker's node that stops answering (issue 44), as the control plane then writes the objects:
the node controller marks the Node's Ready Unknown and taints it unreachable, the taint manager
evicts the pod (DisruptionTarget, DeletionByTaintManager; a deletionTimestamp), and no kubelet
ever confirms its end, so it stays Terminating. The Job makes no pod in its place
(podReplacementPolicy Failed) and, at its deadline, sets FailureTarget and never Failed
(Kubernetes 1.31+ holds the terminal condition back until every pod has ended). The resource
says NodeLost in one line, and the run ends at FailureTarget instead of staying Running."""

from __future__ import annotations

import asyncio
import copy
import time
from dataclasses import replace
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from contentgen.api import RunFailure, format_time
from contentgen.controller.decide import World, decide
from contentgen.controller.job_admission import Backoff
from contentgen.controller.observe import job_state
from contentgen.controller.outcomes import read_outcome
from contentgen.controller.pods import CONFIRM_SECONDS, changes_at, end_may_come, pod_problem, pod_state
from contentgen.controller.reconciler import _schedule
from tests.harness.controller import JOB, LABELS, NOW, apply, cond, reason, resource

EVICTED = NOW + timedelta(seconds=60)  # the taint manager's delete, 5 s of grace
DELETING_UNTIL = EVICTED + timedelta(seconds=5)
STUCK = DELETING_UNTIL + timedelta(seconds=CONFIRM_SECONDS + 1)
POD = f"{JOB}-g1-7xq2k"


def stuck_pod() -> dict[str, Any]:
    """The worker pod evicted from a node that stopped answering, as the real node's e2e test
    (test_helm_real_node) found it: the kubelet's last report (Running, its container ready), the
    node controller's Ready False, the taint manager's DisruptionTarget and deletion (5 s of
    grace), the Job controller's finalizer."""

    def cond(kind: str, state: str, at: datetime, **more: str) -> dict[str, Any]:
        found = {"lastProbeTime": None, "lastTransitionTime": format_time(at), "observedGeneration": 1}
        return {**found, "status": state, "type": kind, **more}

    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": POD,
            "namespace": "ns",
            "uid": "9d3c1a52-2f1e-4c55-b1f7-3c6e0f0f1a2b",
            "generateName": f"{JOB}-g1-",
            "creationTimestamp": format_time(NOW),
            "labels": {
                **LABELS,
                "batch.kubernetes.io/job-name": f"{JOB}-g1",
                "job-name": f"{JOB}-g1",
                "batch.kubernetes.io/controller-uid": "4f6b2c0e-1d7a-4d8e-9f3a-5b2c1d0e9f8a",
            },
            "deletionTimestamp": format_time(DELETING_UNTIL),
            "deletionGracePeriodSeconds": 5,
            "finalizers": ["batch.kubernetes.io/job-tracking"],
        },
        "spec": {
            "nodeName": "local",
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 5,
            "containers": [{"name": "worker", "image": "ghcr.io/contentgen/contentgen-worker:0.1.0"}],
            "tolerations": [
                {
                    "effect": "NoExecute",
                    "key": f"node.kubernetes.io/{taint}",
                    "operator": "Exists",
                    "tolerationSeconds": 0,
                }
                for taint in ("unreachable", "not-ready")
            ],
        },
        "status": {
            "phase": "Running",
            "conditions": [
                cond("PodReadyToStartContainers", "True", NOW),
                cond("Initialized", "True", NOW),
                cond("Ready", "False", EVICTED),
                cond("ContainersReady", "True", NOW),
                cond("PodScheduled", "True", NOW),
                cond(
                    "DisruptionTarget",
                    "True",
                    EVICTED,
                    message="Taint manager: deleting due to NoExecute taint",
                    reason="DeletionByTaintManager",
                ),
            ],
            "containerStatuses": [
                {
                    "name": "worker",
                    "ready": True,
                    "restartCount": 0,
                    "started": True,
                    "state": {"running": {"startedAt": format_time(NOW)}},
                }
            ],
        },
    }


def job_with(conditions: list[dict[str, Any]], **status: Any) -> dict[str, Any]:
    """The run's Job as the Job controller writes it with its pod stuck Terminating."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": f"{JOB}-g1", "namespace": "ns", "labels": LABELS, "uid": "4f6b2c0e"},
        "spec": {"activeDeadlineSeconds": 150, "podReplacementPolicy": "Failed"},
        # as found: no `active` (0), the evicted pod counted as terminating, nothing failed
        "status": {
            "startTime": format_time(NOW),
            "ready": 0,
            "terminating": 1,
            "uncountedTerminatedPods": {},
            **({"conditions": conditions} if conditions else {}),
            **status,
        },
    }


def interim(kind: str, reason: str, message: str, at: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastProbeTime": at,
        "lastTransitionTime": at,
    }


DEADLINE = format_time(NOW + timedelta(seconds=150))
FAILURE_TARGET = interim(
    "FailureTarget", "DeadlineExceeded", "Job was active longer than specified deadline", DEADLINE
)


def test_a_pod_past_its_grace_period_and_not_ended_is_node_lost_in_one_line() -> None:
    state = pod_state(stuck_pod())
    assert state is not None
    # its kubelet may still be ending it: said as a silent node until then
    assert "stopped answering" in pod_problem([state], DELETING_UNTIL)
    line = pod_problem([state], STUCK)
    assert line.startswith("NodeLost: ") and "\n" not in line, line
    assert POD in line and "local" in line and "Terminating" in line and "taint manager" in line, line
    assert f"kubectl delete pod -n ns {POD} --force" in line, line
    assert pod_problem([state], STUCK + timedelta(minutes=5)) == line  # the status stays put
    assert not end_may_come([state], STUCK)  # its end, and the worker's words, never come


def silent_pod() -> dict[str, Any]:
    """The pod on a node that stopped answering, not evicted (every node down, or its toleration
    not over): the node controller's Ready False beside the kubelet's last ContainersReady True."""
    pod = stuck_pod()
    for key in ("deletionTimestamp", "deletionGracePeriodSeconds"):
        pod["metadata"].pop(key)
    pod["status"]["conditions"] = [c for c in pod["status"]["conditions"] if c["type"] != "DisruptionTarget"]
    return pod


def test_a_pod_whose_node_stopped_answering_is_node_lost_before_any_eviction() -> None:
    state = pod_state(silent_pod())
    assert state is not None
    line = pod_problem([state], NOW + timedelta(hours=1))
    assert line.startswith("NodeLost: ") and "\n" not in line, line
    assert "local, which stopped answering" in line and format_time(EVICTED) in line, line
    assert not end_may_come([state], EVICTED)  # its worker's words will not come either
    # the same Ready False from the kubelet itself (a readiness gate not met, its containers
    # not ready) is no silent node
    gated = silent_pod()
    gated["spec"]["readinessGates"] = [{"conditionType": "example.com/ready"}]
    not_ready = silent_pod()
    for condition in not_ready["status"]["conditions"]:
        if condition["type"] == "ContainersReady":
            condition["status"] = "False"
    for pod in (gated, not_ready):
        found = pod_state(pod)
        assert found is not None and pod_problem([found], EVICTED) == "", pod


def test_a_pod_its_kubelet_ended_or_is_ending_is_not_node_lost() -> None:
    ended = stuck_pod()
    ended["status"]["phase"] = "Failed"
    ended["status"]["containerStatuses"][0]["state"] = {
        "terminated": {"exitCode": 143, "reason": "Error", "finishedAt": format_time(EVICTED)}
    }
    by_hand = stuck_pod()  # deleted by hand a moment ago, on a node that answers
    by_hand["status"]["conditions"] = [
        {**c, "status": "True"} if c["type"] == "Ready" else c
        for c in by_hand["status"]["conditions"]
        if c["type"] != "DisruptionTarget"
    ]
    by_hand["metadata"]["deletionTimestamp"] = format_time(STUCK + timedelta(seconds=30))
    for pod in (ended, by_hand):
        state = pod_state(pod)
        assert state is not None and pod_problem([state], STUCK) == "", pod
    running = pod_state(by_hand)
    assert running is not None and end_may_come([running], STUCK)
    # deleted by hand on a node that then stops answering: stuck all the same, once its time is up
    assert "was deleted and is stuck Terminating" in pod_problem([running], STUCK + timedelta(seconds=60))


def test_a_job_with_failure_target_alone_has_ended_and_says_why() -> None:
    state = job_state(job_with([FAILURE_TARGET], failed=0))
    assert state is not None and state.finished and not state.complete
    assert (state.failed_reason, state.finished_at) == ("DeadlineExceeded", DEADLINE)
    # once the pod has ended (the node back), Failed follows: the same reason
    failed = interim("Failed", "DeadlineExceeded", "Job was active longer than specified deadline", DEADLINE)
    later = job_state(job_with([FAILURE_TARGET, failed], terminating=0, failed=1))
    assert later is not None and later.failed_reason == "DeadlineExceeded"


def test_a_job_whose_success_is_decided_has_ended() -> None:
    met = interim(
        "SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods", DEADLINE
    )
    state = job_state(job_with([met], succeeded=1, terminating=0))
    assert state is not None and state.complete and state.finished and state.finished_at == DEADLINE
    running = job_state(job_with([], active=1, terminating=0))
    assert running is not None and not running.finished


def test_a_started_run_says_node_lost_then_ends_at_its_jobs_deadline() -> None:
    """Running (the worker reported a stage), then its node is lost: NodeLost, Stalled, one line,
    a Warning Event; at the Job's FailureTarget the run is Failed, DeadlineExceeded, though the
    Job never reaches Failed and its pod never ends."""
    res = apply(resource(), decide(resource(), World(now=NOW)))
    res = replace(res, status={**res.status, "stage": "dataset", "progress": 30})
    running = job_state(job_with([], active=1, ready=1, terminating=0))
    assert running is not None
    ready = decide(res, World(now=NOW, jobs=(running,)))
    assert reason(ready.status) == "Running" and not ready.recheck  # its Job's events wake it
    res = apply(res, ready)
    pod = pod_state(stuck_pod())
    assert pod is not None
    silent = job_state(job_with([]))
    assert silent is not None and not silent.finished
    # evicted, its grace period not over: a silent node so far; nothing will announce the end of
    # the grace period, so the operator looks again, then at the latest
    seen = World(now=EVICTED, jobs=(silent,), pod_problem=pod_problem([pod], EVICTED))
    evicted = decide(res, replace(seen, pod_problem_changes_at=changes_at([pod], EVICTED)))
    assert reason(evicted.status) == "NodeLost" and evicted.recheck
    assert evicted.recheck_in == (DELETING_UNTIL - EVICTED).total_seconds() + CONFIRM_SECONDS
    assert "stopped answering" in evicted.status["message"]
    assert [(e.type, e.reason) for e in evicted.events] == [("Warning", "NodeLost")]
    res = apply(res, evicted)
    lost = decide(res, World(now=STUCK, jobs=(silent,), pod_problem=pod_problem([pod], STUCK)))
    status = lost.status
    assert status["phase"] == "Running" and reason(status) == "NodeLost", status
    assert cond(status, "Stalled") == "True" and cond(status, "Reconciling") == "False"
    assert POD in status["message"] and "\n" not in status["message"]
    assert "stuck Terminating" in status["message"] and lost.events == []  # said already
    assert lost.recheck  # until the node is back, or the pod force-deleted, or the deadline
    assert changes_at([pod], STUCK) is None and lost.recheck_in is None  # nothing more comes unannounced
    res = apply(res, lost)

    ended = job_state(job_with([FAILURE_TARGET]))
    assert ended is not None
    later = NOW + timedelta(seconds=151)
    first = decide(res, World(now=later, jobs=(ended,)))
    assert first.needs_outcome == ended
    assert not end_may_come([pod], later)  # the reconciler does not wait for the pod's words
    outcome = asyncio.run(read_outcome(ended, res, None, None))
    assert isinstance(outcome, RunFailure)
    failed = decide(res, World(now=later, jobs=(ended,), outcome=outcome))
    assert failed.status["phase"] == "Failed" and reason(failed.status) == "DeadlineExceeded", failed.status
    assert "deadline" in failed.status["message"]


def test_the_pod_problem_of_another_pod_does_not_hide_the_lost_one() -> None:
    pulling = copy.deepcopy(stuck_pod())
    pulling["metadata"].pop("deletionTimestamp")
    pulling["metadata"]["name"] = f"{JOB}-g1-other"
    pulling["status"]["containerStatuses"][0]["state"] = {
        "waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}
    }
    pulling["status"]["conditions"] = [
        c for c in pulling["status"]["conditions"] if c["type"] == "PodScheduled"
    ]
    pulling["status"]["phase"] = "Pending"
    states = [s for s in (pod_state(pulling), pod_state(stuck_pod())) if s is not None]
    assert pod_problem(states, STUCK).startswith("NodeLost: ")
    assert pod_problem(states[:1], STUCK).startswith("ImagePullBackOff")


def test_the_stuck_line_is_looked_for_when_it_is_due_however_long_the_backoff_has_grown() -> None:
    """Every reconcile of a run whose pod is not ready doubles its backoff (the pod marked not
    ready, the Job's ready count, the eviction's condition and delete: each an event): by the
    eviction's grace period's end the next look could be minutes away, and the run said "stopped
    answering" past its Job's deadline (the real node's e2e test, once in five full runs). The
    decision's `recheck_in` brings that look to when the line changes."""
    res = resource()
    pod = pod_state(stuck_pod())
    silent = job_state(job_with([]))
    assert pod is not None and silent is not None
    world = World(now=EVICTED, jobs=(silent,), pod_problem=pod_problem([pod], EVICTED))
    op = SimpleNamespace(lora_waiters={}, image_waiters={}, backoff=Backoff(2.0))
    for _ in range(8):  # 2, 4, ... 256 s
        _schedule(op, res, decide(res, world))  # type: ignore[arg-type]
    assert op.backoff.next_at[res.uid] - time.monotonic() > 200
    decision = decide(res, replace(world, pod_problem_changes_at=changes_at([pod], EVICTED)))
    _schedule(op, res, decision)  # type: ignore[arg-type]
    due = (DELETING_UNTIL - EVICTED).total_seconds() + CONFIRM_SECONDS
    assert op.backoff.next_at[res.uid] - time.monotonic() == pytest.approx(due, abs=1)
