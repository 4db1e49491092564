"""What Kueue says of a Job it holds, in the resource's Queued message: the Job's Workload as the
real Kueue (v0.19.2) wrote it on the local cluster, in each state (tests/harness/kueue.py reads
the recording tests/kube/test_kueue_states.py makes), read as plain values and put into words
(controller/kueue.py), and the decision that carries them (decide.queued). The states only a
cluster with more than Kueue shows (an admission check's controller, a framework failing to start)
are recorded Workloads with the conditions Kueue's source writes for them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from contentgen.api import parse_timestamp
from contentgen.controller.decide import World, decide
from contentgen.controller.job_admission import Backoff
from contentgen.controller.kueue import MAX_WORDS, Workload, explain, workload_of, workload_state
from tests.harness.controller import NOW, apply, job, reason
from tests.harness.kueue import condition, job_uid, overlay, recorded, started, states


def says(obj: dict[str, Any], at: str = "") -> str:
    now = parse_timestamp(at) if at else NOW
    assert now is not None
    return explain(workload_state(obj), now)


def message(state: str, kind: str = "QuotaReserved") -> str:
    return str(condition(recorded(state), kind)["message"])


def test_the_recording_holds_every_state_the_operator_words() -> None:
    assert states() == [
        "admitted",
        "admitted-v1beta1",
        "deactivated",
        "evicted",
        "evicted-backoff",
        "no-cluster-queue",
        "no-local-queue",
        "no-quota",
        "no-unused-quota",
        "preempted",
        "preempted-requeued",
        "stopped",
    ]


def test_no_workload_yet_and_one_not_considered_yet() -> None:
    assert explain(None, NOW) == "Kueue has made no Workload for it yet"
    fresh = recorded("no-local-queue")
    fresh["status"] = {}  # as Kueue's job reconciler makes it, before its queue manager looks
    assert says(fresh) == "Kueue has not considered its Workload yet"


@pytest.mark.parametrize(
    "state", ["no-local-queue", "no-cluster-queue", "no-quota", "no-unused-quota", "stopped"]
)
def test_quota_not_reserved_is_said_in_kueues_words(state: str) -> None:
    assert says(recorded(state)) == message(state)


def test_kueues_words_for_each_wait() -> None:
    assert message("no-local-queue") == "LocalQueue nowhere doesn't exist"
    assert message("no-cluster-queue") == "ClusterQueue nowhere doesn't exist"
    assert message("stopped") == "ClusterQueue held is inactive"  # stopPolicy: Hold
    assert message("no-quota").startswith(
        "couldn't assign flavors to pod set main: insufficient quota for nvidia.com/gpu in flavor gpu-nodes"
    )
    assert message("no-unused-quota") == (
        "couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in flavor "
        "gpu-nodes, 1 more needed"
    )


def test_a_condition_without_a_message_gives_its_reason() -> None:
    silent = overlay(recorded("no-quota"), ("QuotaReserved", "False", "PendingEvaluation", ""))
    assert says(silent) == "PendingEvaluation"


def test_admitted_but_not_yet_resumed() -> None:
    assert says(recorded("admitted")) == "admitted by ClusterQueue 'gpus'; Kueue resumes the Job"


def test_quota_reserved_waiting_for_admission_checks() -> None:
    reserved = overlay(
        recorded("admitted"),
        ("Admitted", "False", "UnsatisfiedChecks", "The workload has not all checks ready"),
    )
    checks = [
        {
            "name": "provisioning",
            "state": "Pending",
            "message": "Waiting for nodes",
            "lastTransitionTime": "x",
        },
        {"name": "budget", "state": "Ready", "message": "", "lastTransitionTime": "x"},
    ]
    assert says(overlay(reserved, admissionChecks=checks)) == (
        "quota reserved in ClusterQueue 'gpus', not admitted yet: provisioning is Pending (Waiting for nodes)"
    )
    # no check named: the Admitted condition's words
    assert says(reserved).endswith("not admitted yet: The workload has not all checks ready")


def test_preempted_while_kueue_stops_the_job_then_waiting_again() -> None:
    preempted = message("preempted", "Evicted")
    assert preempted.startswith("Preempted to accommodate a workload (UID: ")
    # Kueue says Evicted while the Workload still holds its quota, then stops the Job
    assert says(recorded("preempted")) == (
        f"evicted (Preempted): {preempted}; Kueue stops the Job and queues it again"
    )
    # the quota given back, QuotaReserved False with the same words: said once
    assert says(recorded("preempted-requeued")) == f"evicted (Preempted): {preempted}"
    # the scheduler tried again and says why it waits now: that follows
    waiting = overlay(
        recorded("preempted-requeued"), ("QuotaReserved", "False", "Pending", message("no-unused-quota"))
    )
    assert says(waiting) == f"evicted (Preempted): {preempted}; {message('no-unused-quota')}"


def test_evicted_by_waitforpodsready_says_when_it_is_queued_again() -> None:
    timeout = message("evicted", "Evicted")
    assert timeout.startswith("Exceeded the PodsReady timeout team/job-nowhere-")
    evicted, backoff = recorded("evicted"), recorded("evicted-backoff")
    requeue_at = backoff["status"]["requeueState"]["requeueAt"]
    at = condition(backoff, "QuotaReserved")["lastTransitionTime"]
    again = f"Kueue queues it again at {requeue_at} (backoff; requeued 1 time)"
    assert (
        says(evicted, at)
        == f"evicted (PodsReadyTimeout): {timeout}; Kueue stops the Job and queues it again; {again}"
    )
    assert says(backoff, at) == f"evicted (PodsReadyTimeout): {timeout}; {again}"
    # the backoff is over: no time to wait for
    later = parse_timestamp(requeue_at)
    assert later is not None
    assert (
        explain(workload_state(backoff), later + timedelta(seconds=1))
        == f"evicted (PodsReadyTimeout): {timeout}"
    )


def test_deactivated_once_its_requeues_ran_out() -> None:
    why = message("deactivated", "Evicted")
    assert why == "The workload is deactivated due to exceeding the maximum number of re-queuing retries"
    assert says(recorded("deactivated")) == (
        f"its Workload is deactivated (spec.active: false): {why}; Kueue admits it only once it is "
        "active again"
    )
    plain = recorded("no-quota")
    plain["spec"]["active"] = False  # deactivated by a person (kubectl patch): no eviction to name
    assert says(plain).startswith("its Workload is deactivated (spec.active: false); ")


def test_finished_without_running() -> None:
    finished = overlay(
        recorded("admitted"), ("Finished", "True", "FailedToStart", "invalid podSetInfo: bad node selector")
    )
    assert (
        says(finished)
        == "Kueue finished its Workload without running it: invalid podSetInfo: bad node selector"
    )


def test_long_words_are_cut() -> None:
    said = says(overlay(recorded("no-quota"), ("QuotaReserved", "False", "Pending", "x" * 40000)))
    assert len(said) == MAX_WORDS and said.endswith("...")


def test_the_workload_is_the_one_the_job_controls() -> None:
    mine = recorded("admitted")
    uid = job_uid(mine)
    old = recorded("no-quota")  # Kueue replaces a Workload that no longer matches its Job
    old["metadata"]["ownerReferences"][0]["uid"] = uid
    old["metadata"]["creationTimestamp"] = "2000-01-01T00:00:00Z"
    going = recorded("stopped")
    going["metadata"]["ownerReferences"][0]["uid"] = uid
    going["metadata"]["deletionTimestamp"] = going["metadata"]["creationTimestamp"] = "2999-01-01T00:00:00Z"
    other = recorded("no-local-queue")
    unowned = recorded("no-cluster-queue")
    unowned["metadata"]["ownerReferences"][0].update(uid=uid, controller=False)
    found = workload_of([old, other, mine, going, unowned], uid)
    assert found is not None and found.name == mine["metadata"]["name"]
    assert workload_of([other, unowned], uid) is None
    assert workload_of([], uid) is None


def test_a_v1beta1_workload_reads_the_same() -> None:
    """The same Workload read through Kueue's conversion webhook as v1beta1."""
    old, new = recorded("admitted-v1beta1"), recorded("admitted")
    assert old["apiVersion"] == "kueue.x-k8s.io/v1beta1" and new["apiVersion"] == "kueue.x-k8s.io/v1beta2"
    assert workload_state(old) == workload_state(new)
    state = workload_state(new)
    assert state == Workload(
        name=new["metadata"]["name"],
        active=True,
        conditions=state.conditions,
        cluster_queue="gpus",
    )
    assert set(state.conditions) == {"QuotaReserved", "Admitted", "PodsReady"}


# --- the decision ------------------------------------------------------------------------------


def held(workload: dict[str, Any]) -> Any:
    return job(active=0, suspended=True, queue="gpus", gpus="1 nvidia.com/gpu", job_uid=job_uid(workload))


def test_the_queued_message_and_its_event_carry_kueues_reason() -> None:
    res = started()
    waiting = recorded("no-unused-quota")
    name = waiting["metadata"]["name"]
    d = decide(
        res, World(now=NOW, jobs=(held(waiting),), workload=workload_state(waiting), workload_read=True)
    )
    assert d.status["phase"] == "Pending" and reason(d.status) == "Queued"
    words = message("no-unused-quota")
    said = f"Job {held(waiting).name} waits in Kueue queue 'gpus': {words} (Workload {name})"
    assert d.status["message"] == said
    assert [(e.type, e.reason, e.message) for e in d.events] == [("Normal", "Queued", said)]
    assert d.job is None and d.stop_job is None and d.recheck  # looked at again; the Job left alone
    # Kueue's words change: the message follows; still Queued, so no second Event
    res = apply(res, d)
    stopped = overlay(waiting, ("QuotaReserved", "False", "Inadmissible", message("stopped")))
    d = decide(
        res, World(now=NOW, jobs=(held(waiting),), workload=workload_state(stopped), workload_read=True)
    )
    assert d.status["message"].endswith(f"'gpus': ClusterQueue held is inactive (Workload {name})")
    assert d.events == []


def test_no_workload_yet_and_workloads_not_read() -> None:
    res = started()
    one = held(recorded("admitted"))
    none_yet = decide(res, World(now=NOW, jobs=(one,), workload_read=True))
    assert (
        none_yet.status["message"]
        == f"Job {one.name} waits in Kueue queue 'gpus': Kueue has made no Workload for it yet"
    )
    # not read (no Kueue, no rights): the queue, and where Kueue says why
    unread = decide(res, World(now=NOW, jobs=(one,)))
    assert "waits in Kueue queue 'gpus': Kueue holds it suspended" in unread.status["message"]
    assert "kubectl get workloads -n ns shows why" in unread.status["message"]


def test_a_job_suspended_by_hand_is_not_kueues() -> None:
    res = started()
    by_hand = job(active=0, suspended=True, job_uid=job_uid(recorded("admitted")))
    d = decide(res, World(now=NOW, jobs=(by_hand,), workload_read=True))
    assert "is suspended (spec.suspend)" in d.status["message"] and "Kueue" not in d.status["message"]


def test_a_held_jobs_rechecks_are_capped() -> None:
    backoff = Backoff(10.0)
    delays = [backoff.failed("u", 0.0, cap=60.0) for _ in range(6)]
    assert delays == [10.0, 20.0, 40.0, 60.0, 60.0, 60.0]
    assert [backoff.failed("v", 0.0) for _ in range(7)][-1] == 300.0  # the backoff's own cap otherwise
