"""JobSet and Kueue, built from their Go modules and run as the cluster's processes
(localcluster/managers.py), on two real nodes of one GPU each (an extended resource in each Node's
status): a JobSet's two replicated jobs placed one on each node, its pods reaching each other by
the stable names JobSet gives them, to Completed; a pod killed (SIGKILL, through its node's
containerd) restarting the whole group under the JobSet's failure policy; Kueue gang-admitting a
JobSet of two one-GPU pods across both nodes at once, its webhook having suspended it; and a gang
that cannot place all its pods (the second node's GPU gone) admitted by quota, then evicted by
Kueue's waitForPodsReady with none of its pods left running, requeued, and admitted again to run
whole once the GPU is back. One cluster for the module."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from localcluster import LocalCluster, Options
from localcluster.client import Client
from localcluster.cluster import NODE, node_name
from localcluster.node import host, ociimage

SKIP_REASON = host.suite_skip_reason()
pytestmark = [pytest.mark.skipif(bool(SKIP_REASON), reason=SKIP_REASON or "-"), pytest.mark.timeout(600)]

GPU = "nvidia.com/gpu"
JOBSETS = "/apis/jobset.x-k8s.io/v1alpha2/namespaces/{ns}/jobsets"
WORKLOADS = "/apis/kueue.x-k8s.io/v1beta2/namespaces/{ns}/workloads"
KUEUE = "/apis/kueue.x-k8s.io/v1beta2"
SECOND = node_name(1)
# A gang's pods must all be ready within this, or Kueue evicts the gang and queues it again after
# a backoff (1 s, doubling up to 8 s): long enough for two pods to start on a loaded machine.
PODS_READY_TIMEOUT_S = 30
KUEUE_CONFIG = {
    "waitForPodsReady": {
        "timeout": f"{PODS_READY_TIMEOUT_S}s",
        "requeuingStrategy": {"timestamp": "Eviction", "backoffBaseSeconds": 1, "backoffMaxSeconds": 8},
    }
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    root = tmp_path_factory.mktemp("controllers")
    archive = ociimage.probe_archive(root / "probe.tar")
    options = Options(
        root / "cluster",
        image_archives=[archive],
        nodes=2,
        gpus=1,
        controllers=("jobset", "kueue"),
        controller_config={"kueue": KUEUE_CONFIG},
    )
    started = LocalCluster(options).start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def api(cluster: LocalCluster) -> Iterator[Client]:
    client = cluster.client()
    try:
        yield client
    finally:
        client.close()


def wait(check: Callable[[], Any], what: str, timeout: float = 180.0) -> Any:
    """A hang guard, not a timing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def namespace(api: Client, name: str) -> str:
    api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def pod_template(*args: str, gpus: int = 1) -> dict[str, Any]:
    resources = {"cpu": "10m", "memory": "16Mi", GPU: str(gpus)}
    return {
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "main",
                    "image": ociimage.PROBE_IMAGE,
                    "imagePullPolicy": "Never",
                    "args": list(args),
                    "resources": {"requests": resources, "limits": {GPU: str(gpus)}},
                }
            ],
        }
    }


def jobset(name: str, *jobs: tuple[str, list[str]], labels: dict[str, str] | None = None, **spec: Any) -> Any:
    """A JobSet of one-pod replicated jobs (name, the probe's args), each pod one GPU."""
    replicated = [
        {
            "name": job,
            "replicas": 1,
            "template": {"spec": {"backoffLimit": 0, "template": pod_template(*args)}},
        }
        for job, args in jobs
    ]
    return {
        "apiVersion": "jobset.x-k8s.io/v1alpha2",
        "kind": "JobSet",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"replicatedJobs": replicated, **spec},
    }


def pods(api: Client, ns: str) -> list[dict[str, Any]]:
    return list(api.get(f"/api/v1/namespaces/{ns}/pods")["items"])


def running(api: Client, ns: str) -> list[dict[str, Any]]:
    return [p for p in pods(api, ns) if p["status"].get("phase") == "Running" and not deleting(p)]


def deleting(obj: dict[str, Any]) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    return next(
        (c for c in ((obj or {}).get("status") or {}).get("conditions") or [] if c["type"] == kind), {}
    )


def true(obj: dict[str, Any] | None, kind: str) -> bool:
    return condition(obj, kind).get("status") == "True"


def remove(api: Client, ns: str, name: str) -> None:
    """Delete a JobSet and wait until its pods are gone (their GPUs free for the next test)."""
    options = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Foreground"}
    api.delete(JOBSETS.format(ns=ns) + f"/{name}", options)
    wait(
        lambda: not pods(api, ns) and not api.get_or_none(JOBSETS.format(ns=ns) + f"/{name}"), f"{name} gone"
    )


class PodLog:
    """Every version of a namespace's pods, in the API server's order (a watch)."""

    def __init__(self, cluster: LocalCluster, ns: str) -> None:
        self.client, self.path = cluster.client(), f"/api/v1/namespaces/{ns}/pods"
        self.events: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> PodLog:
        self.version = self.client.get(self.path)["metadata"]["resourceVersion"]
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.client.close()

    def _watch(self) -> None:
        while not self._stop.is_set():
            for event in self.client.watch(self.path, resourceVersion=self.version, timeoutSeconds=2):
                if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                    self.events.append(event["object"])
                    self.version = event["object"]["metadata"]["resourceVersion"]

    def running_at(self) -> list[tuple[int, frozenset[str]]]:
        """After each event, the pods whose container was running then: (event index, their uids)."""
        now: set[str] = set()
        out = []
        for i, pod in enumerate(self.events):
            uid = pod["metadata"]["uid"]
            states = {s for c in pod["status"].get("containerStatuses") or [] for s in c.get("state") or {}}
            if "running" in states and not deleting(pod):
                now.add(uid)
            else:
                now.discard(uid)
            out.append((i, frozenset(now)))
        return out


# --- JobSet ----------------------------------------------------------------------------------------


def test_a_jobset_runs_across_both_nodes_its_pods_reaching_each_other_by_name(
    cluster: LocalCluster, api: Client
) -> None:
    ns = namespace(api, "jobset-runs")
    # JobSet's headless Service gives each pod a stable name: JOBSET-JOB-INDEX-POD.JOBSET
    server = f"http://pair-server-0-0.pair.{ns}.svc.cluster.local:8080/"
    made = api.create(
        JOBSETS.format(ns=ns),
        jobset("pair", ("server", ["serve", "8080", "1"]), ("client", ["get", server, "120"])),
    )
    assert made["spec"]["network"]["enableDNSHostnames"] is True  # JobSet's webhook defaulted it
    done = wait(
        lambda: (js := api.get(JOBSETS.format(ns=ns) + "/pair")) and true(js, "Completed") and js, "Completed"
    )
    assert not true(done, "Failed"), done["status"]
    placed = {p["metadata"]["labels"]["jobset.sigs.k8s.io/replicatedjob-name"]: p for p in pods(api, ns)}
    assert {p["spec"]["nodeName"] for p in placed.values()} == {NODE, SECOND}  # one GPU on each node
    assert all(p["status"]["phase"] == "Succeeded" for p in placed.values())
    client_log = api.text(f"/api/v1/namespaces/{ns}/pods/{placed['client']['metadata']['name']}/log")
    assert client_log.endswith("hello from pair-server-0-0\n"), client_log
    remove(api, ns, "pair")


def test_a_killed_pod_restarts_the_whole_group_under_the_failure_policy(
    cluster: LocalCluster, api: Client
) -> None:
    ns = namespace(api, "jobset-restarts")
    api.create(
        JOBSETS.format(ns=ns),
        jobset("group", ("leader", ["sleep"]), ("worker", ["sleep"]), failurePolicy={"maxRestarts": 1}),
    )
    first = wait(lambda: len(up := running(api, ns)) == 2 and up, "both pods running")
    worker = next(
        p for p in first if p["metadata"]["labels"]["jobset.sigs.k8s.io/replicatedjob-name"] == "worker"
    )
    node = cluster.nodes[[node_name(i) for i in range(len(cluster.nodes))].index(worker["spec"]["nodeName"])]
    node.kill_container(worker["status"]["containerStatuses"][0]["containerID"])  # as a node's loss ends it
    # JobSet recreates every Job of the group, the leader's too, with the next restart attempt
    again = wait(
        lambda: (
            len(up := running(api, ns)) == 2
            and all(p["metadata"]["labels"]["jobset.sigs.k8s.io/restart-attempt"] == "1" for p in up)
            and up
        ),
        "the group running again",
    )
    assert {p["metadata"]["uid"] for p in again}.isdisjoint({p["metadata"]["uid"] for p in first})
    status = api.get(JOBSETS.format(ns=ns) + "/group")["status"]
    assert status["restarts"] == 1 and not true({"status": status}, "Failed"), status
    remove(api, ns, "group")


# --- Kueue -----------------------------------------------------------------------------------------


def queues(api: Client, ns: str) -> None:
    """A ClusterQueue of two GPUs (and a little CPU and memory) and the namespace's LocalQueue."""
    api.apply(
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": "gpus"}}
    )
    quota = [
        {"name": "cpu", "nominalQuota": "1"},
        {"name": "memory", "nominalQuota": "1Gi"},
        {"name": GPU, "nominalQuota": "2"},
    ]
    api.apply(
        {
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "ClusterQueue",
            "metadata": {"name": "gpus"},
            "spec": {
                "namespaceSelector": {},
                "resourceGroups": [
                    {
                        "coveredResources": ["cpu", "memory", GPU],
                        "flavors": [{"name": "gpus", "resources": quota}],
                    }
                ],
            },
        }
    )
    local = {"name": "team", "namespace": ns}
    api.apply(
        {
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "LocalQueue",
            "metadata": local,
            "spec": {"clusterQueue": "gpus"},
        }
    )
    wait(
        lambda: true(api.get(f"{KUEUE}/namespaces/{ns}/localqueues/team"), "Active"), "the LocalQueue active"
    )


def workload(api: Client, ns: str) -> dict[str, Any] | None:
    items = api.get(WORKLOADS.format(ns=ns))["items"]
    return items[0] if len(items) == 1 else None


def test_kueue_admits_a_two_pod_gang_across_both_nodes_at_once(cluster: LocalCluster, api: Client) -> None:
    ns = namespace(api, "gang")
    queues(api, ns)
    with PodLog(cluster, ns) as log:
        made = api.create(
            JOBSETS.format(ns=ns),
            jobset("gang", ("a", ["sleep"]), ("b", ["sleep"]), labels={"kueue.x-k8s.io/queue-name": "team"}),
        )
        assert made["spec"]["suspend"] is True  # Kueue's webhook held it; nothing of ours asked
        admitted = wait(
            lambda: (w := workload(api, ns)) and true(w, "Admitted") and w, "the Workload admitted"
        )
        assert [(s["name"], s["count"]) for s in admitted["spec"]["podSets"]] == [("a", 1), ("b", 1)]
        assigned = admitted["status"]["admission"]
        assert assigned["clusterQueue"] == "gpus"
        assert [a["name"] for a in assigned["podSetAssignments"]] == ["a", "b"]
        up = wait(lambda: len(r := running(api, ns)) == 2 and r, "both pods running")
        assert {p["spec"]["nodeName"] for p in up} == {NODE, SECOND}
        wait(lambda: true(workload(api, ns), "PodsReady"), "the gang's pods ready")
    # both of the gang's pods were made after its admission, and ran together
    made_at = min(p["metadata"]["creationTimestamp"] for p in log.events)
    assert made_at >= condition(admitted, "Admitted")["lastTransitionTime"]
    assert any(len(uids) == 2 for _, uids in log.running_at())
    remove(api, ns, "gang")


def test_a_gang_that_cannot_place_is_evicted_whole_and_requeued_until_it_can(
    cluster: LocalCluster, api: Client
) -> None:
    ns = namespace(api, "stranded")
    queues(api, ns)
    cluster.set_capacity({GPU: "0"}, SECOND)  # the quota still says two GPUs; the nodes have one
    try:
        with PodLog(cluster, ns) as log:
            api.create(
                JOBSETS.format(ns=ns),
                jobset(
                    "gang", ("a", ["sleep"]), ("b", ["sleep"]), labels={"kueue.x-k8s.io/queue-name": "team"}
                ),
            )
            wait(lambda: true(workload(api, ns), "Admitted"), "admitted by quota")
            half = wait(
                lambda: len(r := running(api, ns)) == 1 and r, "one pod running, the other unplaceable"
            )
            assert half[0]["spec"]["nodeName"] == NODE
            evicted = wait(
                lambda: (w := workload(api, ns)) and true(w, "Evicted") and w,
                "Kueue's eviction",
                timeout=PODS_READY_TIMEOUT_S + 180,
            )
            assert condition(evicted, "Evicted")["reason"] == "PodsReadyTimeout", evicted["status"]
            # the gang is suspended and its running pod ended with it: nothing of it left running
            wait(lambda: api.get(JOBSETS.format(ns=ns) + "/gang")["spec"].get("suspend") is True, "suspended")
            wait(
                lambda: not any(p["metadata"]["uid"] == half[0]["metadata"]["uid"] for p in running(api, ns)),
                "the half ended",
            )
            cluster.set_capacity({GPU: "1"}, SECOND)  # the GPU is back: the next admission places both
            up = wait(lambda: len(r := running(api, ns)) == 2 and r, "the gang running whole", timeout=300)
            assert {p["spec"]["nodeName"] for p in up} == {NODE, SECOND}
            again = wait(
                lambda: (w := workload(api, ns)) and true(w, "PodsReady") and w, "the gang's pods ready"
            )
        # queued again by Kueue after its backoff, and admitted anew
        evicted_at = condition(evicted, "Evicted")["lastTransitionTime"]
        assert condition(again, "Admitted")["lastTransitionTime"] >= evicted_at
        assert condition(again, "Requeued")["reason"] == "BackoffFinished", again["status"]
        assert again["status"]["requeueState"]["count"] >= 1
        assert {e["reason"] for e in again["status"]["schedulingStats"]["evictions"]} == {"PodsReadyTimeout"}
        # the gang ran whole as new pods: the half that ran first never ran beside its other half
        assert half[0]["metadata"]["uid"] not in {p["metadata"]["uid"] for p in up}
        assert not any(half[0]["metadata"]["uid"] in uids and len(uids) == 2 for _, uids in log.running_at())
    finally:
        cluster.set_capacity({GPU: "1"}, SECOND)
    remove(api, ns, "gang")
