"""The Workloads the real Kueue (v0.19.2, built from its Go module: localcluster/managers.py) makes
for batch/v1 Jobs, in every state the operator puts into words, on a local cluster's real node
with one GPU: no such LocalQueue, no such ClusterQueue, no GPU in the quota, the quota in use, a
stopped ClusterQueue, admitted, evicted by waitForPodsReady with a backoff to wait, deactivated
once its requeues ran out, preempted by a Job of a higher priority; and one read as v1beta1
through Kueue's conversion webhook.

Each is checked as the operator reads it (controller/kueue.py: workload_state, explain), and kept
in tests/controller/kueue_workloads.json, which the operator's pure tests read
(tests/harness/kueue.py): Kueue's own objects, not ones written after its source. The recording
is compared by its conditions' types, statuses and reasons (the names, uids and times are each
run's); `UPDATE_KUEUE_WORKLOADS=1` writes it again."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from contentgen.api import parse_timestamp
from contentgen.controller.kueue import explain, workload_state
from localcluster import LocalCluster, Options
from localcluster.client import Client
from localcluster.node import host, ociimage
from tests.waiting import wait_for

SKIP_REASON = host.suite_skip_reason()
pytestmark = [pytest.mark.skipif(bool(SKIP_REASON), reason=SKIP_REASON or "-"), pytest.mark.timeout(600)]

RECORDING = Path(__file__).resolve().parents[1] / "controller" / "kueue_workloads.json"
GPU = "nvidia.com/gpu"
KUEUE = "kueue.x-k8s.io/v1beta2"
NS = "team"
# A Job's pods must be ready in 20 s (a loaded machine starts a pod in seconds), or Kueue evicts it
# and queues it again after 10 s (doubling); after one requeue it is deactivated.
CONFIG = {
    "waitForPodsReady": {
        "timeout": "20s",
        "requeuingStrategy": {"backoffBaseSeconds": 10, "backoffMaxSeconds": 20, "backoffLimitCount": 1},
    }
}
SEEN: dict[str, dict[str, Any]] = {}
BACKGROUND = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    root = tmp_path_factory.mktemp("kueue-states")
    options = Options(
        root / "cluster",
        image_archives=[ociimage.probe_archive(root / "probe.tar")],
        gpus=1,
        controllers=("kueue",),
        controller_config={"kueue": CONFIG},
    )
    cluster = LocalCluster(options).start()
    client = cluster.client()
    try:
        client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        queues(client)
        yield client
    finally:
        client.close()
        cluster.stop()


def queues(api: Client) -> None:
    """ClusterQueues: `gpus` (one GPU; a higher priority preempts), `empty` (no GPU), `held`
    (stopped); LocalQueues into each, and `orphan` into one that does not exist."""
    api.apply({"apiVersion": KUEUE, "kind": "ResourceFlavor", "metadata": {"name": "gpu-nodes"}})
    for name, value in (("low", 10), ("high", 1000)):
        api.apply(
            {"apiVersion": KUEUE, "kind": "WorkloadPriorityClass", "metadata": {"name": name}, "value": value}
        )
    for name, gpus, extra in (
        ("gpus", 1, {"preemption": {"withinClusterQueue": "LowerPriority"}}),
        ("empty", 0, {}),
        ("held", 1, {"stopPolicy": "Hold"}),
    ):
        quota = [
            {"name": "cpu", "nominalQuota": "1"},
            {"name": "memory", "nominalQuota": "1Gi"},
            {"name": GPU, "nominalQuota": str(gpus)},
        ]
        group = {
            "coveredResources": ["cpu", "memory", GPU],
            "flavors": [{"name": "gpu-nodes", "resources": quota}],
        }
        spec = {"namespaceSelector": {}, "resourceGroups": [group], **extra}
        api.apply({"apiVersion": KUEUE, "kind": "ClusterQueue", "metadata": {"name": name}, "spec": spec})
    for local, cluster_queue in (
        ("gpus", "gpus"),
        ("empty", "empty"),
        ("held", "held"),
        ("orphan", "nowhere"),
    ):
        meta = {"name": local, "namespace": NS}
        api.apply(
            {
                "apiVersion": KUEUE,
                "kind": "LocalQueue",
                "metadata": meta,
                "spec": {"clusterQueue": cluster_queue},
            }
        )


def job(api: Client, name: str, queue: str, *, priority: str = "", placeable: bool = True) -> dict[str, Any]:
    """A one-pod Job of one GPU in `queue` (the probe sleeping); unplaceable: a node selector no
    node has, so its pod never starts."""
    labels = {"kueue.x-k8s.io/queue-name": queue}
    if priority:
        labels["kueue.x-k8s.io/priority-class"] = priority
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 1,
        "containers": [
            {
                "name": "main",
                "image": ociimage.PROBE_IMAGE,
                "imagePullPolicy": "Never",
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi", GPU: "1"}, "limits": {GPU: "1"}},
            }
        ],
    }
    if not placeable:
        pod["nodeSelector"] = {"example.com/nowhere": "true"}
    body = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {"backoffLimit": 0, "template": {"spec": pod}},
    }
    made: dict[str, Any] = api.create(f"/apis/batch/v1/namespaces/{NS}/jobs", body)
    assert made["spec"]["suspend"] is True  # Kueue's webhook
    return made


def workload(api: Client, made: dict[str, Any], version: str = "v1beta2") -> dict[str, Any] | None:
    found = api.get(
        f"/apis/kueue.x-k8s.io/{version}/namespaces/{NS}/workloads",
        labelSelector=f"kueue.x-k8s.io/job-uid={made['metadata']['uid']}",
    )["items"]
    return found[0] if found else None


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    return next(
        (c for c in ((obj or {}).get("status") or {}).get("conditions") or [] if c["type"] == kind), {}
    )


def seen(api: Client, key: str, made: dict[str, Any], ready: Any, what: str) -> dict[str, Any]:
    """The Job's Workload once `ready(workload)`, recorded under `key`."""
    found: dict[str, Any] = wait_for(
        lambda: (w := workload(api, made)) and ready(w) and w,
        180,
        lambda: f"{key}: {what} (now {workload(api, made)})",
        interval=0.2,
    )
    found["metadata"].pop("managedFields", None)
    SEEN[key] = found
    return found


def waits(reason: str) -> Any:
    return lambda w: (
        condition(w, "QuotaReserved").get("status") == "False"
        and condition(w, "QuotaReserved")["reason"] == reason
    )


def said(obj: dict[str, Any], at: str = "") -> str:
    now = parse_timestamp(at) if at else datetime.now().astimezone()
    assert now is not None
    return explain(workload_state(obj), now)


def test_why_a_workload_waits_in_kueues_words(api: Client) -> None:
    orphan = seen(
        api, "no-local-queue", job(api, "lost", "nowhere"), waits("Inadmissible"), "LocalQueue missing"
    )
    assert said(orphan) == "LocalQueue nowhere doesn't exist"
    no_cq = seen(
        api, "no-cluster-queue", job(api, "stray", "orphan"), waits("Inadmissible"), "ClusterQueue missing"
    )
    assert said(no_cq) == "ClusterQueue nowhere doesn't exist"
    empty = seen(api, "no-quota", job(api, "starved", "empty"), waits("Pending"), "no GPU in the quota")
    assert said(empty).startswith(f"couldn't assign flavors to pod set main: insufficient quota for {GPU}")
    stopped = seen(api, "stopped", job(api, "paused", "held"), waits("Inadmissible"), "the queue stopped")
    assert said(stopped) == "ClusterQueue held is inactive"  # stopPolicy: Hold


def test_admitted_then_the_quota_in_use(api: Client) -> None:
    first = job(api, "first", "gpus", priority="low")
    admitted = seen(
        api, "admitted", first, lambda w: condition(w, "Admitted").get("status") == "True", "admitted"
    )
    assert said(admitted) == "admitted by ClusterQueue 'gpus'; Kueue resumes the Job"
    # the same Workload through Kueue's conversion webhook, as an older Kueue's client reads it
    old = workload(api, first, "v1beta1")
    assert old is not None and old["apiVersion"] == "kueue.x-k8s.io/v1beta1"
    old["metadata"].pop("managedFields", None)
    SEEN["admitted-v1beta1"] = old
    wait_for(
        lambda: condition(workload(api, first), "PodsReady").get("status") == "True", 120, "first running"
    )
    second = job(api, "second", "gpus", priority="low")
    busy = seen(api, "no-unused-quota", second, waits("Pending"), "the GPU in use")
    assert said(busy).endswith(f"insufficient unused quota for {GPU} in flavor gpu-nodes, 1 more needed")
    api.delete(f"/apis/batch/v1/namespaces/{NS}/jobs/second", BACKGROUND)
    # a Job of a higher priority takes the GPU: the running one is preempted
    job(api, "urgent", "gpus", priority="high")
    preempted = seen(
        api, "preempted", first, lambda w: condition(w, "Evicted").get("reason") == "Preempted", "preempted"
    )
    # written while it still holds the quota: Kueue stops the Job, then gives the quota back
    words = said(preempted)
    assert words.startswith("evicted (Preempted): Preempted to accommodate a workload"), words
    assert words.endswith("; Kueue stops the Job and queues it again"), words
    requeued = seen(api, "preempted-requeued", first, waits("Pending"), "preempted, waiting again")
    assert said(requeued).startswith("evicted (Preempted): Preempted to accommodate a workload"), said(
        requeued
    )
    api.delete(f"/apis/batch/v1/namespaces/{NS}/jobs/urgent", BACKGROUND)
    api.delete(f"/apis/batch/v1/namespaces/{NS}/jobs/first", BACKGROUND)


def test_evicted_by_waitforpodsready_backed_off_then_deactivated(api: Client) -> None:
    made = job(api, "nowhere", "gpus", placeable=False)
    evicted = seen(
        api,
        "evicted",
        made,
        lambda w: condition(w, "Evicted").get("reason") == "PodsReadyTimeout",
        "evicted by waitForPodsReady",
    )
    words = said(evicted, condition(evicted, "Evicted")["lastTransitionTime"])
    assert words.startswith("evicted (PodsReadyTimeout): Exceeded the PodsReady timeout "), words
    waiting = seen(api, "evicted-backoff", made, waits("Pending"), "its quota given back, a backoff to wait")
    words = said(waiting, condition(waiting, "QuotaReserved")["lastTransitionTime"])
    assert words.startswith("evicted (PodsReadyTimeout): Exceeded the PodsReady timeout "), words
    assert "Kueue queues it again at" in words and "(backoff; requeued 1 time)" in words, words
    deactivated = seen(
        api,
        "deactivated",
        made,  # Kueue sets spec.active false, then evicts it saying why
        lambda w: (
            w["spec"].get("active") is False
            and condition(w, "Evicted").get("reason", "").startswith("Deactivated")
        ),
        "deactivated",
    )
    assert said(deactivated).startswith("its Workload is deactivated (spec.active: false): "), said(
        deactivated
    )
    assert condition(deactivated, "Evicted")["reason"].startswith("Deactivated"), deactivated["status"]


# The conditions each state's wait fixes where not both: "evicted" waits for Evicted alone, and
# Kueue gives the quota back in the same write or the next (QuotaReserved True, then False:
# make test, 11-29); "evicted-backoff" waits for the quota given back.
FIXED = {"evicted": ("Evicted",)}


def shape(name: str, obj: dict[str, Any]) -> tuple[bool, list[tuple[str, str, str]]]:
    """What each state is: whether it is active, and its conditions that the waits above fix (the
    others, PodsReady and Requeued, are written by other loops of Kueue's, a moment apart)."""
    fixed = FIXED.get(name, ("QuotaReserved", "Evicted"))
    conditions = [(c["type"], c["status"], c["reason"]) for c in obj["status"].get("conditions") or []]
    return obj["spec"].get("active", True), sorted(c for c in conditions if c[0] in fixed)


def test_the_recording_is_what_kueue_made() -> None:
    assert set(SEEN) == {
        "no-local-queue",
        "no-cluster-queue",
        "no-quota",
        "stopped",
        "admitted",
        "admitted-v1beta1",
        "no-unused-quota",
        "preempted",
        "preempted-requeued",
        "evicted",
        "evicted-backoff",
        "deactivated",
    }, sorted(SEEN)
    if os.environ.get("UPDATE_KUEUE_WORKLOADS") == "1":
        RECORDING.write_text(json.dumps(SEEN, indent=1, sort_keys=True) + "\n")
    recorded = json.loads(RECORDING.read_text())
    assert {k: shape(k, v) for k, v in recorded.items()} == {k: shape(k, v) for k, v in SEEN.items()}, (
        "Kueue's Workloads changed: UPDATE_KUEUE_WORKLOADS=1 records them again"
    )
