"""provider: cluster on the real scheduler: the real node advertises GPUs (nvidia.com/gpu in
its capacity, an extended resource written into its status: no device plugin), and a cluster
resource's Job asks for one. With none on the node the status says why (in GPUs) and the run
starts once one is there; with one GPU, two resources run one after the other (their pods are
never placed together); with Kueue's queue label, a Job the real Kueue holds (a process of the
cluster, built from its Go module) shows Pending/Queued in Kueue's words from its Workload, and
the operator leaves it suspended until Kueue admits it and resumes it.

No models are staged, and the GPU image's reference names the worker image (these tests schedule,
they draw nothing): the workers end Failed (ModelNotFound, or before the cluster provider is built,
InvalidInput). These tests are about scheduling and statuses."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import pytest

from contentgen.controller.kueue import explain, workload_state
from tests.harness.kube import image, reason, record_calls
from tests.kube.harness import LOG, Cluster, cluster, operator, wait_for

pytestmark = pytest.mark.timeout(600)
GPU = "nvidia.com/gpu"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KUEUE = "/apis/kueue.x-k8s.io/v1beta2/namespaces/{namespace}"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with (
        pytest.MonkeyPatch.context() as mp,
        cluster(tmp_path_factory.mktemp("cluster"), mp, gpus=1, controllers=("kueue",)) as c,
    ):
        mp.setenv("CONTENTGEN_RECONCILE_INTERVAL_SECONDS", "1")
        # a GPU Job asks for a GPU node's memory by default (gpu_defaults); this node has the machine's
        small = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "2Gi"}}
        mp.setenv("CONTENTGEN_GPU_JOBS", json.dumps({"ImageGeneration": {"resources": small}}))
        mp.setattr("contentgen.controller.reconciler.RECHECK_SECONDS", 1.0)  # a held Job's, for Kueue's words
        with operator(c):
            yield c
        record_calls(c)


def gpu_image(name: str) -> dict[str, Any]:
    return image(name, provider="cluster", model="flux-dev")


def gpus(c: Cluster, count: int) -> None:
    c.set_capacity({GPU: str(count)})
    wait_for(
        lambda: c.get("nodes", "", c.node_name)["status"]["allocatable"].get(GPU) == str(count),  # type: ignore[index]
        60,
        f"the node advertising {count} GPU",
    )


def the_job(c: Cluster, ns: str) -> dict[str, Any]:
    return wait_for(lambda: next(iter(c.jobs(ns)), None), 120, f"a Job in {ns}")  # type: ignore[no-any-return]


def finished(c: Cluster, ns: str, name: str) -> dict[str, Any]:
    """The run ended (no models are staged here: Failed), having left Pending."""
    status = c.wait_phase("ImageGeneration", ns, name, "Failed", timeout=300)
    assert reason(status) not in ("PodNotScheduled", "Queued"), status
    return status


def test_with_no_gpu_on_the_node_the_status_says_so_and_the_run_starts_once_there_is(env: Cluster) -> None:
    c, ns = env, "no-gpus"
    gpus(c, 0)
    try:
        c.apply(gpu_image("waits"), ns)
        job = the_job(c, ns)
        (container,) = job["spec"]["template"]["spec"]["containers"]
        assert container["resources"]["limits"][GPU] == container["resources"]["requests"][GPU] == "1"
        assert container["image"].rsplit("/", 1)[-1].startswith("contentgen-worker-gpu:")
        env_vars = {e["name"]: e.get("value") for e in container["env"]}
        assert (
            env_vars["CONTENTGEN_GPU_COUNT"] == "1" and env_vars["CONTENTGEN_CLUSTER_MODELS_DIR"] == "/models"
        )
        status = wait_for(
            lambda: (
                (s := c.status("ImageGeneration", ns, "waits")).get("conditions")
                and reason(s) == "PodNotScheduled"
                and s
            ),
            120,
            f"PodNotScheduled (now {c.status('ImageGeneration', ns, 'waits')})",
        )
        assert status["phase"] == "Pending"
        assert f"no node has 1 {GPU} GPU free" in status["message"], status
        assert f"Insufficient {GPU}" in status["message"], status  # the scheduler's own words
        wait_for(
            lambda: any(
                e["reason"] == "PodNotScheduled" and e["type"] == "Warning" for e in c.events(ns, "waits")
            ),
            30,
            "a Warning PodNotScheduled",
        )
    finally:
        gpus(c, 1)  # a GPU is installed: the scheduler places the pod by itself
    finished(c, ns, "waits")
    (pod,) = c.pods(ns)
    assert pod["spec"]["nodeName"] == c.node_name


class PodLog:
    """Every version of the namespace's pods, in the API server's order (a watch)."""

    def __init__(self, c: Cluster, namespace: str) -> None:
        self.c, self.namespace = c, namespace
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.broken: Exception | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name=f"pods-{namespace}")

    def __enter__(self) -> PodLog:
        self._thread.start()
        assert self._ready.wait(30), "the pod watch did not start"
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()

    def _watch(self) -> None:
        client = self.c.local.client()
        path = f"/api/v1/namespaces/{self.namespace}/pods"
        version = client.get(path)["metadata"]["resourceVersion"]
        self._ready.set()
        try:
            while not self._stop.is_set():
                for event in client.watch(path, resourceVersion=version, timeoutSeconds=5):
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        self.events.append((event["type"], event["object"]))
                        version = event["object"]["metadata"]["resourceVersion"]
        except Exception as exc:  # the test reads what was recorded; a broken watch fails it there
            self.broken = exc
        finally:
            client.close()

    def most_placed_at_once(self) -> tuple[int, int]:
        """(the most pods bound to a node and not finished at any one time, pods ever bound)."""
        placed: set[str] = set()
        ever: set[str] = set()
        most = 0
        for kind, pod in self.events:
            uid = pod["metadata"]["uid"]
            done = kind == "DELETED" or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
            if pod["spec"].get("nodeName") and not done:
                placed.add(uid)
                ever.add(uid)
            else:
                placed.discard(uid)
            most = max(most, len(placed))
        return most, len(ever)


def test_one_gpu_runs_two_resources_one_after_the_other(env: Cluster) -> None:
    c, ns = env, "one-gpu"
    c.ensure_namespace(ns)
    with PodLog(c, ns) as pods:
        c.hold(bound=True)  # the first pod holds the GPU (bound, its container not started) until released
        try:
            c.apply(gpu_image("first"), ns)
            c.apply(gpu_image("second"), ns)
            waiting = wait_for(
                lambda: next(
                    (
                        name
                        for name in ("first", "second")
                        if (s := c.status("ImageGeneration", ns, name)).get("conditions")
                        and reason(s) == "PodNotScheduled"
                    ),
                    None,
                ),
                120,
                "one of the two waiting for the GPU",
            )
            message = c.status("ImageGeneration", ns, waiting)["message"]
            assert f"no node has 1 {GPU} GPU free" in message, message
            assert sum(1 for p in c.pods(ns) if p["spec"].get("nodeName")) == 1
        finally:
            c.release()
        for name in ("first", "second"):
            finished(c, ns, name)
        assert pods.broken is None, pods.broken
        most, ever = pods.most_placed_at_once()
    assert (most, ever) == (1, 2), pods.events


def decisions_about(name: str) -> int:
    """The operator's decisions logged for `name` (reconciler: one debug line per decision)."""
    return sum(1 for line in LOG.lines() if f"/{name} generation" in line and "Queued" in line)


def kueue_lines() -> list[str]:
    """The operator's log lines about reading Kueue's Workloads."""
    return [line for line in LOG.lines() if "Kueue's Workloads" in line]


def workload_of(c: Cluster, job: dict[str, Any]) -> dict[str, Any] | None:
    """The Workload Kueue made for the Job (the operator's own lookup reads it the same way)."""
    meta = job["metadata"]
    found = c.admin.get(
        KUEUE.format(namespace=meta["namespace"]) + "/workloads",
        labelSelector=f"kueue.x-k8s.io/job-uid={meta['uid']}",
    )["items"]
    return found[0] if found else None


def gpu_queue(c: Cluster, gpus: int) -> None:
    """A ClusterQueue `gpu-cq` of `gpus` GPUs (and the CPU and memory the Jobs ask for)."""
    flavor = {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "ResourceFlavor",
        "metadata": {"name": "gpu-nodes"},
    }
    quota = [
        {"name": "cpu", "nominalQuota": "4"},
        {"name": "memory", "nominalQuota": "16Gi"},
        {"name": GPU, "nominalQuota": str(gpus)},
    ]
    queue = {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "ClusterQueue",
        "metadata": {"name": "gpu-cq"},
        "spec": {
            "namespaceSelector": {},
            "resourceGroups": [
                {
                    "coveredResources": ["cpu", "memory", GPU],
                    "flavors": [{"name": "gpu-nodes", "resources": quota}],
                }
            ],
        },
    }
    for obj in (flavor, queue):
        c.admin.apply(obj)


def test_a_job_kueue_holds_is_queued_in_kueues_words_until_kueue_admits_it(env: Cluster) -> None:
    """The real Kueue (built from its Go module, a process of the cluster): its webhook suspends the
    Job that names its queue, its Workload says why it waits, and the resource says so in Kueue's
    words, as the operator's own reading of that Workload puts them (controller/kueue.py); once
    Kueue admits it, Kueue resumes the Job and the run goes on. The operator writes nothing to the
    Job or to Kueue's objects."""
    c, ns = env, "kueue"
    c.ensure_namespace(ns)
    c.admin.patch(
        f"/api/v1/namespaces/{ns}", {"metadata": {"labels": {"contentgen.io/queue-name": "gpu-queue"}}}
    )
    c.apply(gpu_image("held"), ns)
    job = the_job(c, ns)
    assert job["metadata"]["labels"][QUEUE_LABEL] == "gpu-queue"
    assert job["spec"]["suspend"] is True  # by Kueue's webhook: the operator does not ask for it
    name = job["metadata"]["name"]

    def message() -> str:
        return str(c.status("ImageGeneration", ns, "held").get("message", ""))

    def says_what_kueue_says(why: str) -> dict[str, Any]:
        """Until the Workload waits for `why` and the resource's message is the operator's words
        for that Workload, as read."""

        def both() -> dict[str, Any] | None:
            workload = workload_of(c, job)
            pending = next(
                (
                    x
                    for x in ((workload or {}).get("status") or {}).get("conditions") or []
                    if x["type"] == "QuotaReserved"
                ),
                {},
            )
            if workload is None or pending.get("reason") != why or pending.get("status") != "False":
                return None
            words = explain(workload_state(workload), datetime.now(UTC))
            named = f"(Workload {workload['metadata']['name']})"
            said = f"Job {name} waits in Kueue queue 'gpu-queue': {words} {named}"
            return workload if message() == said else None

        return wait_for(
            both, 120, lambda: f"Kueue's {why} in the status (now {message()!r}, {workload_of(c, job)})"
        )  # type: ignore[no-any-return]

    # No LocalQueue gpu-queue yet: Kueue's words for that.
    missing = says_what_kueue_says("Inadmissible")
    assert "LocalQueue gpu-queue doesn't exist" in message(), missing["status"]
    assert reason(c.status("ImageGeneration", ns, "held")) == "Queued"
    # The queue made, with no GPU in its quota: the scheduler's words.
    gpu_queue(c, 0)
    local = {"name": "gpu-queue", "namespace": ns}
    c.admin.apply(
        {
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "LocalQueue",
            "metadata": local,
            "spec": {"clusterQueue": "gpu-cq"},
        }
    )
    says_what_kueue_says("Pending")
    assert f"insufficient quota for {GPU}" in message(), message()
    assert c.get("jobs", ns, name, "batch/v1")["spec"]["suspend"] is True  # type: ignore[index]
    assert c.pods(ns) == []
    # The operator looks again (the Job's events, its rechecks) and leaves the Job as it is.
    seen = decisions_about("held")
    wait_for(lambda: decisions_about("held") >= seen + 3, 120, "three more decisions on the held resource")
    assert kueue_lines() == [], kueue_lines()  # Workloads readable all along: nothing to say
    # One Event announced Queued; Kueue's words changed the message, not the reason.
    assert [e["reason"] for e in c.events(ns, "held")].count("Queued") == 1
    # A GPU in the quota: Kueue admits the Workload and resumes the Job; the run goes on from there.
    gpu_queue(c, 1)
    finished(c, ns, "held")
    admitted = workload_of(c, job)
    assert admitted is not None and admitted["status"]["admission"]["clusterQueue"] == "gpu-cq"
    reasons = [reason(v["status"]) for v in c.history("ImageGeneration", ns, "held") if v.get("status")]
    queued = [i for i, r in enumerate(reasons) if r == "Queued"]
    assert queued == list(range(queued[0], queued[-1] + 1)) and reasons[-1] != "Queued", reasons
    # Nothing written to the Job or to Kueue's objects: Workloads listed, by the Job's uid, no more.
    operator = "system:serviceaccount:contentgen:contentgen-operator"
    ours = [d for d in c.decisions() if d.user == operator]
    assert [d for d in ours if d.resource == "jobs" and d.verb in ("update", "patch")] == []
    reads = [d for d in ours if d.resource.startswith("workloads")]
    assert reads and {(d.verb, d.namespace) for d in reads} == {("list", ns)}, reads
    selector = f"labelSelector=kueue.x-k8s.io/job-uid={job['metadata']['uid']}"
    assert all(selector in unquote(d.uri) for d in reads), reads
    kueue = "system:serviceaccount:kueue-system:kueue-controller-manager"
    assert any(
        d.user == kueue and d.resource == "jobs" and d.verb in ("update", "patch") for d in c.decisions()
    )
