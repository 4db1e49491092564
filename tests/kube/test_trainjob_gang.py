"""A LoraTraining across two real nodes through Kubeflow Trainer, admitted by the real Kueue as one
gang (issue 79). The cluster runs JobSet, Kueue and Kubeflow Trainer (v2.3, its controller built
from its Go module: `make kube`) beside the control plane; each of its two nodes advertises one GPU
and carries one label of a Topology Kueue schedules by (a block).

- The operator makes a TrainJob of Trainer's torch-distributed runtime (`backend: trainjob`),
  which is what `contentgen render-job` prints for the same manifest and settings (every field it
  prints is the stored object's; Kueue and Trainer add their own).
- Kueue's webhook suspends it; its Workload is one pod set of two pods, admitted whole by the
  ClusterQueue's two GPUs (quota for all its pods or none), both in one block (topology-aware
  scheduling: `gpu.training.topology`, which the operator asks of its pods); the status said
  Queued in Kueue's words first, then Running.
- After step 20's checkpoint is stored, an urgent Job (a higher WorkloadPriorityClass) asks the
  same queue for a GPU: Kueue preempts the whole gang (its pods stopped, the TrainJob suspended),
  the resource says Queued, evicted, Preempted and by what; once the urgent Job ends, Kueue admits
  the gang again and the training resumes from its last checkpoint on both nodes to the end.
- Every checkpoint is written once (the S3 server's access log); the version's bill is one line
  of its GPU-hours on 2 GPUs with its wall time apart; deleting the resource deletes its TrainJob
  and their pods.

The pods run the worker image with torch found on the models' volume (tests/kube/torch_layer.py),
the chart's `gpu.models.hostPath` holding the tiny FLUX as FLUX.1-dev; the chart's RBAC rendered
for `gpu.training.backends` [job, jobset, trainjob], every call of the operator recorded
(tests/rbac). The JobSet path's own restart after a lost node is test_several_nodes.py."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from contentgen.cli.main import main
from contentgen.store import keys
from tests.cluster.tiny_flux import session_cache, tiny_flux
from tests.harness.chart import operator_settings, rendered
from tests.harness.conditions import reason
from tests.harness.kube import lora, record_calls, uid_of
from tests.kube import torch_layer
from tests.kube.harness import (
    BUCKET,
    Cluster,
    chart_rbac,
    cluster,
    engines_at_length,
    operator,
    wait_for,
)

pytestmark = [pytest.mark.timeout(1800), pytest.mark.cluster_models, engines_at_length]

NS, QUEUE, BLOCK = "trainer", "gpus", "contentgen.test/block"
GPU = "nvidia.com/gpu"
KUEUE = "kueue.x-k8s.io/v1beta2"
TRAINJOBS = "trainer.kubeflow.org/v1alpha1"
VALUES = {
    "gpu": {
        "training": {"backends": ["job", "jobset", "trainjob"], "gpusPerNode": 1, "topology": BLOCK},
        "inferenceSteps": 2,
    }
}
STEPS, EVERY = 120, 20


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    flux = tiny_flux(session_cache(tmp_path_factory))
    models = torch_layer.tiny_flux_models(tmp_path_factory.mktemp("models"), flux)
    root = tmp_path_factory.mktemp("cluster")
    worker = torch_layer.image(root.parent / "torch-layer")
    with (
        pytest.MonkeyPatch.context() as mp,
        cluster(
            root,
            mp,
            rbac=chart_rbac(root / "chart", VALUES),
            gpus=1,
            nodes=2,
            controllers=("jobset", "kueue", "trainer"),
            worker=worker,
        ) as c,
    ):
        settings = operator_settings(rendered(VALUES), ("CONTENTGEN_GPU_", "CONTENTGEN_CLUSTER_"))
        for name, value in settings.items():
            mp.setenv(name, value)
        mp.setenv("CONTENTGEN_GPU_WORKER_IMAGE", worker[0])
        mp.setenv("CONTENTGEN_CLUSTER_MODELS", json.dumps({"hostPath": str(models)}))
        small = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "6Gi"}}
        mp.setenv("CONTENTGEN_GPU_JOBS", json.dumps({"LoraTraining": {"resources": small}}))
        queues(c)
        with operator(c):
            yield c
        record_calls(c)


def block(c: Cluster, node: str, name: str) -> None:
    c.admin.patch(f"/api/v1/nodes/{node}", {"metadata": {"labels": {BLOCK: name}}})


def queues(c: Cluster) -> None:
    """The platform team's Kueue: a Topology of blocks of nodes (the two nodes in two blocks at
    first), a flavor of it, a ClusterQueue of 2 GPUs that preempts lower priorities, its LocalQueue
    in NS, and an urgent WorkloadPriorityClass."""
    block(c, "local", "b1")
    block(c, "local-2", "b2")
    levels = [{"nodeLabel": BLOCK}, {"nodeLabel": "kubernetes.io/hostname"}]
    quota = [
        {"name": "cpu", "nominalQuota": "4"},
        {"name": "memory", "nominalQuota": "16Gi"},
        {"name": GPU, "nominalQuota": "2"},
    ]
    c.ensure_namespace(NS)
    for made in (
        {"kind": "Topology", "metadata": {"name": "blocks"}, "spec": {"levels": levels}},
        {
            "kind": "ResourceFlavor",
            "metadata": {"name": "gpu-nodes"},
            # a flavor of a Topology names its nodes (Kueue refuses one without nodeLabels)
            "spec": {"topologyName": "blocks", "nodeLabels": {"kubernetes.io/os": "linux"}},
        },
        {
            "kind": "ClusterQueue",
            "metadata": {"name": QUEUE},
            "spec": {
                "namespaceSelector": {},
                "preemption": {"withinClusterQueue": "LowerPriority"},
                "resourceGroups": [
                    {
                        "coveredResources": ["cpu", "memory", GPU],
                        "flavors": [{"name": "gpu-nodes", "resources": quota}],
                    }
                ],
            },
        },
        {"kind": "LocalQueue", "metadata": {"name": QUEUE, "namespace": NS}, "spec": {"clusterQueue": QUEUE}},
        {"kind": "WorkloadPriorityClass", "metadata": {"name": "urgent"}, "value": 1000},
    ):
        c.admin.apply({"apiVersion": KUEUE, **made})


def urgent_job(image: str) -> dict[str, Any]:
    """A Job of one pod of one GPU for a few seconds, in the same queue, at the urgent priority."""
    labels = {"kueue.x-k8s.io/queue-name": QUEUE, "kueue.x-k8s.io/priority-class": "urgent"}
    container = {
        "name": "urgent",
        "image": image,
        "imagePullPolicy": "Never",
        "command": ["python3", "-c", "import time; time.sleep(5)"],
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi", GPU: "1"}, "limits": {GPU: "1"}},
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "urgent", "namespace": NS, "labels": labels},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [container]}}},
    }


def workloads(c: Cluster) -> list[dict[str, Any]]:
    return list(c.admin.get(f"/apis/{KUEUE}/namespaces/{NS}/workloads")["items"])


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((x for x in (obj.get("status") or {}).get("conditions") or [] if x["type"] == kind), {})


def leaves(obj: Any, path: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        return {p: v for k, sub in obj.items() for p, v in leaves(sub, f"{path}.{k}").items()} or {path: {}}
    if isinstance(obj, list):
        return {p: v for i, sub in enumerate(obj) for p, v in leaves(sub, f"{path}[{i}]").items()} or {
            path: []
        }
    return {path: obj}


def printed(tmp_path: Path, doc: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """`contentgen render-job` of the resource as applied (its uid and namespace), with the
    operator's settings (this process's environment)."""
    path = tmp_path / "gang.yaml"
    path.write_text(yaml.safe_dump(doc))
    capsys.readouterr()
    assert main(["render-job", str(path)]) == 0
    return yaml.safe_load(capsys.readouterr().out)  # type: ignore[no-any-return]


def written(c: Cluster, prefix: str) -> Counter[str]:
    assert c.s3 is not None
    writes = ("PutObject", "CompleteMultipartUpload", "CopyObject")
    return Counter(
        key.removeprefix(f"{BUCKET}/")
        for operation, key, status in c.s3.requests()
        if operation in writes and status < 300 and key.removeprefix(f"{BUCKET}/").startswith(prefix)
    )


def test_a_trainjob_gang_is_admitted_whole_preempted_requeued_and_resumes(
    env: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = env
    spec: dict[str, Any] = {
        "provider": "cluster",
        "training": {"steps": STEPS, "checkpointEvery": EVERY, "resolution": 256, "rank": 4},
        "evaluation": {"enabled": False},
        "resources": {"gpus": 1, "nodes": 2, "backend": "trainjob"},
        "queueName": QUEUE,
        "deletionPolicy": "Delete",  # its cleanup deletes the TrainJob itself
    }
    doc = lora("gang", c.media, **spec)
    c.apply(doc, NS)
    uid = uid_of(c, "LoraTraining", NS, "gang")
    checkpoints = keys.lora_version("alice", uid, 1) + "checkpoints/"
    name = wait_for(lambda: c.status("LoraTraining", NS, "gang").get("jobName"), 120, "the run's name")
    trainjob = c.get("trainjobs", NS, name, group=TRAINJOBS)
    assert trainjob is not None and trainjob["metadata"]["ownerReferences"][0]["uid"] == uid

    # what render-job prints for the manifest is what the operator made: every field of it is the
    # stored object's (Kueue's webhook and Trainer's add theirs: suspend, Kueue's patch, times)
    doc["metadata"].update(namespace=NS, uid=uid, generation=1)
    made = leaves(printed(tmp_path, doc, capsys))
    stored = leaves(trainjob)
    assert {p: v for p, v in made.items() if stored.get(p) != v} == {}
    assert trainjob["spec"]["suspend"] is True  # Kueue's webhook: the operator does not ask for it

    def pods() -> list[dict[str, Any]]:
        return [
            p
            for p in c.pods(NS)
            if (p["metadata"].get("labels") or {}).get("jobset.sigs.k8s.io/jobset-name") == name
            and not p["metadata"].get("deletionTimestamp")
        ]

    def gang() -> dict[str, Any] | None:
        ours = [
            w
            for w in workloads(c)
            if w["metadata"]["ownerReferences"][0]["uid"] == trainjob["metadata"]["uid"]
        ]
        return ours[0] if ours else None

    # one pod set of two pods, which must share a block: none has two GPUs, so Kueue holds it all,
    # saying so (no pod made), until the platform team puts the second node in the first's block
    def held() -> str | None:
        message = str(c.status("LoraTraining", NS, "gang").get("message") or "")
        return message if "waits in Kueue queue" in message and "topology" in message else None

    said = wait_for(held, 180, lambda: f"Kueue's topology words (now {c.status('LoraTraining', NS, 'gang')})")
    assert reason(c.status("LoraTraining", NS, "gang")) == "Queued" and not pods(), said
    found = gang()
    assert found is not None
    [podset] = found["spec"]["podSets"]
    assert podset["count"] == 2 and podset["topologyRequest"]["required"] == BLOCK
    block(c, "local-2", "b1")
    c.admin.patch(f"/apis/{KUEUE}/clusterqueues/{QUEUE}", {"metadata": {"labels": {"nodes": "moved"}}})

    # admitted as one gang: both pods' quota at once, in one block, one pod on each node
    wait_for(lambda: c.store.head(checkpoints + f"step-{EVERY:06d}.safetensors"), 900, "the first checkpoint")
    admitted = gang()
    assert admitted is not None
    [assigned] = admitted["status"]["admission"]["podSetAssignments"]
    assert assigned["count"] == 2 and assigned["resourceUsage"][GPU] == "2"
    assert "kubernetes.io/hostname" in assigned["topologyAssignment"]["levels"]
    running = [p for p in pods() if p["status"].get("phase") == "Running"]
    assert sorted(p["spec"]["nodeName"] for p in running) == ["local", "local-2"]  # one on each node

    # an urgent Job preempts the whole gang; the training waits, saying why
    c.admin.create(
        f"/apis/batch/v1/namespaces/{NS}/jobs", urgent_job(os.environ["CONTENTGEN_GPU_WORKER_IMAGE"])
    )

    def preempted() -> str | None:
        message = str(c.status("LoraTraining", NS, "gang").get("message") or "")
        return message if "evicted (Preempted)" in message else None

    said = wait_for(preempted, 300, "the training preempted, in its status")
    words = f"TrainJob {name} waits in Kueue queue '{QUEUE}': evicted (Preempted): Preempted to accommodate"
    assert said.startswith(words), said
    assert reason(c.status("LoraTraining", NS, "gang")) == "Queued"
    wait_for(lambda: not pods(), 300, "the gang's pods stopped")
    urgent = wait_for(
        lambda: (c.get("jobs", NS, "urgent", "batch/v1") or {}).get("status", {}).get("succeeded"),
        300,
        "the urgent Job done",
    )
    assert urgent == 1

    # admitted again: the training resumes from its last checkpoint, on both nodes, to the end
    status = c.wait_phase("LoraTraining", NS, "gang", "Succeeded", timeout=900)
    leader = next(
        p for p in pods() if p["metadata"]["labels"].get("batch.kubernetes.io/job-completion-index") == "0"
    )
    log = c.admin.text(f"/api/v1/namespaces/{NS}/pods/{leader['metadata']['name']}/log")
    resumed = [line for line in log.splitlines() if "resuming the LoRA training after step" in line]
    assert resumed and f"of {STEPS}" in resumed[0], log[-3000:]
    words = [
        (reason(v["status"]), str(v["status"].get("message") or ""))
        for v in c.history("LoraTraining", NS, "gang")
        if v.get("status")
    ]
    said_in_order = [r for r, m in words]
    assert "Queued" in said_in_order and said_in_order[-1] == "Succeeded"
    assert any("evicted (Preempted)" in m for _, m in words)
    first_run = said_in_order.index("Running")
    assert "Queued" in said_in_order[:first_run]  # waited for Kueue's admission first

    # every checkpoint written once; the bill one line, its GPU-hours 2 GPUs × the wall time
    writes = written(c, checkpoints)
    assert set(writes.values()) == {1}, writes
    assert checkpoints + f"step-{STEPS:06d}.safetensors" in writes
    result = json.loads(c.store.get_bytes(keys.lora_version("alice", uid, 1) + "result.json"))
    [line] = [u for u in result["usage"] if u["item"] == "lora-training"]
    assert line["gpus"] == 2 and line["quantity"] * 3600 == pytest.approx(2 * line["wallSeconds"], rel=1e-3)
    assert " = 2 GPUs x " in status["cost"]["detail"]

    # deleting the resource deletes its TrainJob, and their pods
    c.delete("LoraTraining", NS, "gang")
    wait_for(lambda: c.get("trainjobs", NS, name, group=TRAINJOBS) is None, 180, "the TrainJob gone")
    wait_for(lambda: not pods(), 180, "its pods gone")
