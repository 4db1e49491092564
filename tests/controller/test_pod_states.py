"""What the operator reads off a worker pod as a real kubelet writes it (controller/pods.py): a
worker killed at its memory limit is a failure of its own (OOMKilled, the limit and the setting
named), not the logs' tail of a worker that never got to say anything; an image the node lacks
under imagePullPolicy Never is a reason the pod does not start."""

from __future__ import annotations

from typing import Any

from contentgen.api import RunFailure, now
from contentgen.api.run import parse_termination
from contentgen.controller.pods import pod_problem, pod_state, termination_message


def worker_pod(state: dict[str, Any], limit: str = "32Mi") -> dict[str, Any]:
    return {
        "metadata": {
            "name": "p-1",
            "namespace": "default",
            "labels": {"batch.kubernetes.io/job-name": "j", "contentgen.io/kind": "ImageGeneration"},
        },
        "spec": {"containers": [{"name": "worker", "resources": {"limits": {"memory": limit}}}]},
        "status": {"containerStatuses": [{"name": "worker", "state": state}]},
    }


def test_a_worker_killed_for_its_memory_is_an_oomkilled_failure() -> None:
    killed = {
        "terminated": {
            "reason": "OOMKilled",
            "exitCode": 137,
            "finishedAt": "2026-11-25T16:00:00Z",
            "message": "loading numpy\n",  # FallbackToLogsOnError: the log's tail
        }
    }
    state = pod_state(worker_pod(killed))
    assert state is not None
    failure = parse_termination(termination_message([state]) or "")
    assert isinstance(failure, RunFailure) and failure.reason == "OOMKilled"
    assert "(32Mi)" in failure.message and "jobs.ImageGeneration.resources.limits.memory" in failure.message
    assert "\n" not in failure.message and failure.usage is None


def test_a_worker_that_exits_keeps_its_own_message() -> None:
    own = '{"failed": true, "reason": "InvalidInput", "message": "bad"}'
    ended = {"terminated": {"reason": "Error", "exitCode": 2, "finishedAt": "t", "message": own}}
    state = pod_state(worker_pod(ended))
    assert state is not None and termination_message([state]) == own


def test_an_image_never_pulled_is_a_start_problem() -> None:
    waiting = {"waiting": {"reason": "ErrImageNeverPull", "message": 'Container image "x:1" is not present'}}
    state = pod_state(worker_pod(waiting))
    assert state is not None
    assert pod_problem([state], now()) == 'ErrImageNeverPull: Container image "x:1" is not present'
