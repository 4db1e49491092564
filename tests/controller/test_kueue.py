"""What Kueue says of a Job it holds, in the resource's Queued message: the Job's Workload as
Kueue writes it (conditions, reasons and messages from Kueue v0.19.2's source: the scheduler's
flavor assigner, the workload and job reconcilers, preemption), read as plain values and put
into words (controller/kueue.py), and the decision that carries them (decide.queued)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from contentgen.api import format_time
from contentgen.controller.decide import World, decide
from contentgen.controller.job_admission import Backoff
from contentgen.controller.kueue import MAX_WORDS, Workload, explain, workload_of, workload_state
from tests.harness.controller import NOW, apply, job, reason
from tests.harness.kueue import JOB_UID, PENDING_QUOTA, WORKLOAD, condition, started, workload

PREEMPTED = (
    "Preempted to accommodate a workload (UID: 8f1e..., JobUID: 77aa...) due to prioritization in the "
    "ClusterQueue; preemptor path: /gpu-cq; preemptee path: /gpu-cq"
)


def says(obj: dict[str, Any]) -> str:
    return explain(workload_state(obj), NOW)


ADMITTED = {
    "clusterQueue": "gpu-cq",
    "podSetAssignments": [{"name": "main", "flavors": {"nvidia.com/gpu": "default-flavor"}, "count": 1}],
}
RESERVED = condition("QuotaReserved", "True", "QuotaReserved", "Quota reserved in ClusterQueue gpu-cq")


def test_no_workload_yet_and_one_not_considered_yet() -> None:
    assert explain(None, NOW) == "Kueue has made no Workload for it yet"
    assert says(workload()) == "Kueue has not considered its Workload yet"


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("Pending", PENDING_QUOTA),  # Kueue's default: the scheduler's words
        ("WaitingForQuota", PENDING_QUOTA),  # with the UnadmittedWorkloadsObservability gate
        (
            "ExceedsMaxQuota",
            "couldn't assign flavors to pod set main: insufficient quota for nvidia.com/gpu in flavor "
            "default-flavor, previously considered podsets requests (0) + current podset request (8) > "
            "maximum capacity (4)",
        ),
        ("Inadmissible", "LocalQueue gpus doesn't exist"),
        ("Misconfigured", "ClusterQueue gpu-cq doesn't exist"),
        ("Inadmissible", "LocalQueue gpus is stopped"),  # an inactive queue
        ("Suspended", "ClusterQueue gpu-cq is inactive"),
        ("Pending", "Workload no longer fits after processing another workload"),
    ],
)
def test_quota_not_reserved_is_said_in_kueues_words(reason: str, message: str) -> None:
    assert says(workload(condition("QuotaReserved", "False", reason, message))) == message


def test_a_condition_without_a_message_gives_its_reason() -> None:
    assert says(workload(condition("QuotaReserved", "False", "PendingEvaluation", ""))) == "PendingEvaluation"


def test_admitted_but_not_yet_resumed() -> None:
    admitted = condition("Admitted", "True", "Admitted", "The workload is admitted")
    assert (
        says(workload(RESERVED, admitted, admission=ADMITTED))
        == "admitted by ClusterQueue 'gpu-cq'; Kueue resumes the Job"
    )


def test_quota_reserved_waiting_for_admission_checks() -> None:
    not_yet = condition("Admitted", "False", "UnsatisfiedChecks", "The workload has not all checks ready")
    checks = [
        {
            "name": "provisioning",
            "state": "Pending",
            "message": "Waiting for nodes",
            "lastTransitionTime": "x",
        },
        {"name": "budget", "state": "Ready", "message": "", "lastTransitionTime": "x"},
    ]
    said = says(workload(RESERVED, not_yet, admission=ADMITTED, admissionChecks=checks))
    assert said == (
        "quota reserved in ClusterQueue 'gpu-cq', not admitted yet: provisioning is Pending (Waiting for "
        "nodes)"
    )
    # no check named: the Admitted condition's words
    assert says(workload(RESERVED, not_yet, admission=ADMITTED)).endswith(
        "not admitted yet: The workload has not all checks ready"
    )


def test_preempted_then_requeued_and_waiting_again() -> None:
    # evicted by preemption: the job reconciler stops the Job and clears the admission with the
    # eviction's message; Requeued True (a preempted Workload goes straight back to its queue)
    evicted = condition("Evicted", "True", "Preempted", PREEMPTED)
    preempted = condition("Preempted", "True", "InClusterQueue", PREEMPTED)
    requeued = condition("Requeued", "True", "Preempted", PREEMPTED)
    cleared = condition("QuotaReserved", "False", "Pending", PREEMPTED)
    assert says(workload(evicted, preempted, requeued, cleared)) == f"evicted (Preempted): {PREEMPTED}"
    # the scheduler tried again: why it waits now follows
    waiting = condition("QuotaReserved", "False", "Pending", PENDING_QUOTA)
    assert (
        says(workload(evicted, preempted, requeued, waiting))
        == f"evicted (Preempted): {PREEMPTED}; {PENDING_QUOTA}"
    )


def test_evicted_with_a_backoff_says_when_it_is_queued_again() -> None:
    timeout = "Exceeded the PodsReady timeout ns/" + WORKLOAD
    evicted = condition("Evicted", "True", "PodsReadyTimeout", timeout)
    requeued = condition("Requeued", "False", "PodsReadyTimeout", timeout)
    cleared = condition("QuotaReserved", "False", "Pending", timeout)
    later = NOW + timedelta(seconds=120)
    state = {"requeueState": {"count": 2, "requeueAt": format_time(later)}}
    assert says(workload(evicted, requeued, cleared, **state)) == (
        f"evicted (PodsReadyTimeout): {timeout}; Kueue queues it again at 2026-11-21T12:02:00Z "
        "(backoff; requeued 2 times)"
    )
    # the backoff is over: no time to wait for
    over = {"requeueState": {"count": 1, "requeueAt": format_time(NOW - timedelta(seconds=1))}}
    assert says(workload(evicted, requeued, cleared, **over)) == f"evicted (PodsReadyTimeout): {timeout}"


def test_deactivated() -> None:
    why = "The workload is deactivated due to exceeding the maximum number of re-queuing retries"
    evicted = condition("Evicted", "True", "DeactivatedDueToRequeuingLimitExceeded", why)
    assert says(workload(evicted, active=False)) == (
        f"its Workload is deactivated (spec.active: false): {why}; Kueue admits it only once it is "
        "active again"
    )
    assert says(workload(active=False)).startswith("its Workload is deactivated (spec.active: false); ")


def test_finished_without_running() -> None:
    finished = condition("Finished", "True", "FailedToStart", "invalid podSetInfo: bad node selector")
    assert says(workload(finished)) == (
        "Kueue finished its Workload without running it: invalid podSetInfo: bad node selector"
    )


def test_long_words_are_cut() -> None:
    said = says(workload(condition("QuotaReserved", "False", "Pending", "x" * 40000)))
    assert len(said) == MAX_WORDS and said.endswith("...")


def test_the_workload_is_the_one_the_job_controls() -> None:
    mine = workload(name="job-demo-new")
    mine["metadata"]["creationTimestamp"] = "2026-11-21T11:59:30Z"
    old = workload(name="job-demo-old")  # Kueue replaces a Workload that no longer matches its Job
    going = workload(name="job-demo-going")
    going["metadata"]["deletionTimestamp"] = "2026-11-21T11:59:40Z"
    going["metadata"]["creationTimestamp"] = "2026-11-21T11:59:50Z"
    other = workload(name="job-other", job_uid="another")
    unowned = workload(name="job-unowned")
    unowned["metadata"]["ownerReferences"][0]["controller"] = False
    found = workload_of([old, other, mine, going, unowned], JOB_UID)
    assert found is not None and found.name == "job-demo-new"
    assert workload_of([other, unowned], JOB_UID) is None
    assert workload_of([], JOB_UID) is None


def test_a_v1beta1_workload_reads_the_same() -> None:
    obj = workload(condition("QuotaReserved", "False", "Pending", PENDING_QUOTA))
    obj["apiVersion"] = "kueue.x-k8s.io/v1beta1"
    assert workload_state(obj) == workload_state({**obj, "apiVersion": "kueue.x-k8s.io/v1beta2"})
    state = workload_state(workload(RESERVED, admission=ADMITTED, active=True))
    assert state == Workload(
        name=WORKLOAD,
        active=True,
        conditions={"QuotaReserved": state.conditions["QuotaReserved"]},
        cluster_queue="gpu-cq",
    )


# --- the decision ------------------------------------------------------------------------------


def held() -> Any:
    return job(active=0, suspended=True, queue="gpus", gpus="1 nvidia.com/gpu", job_uid=JOB_UID)


def test_the_queued_message_and_its_event_carry_kueues_reason() -> None:
    res = started()
    said = workload_state(workload(condition("QuotaReserved", "False", "Pending", PENDING_QUOTA)))
    d = decide(res, World(now=NOW, jobs=(held(),), workload=said, workload_read=True))
    assert d.status["phase"] == "Pending" and reason(d.status) == "Queued"
    message = f"Job {held().name} waits in Kueue queue 'gpus': {PENDING_QUOTA} (Workload {WORKLOAD})"
    assert d.status["message"] == message
    assert [(e.type, e.reason, e.message) for e in d.events] == [("Normal", "Queued", message)]
    assert d.job is None and d.stop_job is None and d.recheck  # looked at again; the Job left alone
    # Kueue's words change: the message follows; still Queued, so no second Event
    res = apply(res, d)
    stopped = workload_state(
        workload(condition("QuotaReserved", "False", "Inadmissible", "ClusterQueue gpu-cq is stopped"))
    )
    d = decide(res, World(now=NOW, jobs=(held(),), workload=stopped, workload_read=True))
    assert d.status["message"].endswith("'gpus': ClusterQueue gpu-cq is stopped (Workload " + WORKLOAD + ")")
    assert d.events == []


def test_no_workload_yet_and_workloads_not_read() -> None:
    res = started()
    none_yet = decide(res, World(now=NOW, jobs=(held(),), workload_read=True))
    assert none_yet.status["message"] == (
        f"Job {held().name} waits in Kueue queue 'gpus': Kueue has made no Workload for it yet"
    )
    # not read (no Kueue, no rights): the queue, and where Kueue says why
    unread = decide(res, World(now=NOW, jobs=(held(),)))
    assert "waits in Kueue queue 'gpus': Kueue holds it suspended" in unread.status["message"]
    assert "kubectl get workloads -n ns shows why" in unread.status["message"]


def test_a_job_suspended_by_hand_is_not_kueues() -> None:
    res = started()
    by_hand = job(active=0, suspended=True, job_uid=JOB_UID)
    d = decide(res, World(now=NOW, jobs=(by_hand,), workload_read=True))
    assert "is suspended (spec.suspend)" in d.status["message"] and "Kueue" not in d.status["message"]


def test_a_held_jobs_rechecks_are_capped() -> None:
    backoff = Backoff(10.0)
    delays = [backoff.failed("u", 0.0, cap=60.0) for _ in range(6)]
    assert delays == [10.0, 20.0, 40.0, 60.0, 60.0, 60.0]
    assert [backoff.failed("v", 0.0) for _ in range(7)][-1] == 300.0  # the backoff's own cap otherwise
