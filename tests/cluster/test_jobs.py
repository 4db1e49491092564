"""The Job controller against the in-process control plane and the local node: the 1.31+
condition sequence, backoffLimit with the pod-recreation backoff, podFailurePolicy,
activeDeadlineSeconds, suspend, and ttlSecondsAfterFinished."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import BACKOFF_BASE, Cluster, job_manifest, wait_for

pytestmark = pytest.mark.timeout(120)

GATED = "import os, sys, time\nwhile not os.path.exists(os.environ['GATE']): time.sleep(0.02)\n"


def gate(tmp: Path, name: str) -> tuple[Path, list[dict[str, Any]]]:
    path = tmp / f"{name}.gate"
    return path, [{"name": "GATE", "value": str(path)}]


def conditions(job: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (c["type"], c.get("reason", ""), c.get("message", ""))
        for c in (job.get("status") or {}).get("conditions") or []
    ]


def test_a_job_runs_its_pod_and_completes_through_success_criteria_met(
    cluster: Cluster, tmp_path: Path
) -> None:
    door, env = gate(tmp_path, "done")
    job = cluster.create("batch", "jobs", job_manifest("hello", "-c", GATED, env=env))

    def running() -> dict[str, Any] | None:
        current = cluster.get("batch", "jobs", "default", "hello") or {}
        status = current.get("status") or {}
        return status if status.get("active") == 1 and status.get("ready") == 1 else None

    status = wait_for(running, "the Job to have one ready pod")
    assert status["terminating"] == 0 and status["uncountedTerminatedPods"] == {} and status["startTime"]
    (pod,) = cluster.pods_of(job)
    m = pod["metadata"]
    assert re.fullmatch(r"hello-[bcdfghjklmnpqrstvwxz2456789]{5}", m["name"])
    assert m["labels"]["batch.kubernetes.io/job-name"] == "hello"
    assert m["labels"]["batch.kubernetes.io/controller-uid"] == job["metadata"]["uid"]
    assert m["ownerReferences"] == [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": "hello",
            "uid": job["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert m["finalizers"] == ["batch.kubernetes.io/job-tracking"]  # while the pod runs
    assert pod["spec"]["nodeName"] == "local"

    door.touch()
    wait_for(lambda: cluster.job_condition("default", "hello", "Complete"), "the Job to complete")
    done = cluster.get("batch", "jobs", "default", "hello")
    assert done is not None
    reached = ("CompletionsReached", "Reached expected number of succeeded pods")
    assert conditions(done) == [("SuccessCriteriaMet", *reached), ("Complete", *reached)]
    assert (
        done["status"]["succeeded"] == 1 and "failed" not in done["status"] and "active" not in done["status"]
    )
    assert done["status"]["ready"] == 0 and done["status"]["uncountedTerminatedPods"] == {}
    assert done["status"]["completionTime"] == done["status"]["conditions"][1]["lastTransitionTime"]
    # SuccessCriteriaMet was stored on its own first, while the pod was still uncounted
    versions = [conditions(v) for v in cluster.history("batch", "jobs", "default", "hello")]
    interim = [v for v in versions if v and v[-1][0] == "SuccessCriteriaMet"]
    assert interim and versions.index(interim[0]) < versions.index(conditions(done))
    (finished,) = cluster.pods_of(job)
    assert not finished["metadata"].get("finalizers")  # counted, then released
    assert finished["status"]["phase"] == "Succeeded"  # the pod stays for its logs and message
    assert ("SuccessfulCreate", f"Created pod: {m['name']}") in cluster.events("default", "hello")
    wait_for(
        lambda: ("Completed", "Job completed") in cluster.events("default", "hello"), "the Completed event"
    )


def test_failures_count_towards_backoff_limit_with_the_recreation_delay(cluster: Cluster) -> None:
    cluster.create("batch", "jobs", job_manifest("flaky", "-c", "import sys; sys.exit(1)", backoffLimit=2))
    wait_for(lambda: cluster.job_condition("default", "flaky", "Failed"), "the Job to fail")
    job = cluster.get("batch", "jobs", "default", "flaky")
    assert job is not None
    limit = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
    assert conditions(job) == [("FailureTarget", *limit), ("Failed", *limit)]
    assert job["status"]["failed"] == 3 and "succeeded" not in job["status"]
    assert "completionTime" not in job["status"]
    failures = [v["status"].get("failed", 0) for v in cluster.history("batch", "jobs", "default", "flaky")]
    assert sorted(set(failures)) == [0, 1, 2, 3]  # counted one by one
    runs = [p for p in cluster.node.processes if p.pod.startswith("flaky-")]
    assert len(runs) == 3 and len({p.pod for p in runs}) == 3 and all(p.exit_code == 1 for p in runs)
    # each replacement waited at least base, then 2*base after the previous failure
    for n, (before, after) in enumerate(itertools.pairwise(runs)):
        assert before.exited is not None
        assert after.started - before.exited >= BACKOFF_BASE * 2**n
    wait_for(lambda: ("BackoffLimitExceeded", limit[1]) in cluster.events("default", "flaky"), "the event")


OPERATOR_POLICY = {  # what the operator puts on its Jobs (controller/jobs.py)
    "rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "worker", "operator": "In", "values": [2]}},
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
    ]
}


def test_pod_failure_policy_fails_the_job_at_once_on_exit_code_2(cluster: Cluster) -> None:
    job = cluster.create(
        "batch",
        "jobs",
        job_manifest(
            "bad-input", "-c", "import sys; sys.exit(2)", backoffLimit=6, podFailurePolicy=OPERATOR_POLICY
        ),
    )
    wait_for(lambda: cluster.job_condition("default", "bad-input", "Failed"), "the Job to fail")
    done = cluster.get("batch", "jobs", "default", "bad-input")
    assert done is not None
    (pod,) = cluster.pods_of(job)
    pod_name = pod["metadata"]["name"]
    message = f"Container worker for pod default/{pod_name} failed with exit code 2 matching FailJob rule at index 0"  # noqa: E501
    assert conditions(done) == [
        ("FailureTarget", "PodFailurePolicy", message),
        ("Failed", "PodFailurePolicy", message),
    ]
    assert done["status"]["failed"] == 1
    assert len([p for p in cluster.node.processes if p.pod.startswith("bad-input-")]) == 1


def test_exit_codes_not_in_the_policy_count_and_not_in_operator_matches(cluster: Cluster) -> None:
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "NotIn", "values": [0, 3]}}]}
    cluster.create(
        "batch",
        "jobs",
        job_manifest("not-in", "-c", "import sys; sys.exit(3)", backoffLimit=0, podFailurePolicy=policy),
    )
    wait_for(lambda: cluster.job_condition("default", "not-in", "Failed"), "the Job to fail")
    job = cluster.get("batch", "jobs", "default", "not-in")
    assert job is not None and conditions(job)[-1][1] == "BackoffLimitExceeded"  # 3 is excluded: counted


def evict(cluster: Cluster, pod: dict[str, Any]) -> None:
    """What the eviction API does: the DisruptionTarget condition, then a graceful delete."""
    m = pod["metadata"]
    current = cluster.get("", "pods", m["namespace"], m["name"])
    assert current is not None
    status = current["status"]
    status.setdefault("conditions", []).append(
        {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "EvictionByEvictionAPI",
            "message": "Eviction API: evicting",
            "lastTransitionTime": current["metadata"]["creationTimestamp"],
        }
    )
    body = {
        "metadata": {"name": m["name"], "resourceVersion": current["metadata"]["resourceVersion"]},
        "status": status,
    }
    cluster.call("update", "", "pods", m["namespace"], m["name"], body, subresource="status")
    cluster.call("delete", "", "pods", m["namespace"], m["name"])


def test_a_disrupted_pod_is_ignored_and_replaced(cluster: Cluster, tmp_path: Path) -> None:
    door, env = gate(tmp_path, "second")
    job = cluster.create(
        "batch",
        "jobs",
        job_manifest("disrupted", "-c", GATED, env=env, backoffLimit=0, podFailurePolicy=OPERATOR_POLICY),
    )
    first = wait_for(
        lambda: [p for p in cluster.pods_of(job) if p["status"].get("phase") == "Running"],
        "the first pod to run",
    )[0]
    evict(cluster, first)
    wait_for(
        lambda: (
            len(cluster.pods_of(job)) >= 1
            and first["metadata"]["name"] not in {p["metadata"]["name"] for p in cluster.pods_of(job)}
        ),
        "the evicted pod to go",
    )
    wait_for(
        lambda: [p for p in cluster.pods_of(job) if p["status"].get("phase") == "Running"],
        "a replacement to run",
    )
    door.touch()
    wait_for(lambda: cluster.job_condition("default", "disrupted", "Complete"), "the Job to complete")
    job_now = cluster.get("batch", "jobs", "default", "disrupted")
    assert job_now is not None
    assert "failed" not in job_now["status"]  # with backoffLimit 0, a counted failure would have failed it
    evicted, replacement = [p for p in cluster.node.processes if p.pod.startswith("disrupted-")]
    assert evicted.pod == first["metadata"]["name"]
    assert evicted.signals == ["SIGTERM"] and evicted.exit_code == 128 + 15
    assert evicted.exited is not None and replacement.started > evicted.exited  # replaced once Failed


def test_active_deadline_fails_the_job_and_stops_its_pod(cluster: Cluster, tmp_path: Path) -> None:
    _, env = gate(tmp_path, "never")
    job = cluster.create("batch", "jobs", job_manifest("slow", "-c", GATED, env=env, activeDeadlineSeconds=1))
    wait_for(lambda: cluster.job_condition("default", "slow", "Failed"), "the deadline")
    done = cluster.get("batch", "jobs", "default", "slow")
    assert done is not None
    deadline = ("DeadlineExceeded", "Job was active longer than specified deadline")
    assert conditions(done) == [("FailureTarget", *deadline), ("Failed", *deadline)]
    assert done["status"]["failed"] == 1 and done["status"]["terminating"] == 0
    (run,) = [p for p in cluster.node.processes if p.pod.startswith("slow-")]
    assert run.signals == ["SIGTERM"]
    wait_for(lambda: not cluster.pods_of(job), "the deleted pod to be gone")
    assert ("SuccessfulDelete", f"Deleted pod: {run.pod}") in cluster.events("default", "slow")


def test_a_suspended_job_starts_no_pod_until_resumed(cluster: Cluster) -> None:
    job = cluster.create("batch", "jobs", job_manifest("later", "-c", "pass", suspend=True))
    wait_for(lambda: cluster.job_condition("default", "later", "Suspended"), "the Suspended condition")
    current = cluster.get("batch", "jobs", "default", "later")
    assert current is not None and not cluster.pods_of(job) and "startTime" not in current["status"]
    cluster.call(
        "patch",
        "batch",
        "jobs",
        "default",
        "later",
        {"spec": {"suspend": False}},
        content_type="application/merge-patch+json",
    )
    wait_for(lambda: cluster.job_condition("default", "later", "Complete"), "the resumed Job to complete")
    done = cluster.get("batch", "jobs", "default", "later")
    assert done is not None
    suspended = next(c for c in done["status"]["conditions"] if c["type"] == "Suspended")
    assert (suspended["status"], suspended["reason"], suspended["message"]) == (
        "False",
        "JobResumed",
        "Job resumed",
    )
    assert {"Suspended", "Resumed"} <= {reason for reason, _ in cluster.events("default", "later")}


def test_a_finished_job_is_deleted_after_its_ttl_with_its_pods(cluster: Cluster) -> None:
    job = cluster.create(
        "batch", "jobs", job_manifest("short-lived", "-c", "pass", ttlSecondsAfterFinished=1)
    )
    wait_for(lambda: cluster.job_condition("default", "short-lived", "Complete"), "the Job to complete")
    assert cluster.pods_of(job)
    wait_for(lambda: cluster.get("batch", "jobs", "default", "short-lived") is None, "the TTL controller")
    wait_for(lambda: not cluster.pods_of(job), "the garbage collector to delete its pods")
