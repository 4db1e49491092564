"""A LoraTraining of several GPUs (spec.resources): where it goes and what the operator makes of it,
decided without a cluster.

- N GPUs on one node: the Job's one pod asks for N and runs its worker under torchrun (PET_*),
  holding N GPUs (CONTENTGEN_GPU_COUNT, what its GPU-seconds are × ); other kinds' Jobs of several
  GPUs stay one process.
- Across nodes: a JobSet (jobset.x-k8s.io/v1alpha2) of one replicated job of N pods, each the Job's
  hardened pod, torchrun's node rank its completion index and its rendezvous the first pod's stable
  name; its whole group restarted up to the kind's backoff limit, a worker's permanent failure
  (exit 2) ending it; queued by Kueue as one (its queue-name label). Or a Kubeflow Trainer TrainJob
  through the torch-distributed runtime, the rest of the pod patched on (runtimePatches). Each is
  admitted by its real CRD, as its controller's release installs it (nothing pruned).
- Their status read as a Job's: active and ready while the pods run, complete, failed with its
  reason, suspended while Kueue holds it, the spec snapshot its worker runs.
- What the chart says no node can give waits, Stalled, in one line: TooManyGpus, BackendUnavailable.
- The estimate and the bill say the GPUs and the wall time apart from the GPU-hours."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from contentgen.api import SpecSnapshot
from contentgen.controller.decide import World, decide
from contentgen.controller.jobs import render_run
from contentgen.controller.jobsets import run_state
from contentgen.controller.placement import Placement, Refused, placement
from contentgen.controller.settings import GpuTraining, OperatorSettings
from contentgen.pricing import PriceTable, estimated, expected_usage, gpu_usage
from localcluster.controllers import CONTROLLERS
from tests.admission import admit
from tests.harness.controller import cond, reason, resource
from tests.harness.jobs import UID, full_settings

TRAINING = {
    "owner": "alice",
    "provider": "cluster",
    "source": {"url": "https://e/v.mp4"},
    "triggerWord": "tw",
}


def snapshot(
    resources: dict[str, Any] | None = None, kind: str = "LoraTraining", **spec: Any
) -> SpecSnapshot:
    body = {**TRAINING, **({"resources": resources} if resources is not None else {}), **spec}
    if kind != "LoraTraining":
        body = {"owner": "alice", "provider": "cluster", "prompt": "p"}
    return SpecSnapshot(kind=kind, name="demo", namespace="team-a", uid=UID, generation=1, spec=body)


def settings(**training: Any) -> OperatorSettings:
    made = full_settings()
    made.gpu_training = GpuTraining(**{"backends": ["job", "jobset", "trainjob"], **training})
    made.queue_name = "gpus"
    return made


def env_of(pod: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["containers"][0]["env"]}


def crd(controller: str, plural: str) -> dict[str, Any]:
    """The CRD `plural` as `controller`'s release installs it (make kube renders its install)."""
    installed = json.loads(CONTROLLERS[controller].manifests.read_text())
    found = next(
        o
        for o in installed
        if o["kind"] == "CustomResourceDefinition" and o["metadata"]["name"].startswith(plural)
    )
    found = copy.deepcopy(found)
    found["spec"].pop("conversion", None)  # one version: its conversion webhook is never called
    return found


def leaves(obj: Any, path: str = "") -> set[str]:
    if isinstance(obj, dict):
        return {p for k, v in obj.items() for p in leaves(v, f"{path}.{k}")} or {path}
    if isinstance(obj, list):
        return {p for i, v in enumerate(obj) for p in leaves(v, f"{path}[{i}]")} or {path}
    return {path}


def admitted(definition: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    """The object as the real API server stores it under its CRD: refused nowhere, nothing pruned."""
    sent = copy.deepcopy(obj)
    sent["metadata"].pop("ownerReferences")  # its owner is in no store of this test's server
    stored, errors = admit(definition, sent)
    assert errors == [], "; ".join(f"{f}: {m}" for f, m in errors)
    missing = {p for p in leaves(sent["spec"]) if p not in leaves(stored["spec"])}
    assert missing == set()  # every field known to the CRD (an unknown one is pruned)
    return stored


def test_gpus_on_one_node_are_one_pod_under_torchrun():
    job = render_run(snapshot({"gpus": 4}), settings())
    assert job["kind"] == "Job"
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "4"
    env = env_of(pod)
    assert (env["PET_NPROC_PER_NODE"], env["PET_NNODES"], env["CONTENTGEN_GPU_COUNT"]) == ("4", "1", "4")
    assert "PET_MASTER_ADDR" not in env  # torchrun --standalone
    # the chart's count without resources: one process per GPU too; another kind's stays one process
    chart = settings()
    chart.gpu_jobs["LoraTraining"] = chart.gpu_jobs["LoraTraining"].model_copy(update={"count": 2})
    chart.gpu_jobs["ImageGeneration"] = chart.gpu_jobs["ImageGeneration"].model_copy(update={"count": 2})
    assert env_of(render_run(snapshot(), chart)["spec"]["template"]["spec"])["PET_NPROC_PER_NODE"] == "2"
    image = env_of(render_run(snapshot(kind="ImageGeneration"), chart)["spec"]["template"]["spec"])
    assert "PET_NPROC_PER_NODE" not in image and image["CONTENTGEN_GPU_COUNT"] == "2"


def test_nodes_are_a_jobset_restarted_as_a_group_and_queued_as_one():
    made = settings()
    job = render_run(snapshot(), made)
    jobset = render_run(snapshot({"gpus": 2, "nodes": 3}), made)
    assert (jobset["apiVersion"], jobset["kind"]) == ("jobset.x-k8s.io/v1alpha2", "JobSet")
    assert jobset["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpus"
    assert jobset["metadata"]["ownerReferences"][0]["kind"] == "LoraTraining"
    spec = jobset["spec"]
    assert spec["failurePolicy"] == {
        "maxRestarts": made.kinds["LoraTraining"].backoff_limit,
        "rules": [{"name": "permanent", "action": "FailJobSet", "onJobFailureReasons": ["PodFailurePolicy"]}],
    }
    assert spec["successPolicy"] == {"operator": "All", "targetReplicatedJobs": ["node"]}
    [node] = spec["replicatedJobs"]
    assert (node["name"], node["replicas"]) == ("node", 1)
    template = node["template"]["spec"]
    assert (template["parallelism"], template["completions"], template["completionMode"]) == (3, 3, "Indexed")
    assert template["backoffLimit"] == 0 and template["podFailurePolicy"] == job["spec"]["podFailurePolicy"]
    pod = template["template"]["spec"]
    name = jobset["metadata"]["name"]
    env = env_of(pod)
    assert env["PET_NNODES"] == "3" and env["PET_NPROC_PER_NODE"] == "2"
    assert env["PET_MASTER_ADDR"] == f"{name}-node-0-0.{name}"
    assert env["PET_NODE_RANK"] == {
        "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
    }
    assert env["CONTENTGEN_GPU_COUNT"] == "6"  # what the run holds, every node's
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert (
        pod["containers"][0]["securityContext"]
        == job["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    )
    assert template["template"]["metadata"]["labels"] == job["spec"]["template"]["metadata"]["labels"]
    stored = admitted(crd("jobset", "jobsets"), jobset)
    assert stored["spec"]["replicatedJobs"][0]["template"]["spec"]["parallelism"] == 3


def test_a_trainjob_runs_the_worker_through_the_torch_runtime():
    trainjob = render_run(snapshot({"gpus": 2, "nodes": 2, "backend": "trainjob"}), settings())
    assert (trainjob["apiVersion"], trainjob["kind"]) == ("trainer.kubeflow.org/v1alpha1", "TrainJob")
    spec = trainjob["spec"]
    assert spec["runtimeRef"] == {
        "name": "torch-distributed",
        "apiGroup": "trainer.kubeflow.org",
        "kind": "ClusterTrainingRuntime",
    }
    trainer = spec["trainer"]
    assert (trainer["numNodes"], trainer["numProcPerNode"], trainer["args"]) == (2, 2, ["worker"])
    assert trainer["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == "2"
    names = {e["name"] for e in trainer["env"]}
    assert "CONTENTGEN_SPEC" in names and not any(n.startswith("PET_") for n in names)  # Trainer's own
    [patch] = spec["runtimePatches"]
    [node] = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    pod = node["template"]["spec"]["template"]
    assert pod["metadata"]["labels"]["contentgen.io/uid"] == UID
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    admitted(crd("trainer", "trainjobs"), trainjob)


def test_what_the_chart_says_no_node_can_give_waits_in_one_line():
    made = settings(gpus_per_node=8, max_nodes=4, backends=["job", "jobset"])
    gpu = made.gpu_jobs["LoraTraining"]
    too_many = placement({"resources": {"gpus": 16}}, gpu, made)
    assert isinstance(too_many, Refused) and too_many.reason == "TooManyGpus"
    assert too_many.message.startswith("resources.gpus 16: no GPU node of this cluster holds more than 8")
    nodes = placement({"resources": {"gpus": 8, "nodes": 5}}, gpu, made)
    assert isinstance(nodes, Refused) and "at most 4 GPU nodes" in nodes.message
    trainer = placement({"resources": {"nodes": 2, "backend": "trainjob"}}, gpu, made)
    assert isinstance(trainer, Refused) and trainer.reason == "BackendUnavailable"
    assert "runs no Kubeflow Trainer (the chart's gpu.training.backends: job, jobset)" in trainer.message
    assert placement({"resources": {"gpus": 8, "nodes": 2}}, gpu, made) == Placement(8, 2, "jobset")

    res = resource("LoraTraining", spec={**TRAINING, "resources": {"gpus": 16}})
    decision = decide(
        res, World(now=res_now(), may_start=True, gpus_refused=(too_many.reason, too_many.message))
    )
    assert decision.job is None
    assert reason(decision.status) == "TooManyGpus" and cond(decision.status, "Stalled") == "True"
    assert decision.status["message"] == too_many.message
    assert [(e.type, e.reason, e.message) for e in decision.events] == [
        ("Warning", "TooManyGpus", too_many.message)
    ]


def test_a_training_whose_family_trains_on_one_gpu_holds_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never a GPU held idle and billed: the chart's count for LoraTraining is 4, and a base whose
    family does not spread (admission refuses more asked for) is placed, estimated and billed on 1."""
    from dataclasses import replace

    from contentgen.api import base_models

    made = settings()
    gpu = made.gpu_jobs["LoraTraining"].model_copy(update={"count": 4})
    wan = {**TRAINING, "training": {"baseModel": "wan-2.1-t2v-1.3b"}}
    assert placement(wan, gpu, made) == Placement(4, 1, "job")
    alone = replace(base_models.BASE_MODELS["wan-2.1-t2v-1.3b"], spreads=False)
    monkeypatch.setitem(base_models.BASE_MODELS, "wan-2.1-t2v-1.3b", alone)
    assert placement(wan, gpu, made) == Placement(1, 1, "job")
    prices = PriceTable().model_copy(
        update={"cluster": PriceTable().cluster.model_copy(update={"gpus": {"LoraTraining": 4}})}
    )
    [line] = [u for u in expected_usage("LoraTraining", wan, prices) if u.item == "lora-training"]
    assert line.gpus is None  # one GPU: no GPUs said apart


def res_now() -> Any:
    from tests.harness.controller import NOW

    return NOW


def _jobset_status(**status: Any) -> dict[str, Any]:
    made = render_run(snapshot({"gpus": 1, "nodes": 2}), settings())
    made["metadata"].update(uid="js-uid", creationTimestamp="2026-11-28T10:00:00Z")
    made["spec"]["suspend"] = status.pop("suspend", False)
    return {**made, "status": status}


def test_a_jobsets_status_reads_as_a_jobs():
    running = run_state(
        _jobset_status(
            replicatedJobsStatus=[{"name": "node", "ready": 1, "active": 1, "succeeded": 0, "failed": 0}]
        ),
        "jobset",
    )
    assert running is not None
    assert (running.what, running.active, running.ready, running.finished) == ("JobSet", 1, 1, False)
    assert running.job_uid == "js-uid" and running.queue == "gpus"
    assert json.loads(running.snapshot)["spec"]["resources"] == {"gpus": 1, "nodes": 2}
    held = run_state(_jobset_status(suspend=True), "jobset")
    assert held is not None and held.suspended
    done = run_state(
        _jobset_status(
            conditions=[{"type": "Completed", "status": "True", "lastTransitionTime": "2026-11-28T10:05:00Z"}]
        ),
        "jobset",
    )
    assert done is not None and done.complete and done.finished_at == "2026-11-28T10:05:00Z"
    failed = run_state(
        _jobset_status(
            restarts=2,
            conditions=[
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "FailedJobs",
                    "message": "jobset failed due to reaching max number of restarts",
                }
            ],
        ),
        "jobset",
    )
    assert failed is not None and (failed.failed_reason, failed.restarts) == ("FailedJobs", 2)


def test_the_estimate_and_the_bill_say_the_gpus_and_the_wall_time_apart():
    prices = PriceTable()
    one = expected_usage("LoraTraining", {**TRAINING, "evaluation": {"enabled": False}}, prices)
    eight = expected_usage(
        "LoraTraining", {**TRAINING, "evaluation": {"enabled": False}, "resources": {"gpus": 8}}, prices
    )
    assert one[0].gpus is None and eight[0].gpus == 8
    # one picture per GPU each step: the same steps' wall time, eight times the GPU-hours
    assert eight[0].wall_seconds == pytest.approx(one[0].quantity * 3600)
    assert eight[0].quantity == pytest.approx(8 * one[0].quantity)
    # a batch of 8 on 8 GPUs: each GPU a sample a step, the steps' GPU-hours as one GPU's on all 8
    cluster = prices.cluster
    batch = {**TRAINING, "evaluation": {"enabled": False}, "training": {"batchSize": 8}}
    alone = expected_usage("LoraTraining", batch, prices)[0]
    shared = expected_usage("LoraTraining", {**batch, "resources": {"gpus": 8}}, prices)[0]
    steps = 1000 * cluster.training_step_seconds
    assert alone.quantity * 3600 == pytest.approx(cluster.startup_seconds + 8 * steps)
    assert shared.wall_seconds == pytest.approx(cluster.startup_seconds + steps)
    assert shared.quantity * 3600 == pytest.approx(8 * (cluster.startup_seconds + steps))
    [line] = gpu_usage("cluster", "lora-training", 7200.0, "r", gpus=4)
    assert (line.quantity, line.gpus, line.wall_seconds) == (2.0, 4, 1800.0)
    said = estimated("LoraTraining", {**batch, "resources": {"gpus": 8}}, prices, None).detail
    assert said.endswith(f" = 8 GPUs x {shared.wall_seconds:.0f} s")
    assert " GPUs x " not in estimated("LoraTraining", batch, prices, None).detail


def test_a_gang_asks_kueue_for_one_domain_of_the_charts_topology_level():
    """With gpu.training.topology, a run across nodes asks Kueue's topology-aware scheduling to
    keep all its pods in one domain of that level (the pod template's annotation, which Kueue
    reads of a JobSet's replicated job and of the JobSet a TrainJob's runtime makes); one node's
    Job asks nothing."""
    made = settings(topology="example.com/block")
    asked = {"kueue.x-k8s.io/podset-required-topology": "example.com/block"}
    jobset = render_run(snapshot({"gpus": 1, "nodes": 2}), made)
    template = jobset["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]
    assert template["metadata"]["annotations"] == asked
    stored = admitted(crd("jobset", "jobsets"), jobset)
    assert (
        stored["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["metadata"]["annotations"]
        == asked
    )
    trainjob = render_run(snapshot({"gpus": 1, "nodes": 2, "backend": "trainjob"}), made)
    [patch] = trainjob["spec"]["runtimePatches"]
    [node] = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    assert node["template"]["spec"]["template"]["metadata"]["annotations"] == asked
    admitted(crd("trainer", "trainjobs"), trainjob)
    job = render_run(snapshot({"gpus": 2}), made)
    assert "annotations" not in job["spec"]["template"]["metadata"]
    assert (
        "annotations"
        not in render_run(snapshot({"gpus": 1, "nodes": 2}), settings())["spec"]["replicatedJobs"][0][
            "template"
        ]["spec"]["template"]["metadata"]
    )
