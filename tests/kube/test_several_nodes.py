"""A LoraTraining across two real nodes (issue 69): the operator makes a JobSet of two pods, one on
each node (each advertises one GPU and has the real JobSet controller beside the control plane),
whose workers meet by torchrun's rendezvous at the first pod's stable name and train the tiny FLUX
together with gloo (the nodes' CPUs), rank 0 storing each checkpoint. Killing the other node's
worker after step 50 is stored fails its pod; the JobSet's failure policy starts the whole group
again, and the training resumes from step 50 to the end: every checkpoint written once (the S3
server's access log), the version's bill its GPU-hours on 2 GPUs with its wall time apart.

The pods run the worker image with torch found on the models' volume (tests/kube/torch_layer.py:
hard links to this checkout's .venv, the GPU worker image's pins), the chart's `gpu.models.hostPath`
holding the tiny FLUX as FLUX.1-dev; the chart's RBAC rendered with `gpu.training.backends` [job,
jobset], every call of the operator recorded (tests/rbac). About 200 CPU-s: two nodes, JobSet's
manager, two workers' pipelines and imports, twice."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from contentgen.store import keys
from tests.cluster.tiny_flux import session_cache, tiny_flux
from tests.harness.chart import operator_settings, rendered
from tests.harness.kube import lora, record_calls, uid_of
from tests.kube import torch_layer
from tests.kube.harness import BUCKET, Cluster, chart_rbac, cluster, operator, wait_for
from tests.rbac.record import identity

pytestmark = [pytest.mark.timeout(1500), pytest.mark.cluster_models]

NS = "gang"
RECORDING = os.environ.get("UPDATE_OBSERVED_CALLS") == "1"
VALUES = {"gpu": {"training": {"backends": ["job", "jobset"], "gpusPerNode": 1}, "inferenceSteps": 2}}


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
            controllers=("jobset",),
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
        with operator(c):
            yield c
        if RECORDING:  # the stopped operator's watch of JobSets ends (and is logged) at its next event
            c.admin.create(f"/apis/jobset.x-k8s.io/v1alpha2/namespaces/{NS}/jobsets", _idle_jobset())
            wait_for(lambda: "watch" in _verbs(c), 180, "the operator's watch of JobSets in the audit log")
        record_calls(c)


def _idle_jobset() -> dict[str, Any]:
    """A JobSet the operator's watch selects (its managed-by label), suspended: nothing runs."""
    pod = {"restartPolicy": "Never", "containers": [{"name": "c", "image": "none.invalid/none:1"}]}
    return {
        "apiVersion": "jobset.x-k8s.io/v1alpha2",
        "kind": "JobSet",
        "metadata": {"name": "idle", "labels": {"app.kubernetes.io/managed-by": "contentgen-operator"}},
        "spec": {
            "suspend": True,
            "replicatedJobs": [{"name": "a", "template": {"spec": {"template": {"spec": pod}}}}],
        },
    }


def _verbs(c: Cluster) -> set[str]:
    return {d.verb for d in c.decisions() if identity(d.user) == "operator" and d.resource == "jobsets"}


def _written(c: Cluster, prefix: str) -> Counter[str]:
    assert c.s3 is not None
    writes = ("PutObject", "CompleteMultipartUpload", "CopyObject")
    return Counter(
        key.removeprefix(f"{BUCKET}/")
        for operation, key, status in c.s3.requests()
        if operation in writes and status < 300 and key.removeprefix(f"{BUCKET}/").startswith(prefix)
    )


def test_a_jobset_of_two_nodes_trains_restarts_as_a_group_and_resumes(env: Cluster) -> None:
    c = env
    spec: dict[str, Any] = {
        "provider": "cluster",
        "training": {"steps": 100, "checkpointEvery": 50, "resolution": 256, "rank": 4},
        "evaluation": {"enabled": False},
        "resources": {"gpus": 1, "nodes": 2},
        "deletionPolicy": "Delete",  # its cleanup deletes the JobSet itself
    }
    c.apply(lora("gang", c.media, **spec), NS)
    uid = uid_of(c, "LoraTraining", NS, "gang")
    checkpoints = keys.lora_version("alice", uid, 1) + "checkpoints/"
    name = wait_for(lambda: c.status("LoraTraining", NS, "gang").get("jobName"), 120, "the run's name")
    jobset = c.get("jobsets", NS, name, group="jobset.x-k8s.io/v1alpha2")
    assert jobset is not None and jobset["metadata"]["ownerReferences"][0]["uid"] == uid

    def pods() -> list[dict[str, Any]]:
        return [
            p
            for p in c.pods(NS)
            if (p["metadata"].get("labels") or {}).get("jobset.sigs.k8s.io/jobset-name") == name
        ]

    wait_for(lambda: c.store.head(checkpoints + "step-000050.safetensors"), 900, "step 50 stored")
    running = [p for p in pods() if p["status"].get("phase") == "Running"]
    assert sorted(p["spec"]["nodeName"] for p in running) == ["local", "local-2"]  # one on each node
    [other] = [p for p in running if p["spec"]["nodeName"] == "local-2"]
    c.local.nodes[1].kill_container(other["status"]["containerStatuses"][0]["containerID"])

    status = c.wait_phase("LoraTraining", NS, "gang", "Succeeded", timeout=900)
    restarted = c.get("jobsets", NS, name, group="jobset.x-k8s.io/v1alpha2")
    assert restarted is not None and restarted["status"]["restarts"] >= 1  # the whole group again
    leader = next(
        p for p in pods() if p["metadata"]["labels"].get("batch.kubernetes.io/job-completion-index") == "0"
    )
    said = c.admin.text(f"/api/v1/namespaces/{NS}/pods/{leader['metadata']['name']}/log")
    assert "resuming the LoRA training after step 50 of 100" in said, said[-3000:]
    writes = _written(c, checkpoints)
    assert writes == {
        checkpoints + f"step-000{s}.{ext}": 1 for s in ("050", "100") for ext in ("pt", "safetensors")
    }
    # the bill: the GPU-hours of 2 GPUs, the wall time apart (the run's usage, its cost's words)
    result = json.loads(c.store.get_bytes(keys.lora_version("alice", uid, 1) + "result.json"))
    [line] = [u for u in result["usage"] if u["item"] == "lora-training"]
    assert line["gpus"] == 2 and line["quantity"] * 3600 == pytest.approx(2 * line["wallSeconds"], rel=1e-3)
    assert " of lora-training x $" in status["cost"]["detail"] and " = 2 GPUs x " in status["cost"]["detail"]
    [version] = status["versions"]
    assert version["provider"] == "cluster"
    # deleting the resource deletes its JobSet (the operator, as it deletes a Job), and its pods
    c.delete("LoraTraining", NS, "gang")
    wait_for(
        lambda: c.get("jobsets", NS, name, group="jobset.x-k8s.io/v1alpha2") is None, 180, "the JobSet gone"
    )
    wait_for(lambda: not pods(), 180, "its pods gone")
