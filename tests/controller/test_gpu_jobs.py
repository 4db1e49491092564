"""provider: cluster: the Jobs of the cluster's own GPUs (the GPU image, GPUs asked for per kind,
the GPU nodes' selector, tolerations and priority class, the models' volume, Kueue's queue label),
the statuses of a Job Kueue holds suspended and of a pod no node has a GPU for; the Jobs of the
other providers unchanged."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest

from contentgen.api import SpecSnapshot
from contentgen.controller.decide import World, decide
from contentgen.controller.jobs import render_job
from contentgen.controller.observe import job_state
from contentgen.controller.settings import OperatorSettings
from tests.harness.controller import NOW, apply, cond, job, reason, resource
from tests.harness.jobs import UID, full_settings

SPECS: dict[str, dict[str, Any]] = {
    "LoraTraining": {"source": {"url": "https://example.com/v.mp4"}, "triggerWord": "tw"},
    "ImageGeneration": {"prompt": "p"},
    "Transcription": {"source": {"url": "https://example.com/a.mp3"}},
}


def snapshot(kind: str = "ImageGeneration", provider: str = "cluster") -> SpecSnapshot:
    spec = {"owner": "alice", "provider": provider, **SPECS[kind]}
    return SpecSnapshot(kind=kind, name="demo", namespace="team-a", uid=UID, generation=1, spec=spec)


def gpu_settings(**changes: Any) -> OperatorSettings:
    settings = full_settings()
    settings.worker_node_selector = {"pool": "batch"}
    settings.worker_tolerations = [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}]
    settings.gpu_node_selector = {"accelerator": "h100"}
    settings.gpu_priority_class_name = "gpu-batch"
    for name, value in changes.items():
        setattr(settings, name, value)
    return settings


def pod(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def env_of(job: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in pod(job)["containers"][0]["env"]}


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_a_cluster_job_asks_for_its_kinds_gpus_on_the_gpu_nodes(kind: str) -> None:
    settings = gpu_settings()
    settings.gpu_jobs[kind] = settings.gpu_jobs[kind].model_copy(
        update={"count": 2, "resource_name": "nvidia.com/mig-3g.40gb", "node_selector": {"mig": "on"}}
    )
    job = render_job(snapshot(kind), settings)
    kubernetes_validate.validate(job, "1.33.0", strict=True)
    (container,) = pod(job)["containers"]
    assert container["image"] == settings.gpu_worker_image != settings.worker_image
    resources = container["resources"]
    assert (
        resources["limits"]["nvidia.com/mig-3g.40gb"]
        == resources["requests"]["nvidia.com/mig-3g.40gb"]
        == "2"
    )
    assert resources["requests"]["memory"] == settings.gpu_jobs[kind].resources.requests["memory"]
    assert pod(job)["nodeSelector"] == {"pool": "batch", "accelerator": "h100", "mig": "on"}
    tolerations = pod(job)["tolerations"]
    assert settings.worker_tolerations[0] in tolerations
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tolerations
    assert pod(job)["priorityClassName"] == "gpu-batch"
    assert env_of(job)["CONTENTGEN_GPU_COUNT"] == "2"
    assert job["metadata"]["annotations"]["contentgen.io/gpus"] == "2 nvidia.com/mig-3g.40gb"
    assert job_state(job) is not None and job_state(job).gpus == "2 nvidia.com/mig-3g.40gb"  # type: ignore[union-attr]


@pytest.mark.parametrize("provider", ["fal", "offline"])
def test_jobs_of_other_providers_are_unchanged(provider: str) -> None:
    """The GPU settings touch only cluster Jobs: same manifest with and without them."""
    plain = full_settings()
    plain.worker_node_selector = {"pool": "batch"}
    plain.worker_tolerations = [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}]
    tuned = gpu_settings(
        queue_name="gpus", cluster_models=plain.cluster_models.model_copy(update={"host_path": "/m"})
    )
    for kind in SPECS:
        if kind == "Transcription" and provider == "fal":
            continue
        chosen = "assemblyai" if kind == "Transcription" and provider != "offline" else provider
        job = render_job(snapshot(kind, chosen), tuned)
        assert job == render_job(snapshot(kind, chosen), plain)
        assert_no_gpu(job, tuned)


def assert_no_gpu(job: dict[str, Any], settings: OperatorSettings) -> None:
    (container,) = pod(job)["containers"]
    assert container["image"] == settings.worker_image
    assert not [r for part in container["resources"].values() for r in part if "gpu" in r]
    assert "kueue.x-k8s.io/queue-name" not in job["metadata"]["labels"]
    assert "contentgen.io/gpus" not in job["metadata"]["annotations"]
    assert [v["name"] for v in pod(job)["volumes"]] == ["work", "tmp"]
    assert not [e for e in env_of(job) if e.startswith(("CONTENTGEN_GPU", "CONTENTGEN_CLUSTER"))]
    assert "priorityClassName" not in pod(job) and pod(job)["nodeSelector"] == settings.worker_node_selector


def test_assemblyai_jobs_are_unchanged() -> None:
    tuned = gpu_settings(queue_name="gpus")
    assert_no_gpu(render_job(snapshot("Transcription", "assemblyai"), tuned), tuned)


def test_the_worker_gets_the_price_table_with_the_gpu_hour() -> None:
    settings = gpu_settings()
    settings.prices = settings.prices.model_copy(
        update={"cluster": settings.prices.cluster.model_copy(update={"gpu_hour_usd": 3.5})}
    )
    prices = json.loads(env_of(render_job(snapshot(), settings))["CONTENTGEN_PRICES"])
    assert prices["cluster"]["gpuHourUsd"] == 3.5


def test_the_worker_runs_the_operators_models_and_steps_on_its_own_gpu() -> None:
    """`gpu.fluxModel`, `gpu.fluxSchnellModel`, `gpu.inferenceSteps` (the operator's settings)
    reach every cluster Job as the worker reads them; the device never does (the pod's GPU)."""
    from contentgen.providers.settings import ClusterWorkerSettings, ProviderSettings, from_environment

    settings = gpu_settings(
        cluster_flux_model="FLUX.1-dev-2025",
        cluster_flux_schnell_model="schnell-8bit",
        cluster_inference_steps=2,
    )
    for kind in SPECS:
        env = env_of(render_job(snapshot(kind), settings))
        read = from_environment(ProviderSettings, env)
        assert (read.cluster_flux_model, read.cluster_flux_schnell_model, read.cluster_inference_steps) == (
            "FLUX.1-dev-2025",
            "schnell-8bit",
            2,
        )
        own = from_environment(ClusterWorkerSettings, env)
        assert own.cluster_device == "" and "CONTENTGEN_CLUSTER_DEVICE" not in env
    defaults = env_of(render_job(snapshot(), gpu_settings()))
    assert defaults["CONTENTGEN_CLUSTER_INFERENCE_STEPS"] == "0"  # the model's own


def test_settings_read_from_a_given_environment_take_nothing_from_the_readers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Job's environment, read where it is rendered (the operator, the chart's tests), is that
    Job's alone: what the reading process has set is not filled in for what the Job leaves out."""
    from contentgen.providers.settings import ClusterWorkerSettings, ProviderSettings, from_environment

    monkeypatch.setenv("CONTENTGEN_CLUSTER_POOL_URL", "http://the-operators-own:8080")
    monkeypatch.setenv("CONTENTGEN_CLUSTER_INFERENCE_STEPS", "7")
    job = {"CONTENTGEN_CLUSTER_DEVICE": "cuda:0"}
    worker = from_environment(ClusterWorkerSettings, job)
    assert (worker.cluster_pool_url, worker.cluster_device) == ("", "cuda:0")
    assert isinstance(worker, ClusterWorkerSettings)
    assert from_environment(ProviderSettings, job).cluster_inference_steps == 0
    # with no environment given, the process's own is read
    assert from_environment(ClusterWorkerSettings).cluster_pool_url == "http://the-operators-own:8080"
    assert from_environment(ProviderSettings).cluster_inference_steps == 7


def test_a_bad_cluster_setting_is_one_line_naming_it() -> None:
    from contentgen.errors import InvalidInput
    from contentgen.providers.settings import ClusterWorkerSettings, ProviderSettings, from_environment

    for cls, variable, value, why in [
        (ProviderSettings, "CONTENTGEN_CLUSTER_INFERENCE_STEPS", "many", "should be a valid integer"),
        (ProviderSettings, "CONTENTGEN_CLUSTER_INFERENCE_STEPS", "500", "less than or equal to 200"),
        (ProviderSettings, "CONTENTGEN_CLUSTER_FLUX_MODEL", "../FLUX", "not a value it takes"),
        (ClusterWorkerSettings, "CONTENTGEN_CLUSTER_DEVICE", "gpu0", "not a value it takes"),
        (ClusterWorkerSettings, "CONTENTGEN_GPU_COUNT", "0", "greater than or equal to 1"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            from_environment(cls, {variable: value})  # type: ignore[type-var]
        message = str(refused.value)
        assert message.startswith(f"{variable} is {value!r}: ") and why in message and "\n" not in message
    assert (
        from_environment(ClusterWorkerSettings, {"CONTENTGEN_CLUSTER_DEVICE": " cuda:1 "}).cluster_device
        == "cuda:1"
    )


def test_an_offline_operator_runs_cluster_jobs_as_asked() -> None:
    """`--offline` replaces the paid providers; the cluster's own GPUs are no paid provider."""
    settings = OperatorSettings(store="file:///tmp/store", offline=True)
    job = render_job(snapshot(), settings)
    assert json.loads(env_of(job)["CONTENTGEN_SPEC"])["spec"]["provider"] == "cluster"
    assert pod(job)["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def volumes(job: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    found = next((v for v in pod(job)["volumes"] if v["name"] == "models"), None)
    mount = next((m for m in pod(job)["containers"][0]["volumeMounts"] if m["name"] == "models"), None)
    return found, mount


def test_models_from_a_volume_claim_or_a_host_path_are_mounted_read_only() -> None:
    settings = gpu_settings()
    settings.cluster_models = settings.cluster_models.model_copy(
        update={"persistent_volume_claim": "flux-weights"}
    )
    job = render_job(snapshot(), settings)
    kubernetes_validate.validate(job, "1.33.0", strict=True)
    volume, mount = volumes(job)
    assert volume == {
        "name": "models",
        "persistentVolumeClaim": {"claimName": "flux-weights", "readOnly": True},
    }
    assert mount == {"name": "models", "mountPath": "/models", "readOnly": True}
    assert env_of(job)["CONTENTGEN_CLUSTER_MODELS_DIR"] == "/models"
    assert "CONTENTGEN_CLUSTER_MODELS_STORE" not in env_of(job)

    settings.cluster_models = settings.cluster_models.model_copy(
        update={"persistent_volume_claim": "", "host_path": "/srv/models"}
    )
    volume, mount = volumes(render_job(snapshot(), settings))
    assert volume == {"name": "models", "hostPath": {"path": "/srv/models", "type": "Directory"}}
    assert mount is not None and mount["readOnly"] is True


def test_models_from_the_store_are_copied_into_a_node_cache() -> None:
    settings = gpu_settings()
    prefix = "s3://weights/models"
    settings.cluster_models = settings.cluster_models.model_copy(
        update={"store_prefix": prefix, "cache_host_path": "/var/cache/contentgen-models"}
    )
    job = render_job(snapshot(), settings)
    kubernetes_validate.validate(job, "1.33.0", strict=True)
    volume, mount = volumes(job)
    assert volume == {
        "name": "models",
        "hostPath": {"path": "/var/cache/contentgen-models", "type": "DirectoryOrCreate"},
    }
    assert mount == {"name": "models", "mountPath": "/models-cache", "readOnly": False}
    env = env_of(job)
    assert env["CONTENTGEN_CLUSTER_MODELS_STORE"] == prefix
    assert env["CONTENTGEN_CLUSTER_MODELS_DIR"] == "/models-cache"
    # without a node directory, a cache of the pod's own
    settings.cluster_models = settings.cluster_models.model_copy(
        update={"cache_host_path": "", "cache_size": "50Gi"}
    )
    volume, _ = volumes(render_job(snapshot(), settings))
    assert volume == {"name": "models", "emptyDir": {"sizeLimit": "50Gi"}}


def test_no_models_configured_mounts_nothing_and_the_worker_names_the_path() -> None:
    job = render_job(snapshot(), gpu_settings())
    assert volumes(job) == (None, None)
    assert env_of(job)["CONTENTGEN_CLUSTER_MODELS_DIR"] == "/models"  # ModelNotFound names it


def test_one_models_source_only() -> None:
    with pytest.raises(ValueError, match="set one of persistentVolumeClaim, hostPath, storePrefix"):
        OperatorSettings.model_validate({"cluster_models": {"hostPath": "/m", "storePrefix": "s3://b/m"}})


def test_the_kueue_queue_comes_from_the_namespace_else_the_default() -> None:
    settings = gpu_settings(queue_name="gpu-default")
    labels = render_job(snapshot(), settings)["metadata"]["labels"]
    assert labels["kueue.x-k8s.io/queue-name"] == "gpu-default"
    job = render_job(snapshot(), settings, namespace_queue="team-a-gpus")
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a-gpus"
    assert "kueue.x-k8s.io/queue-name" not in job["spec"]["template"]["metadata"]["labels"]
    assert "suspend" not in job["spec"]  # Kueue's webhook suspends it; never the operator
    none = render_job(snapshot(), gpu_settings())
    assert "kueue.x-k8s.io/queue-name" not in none["metadata"]["labels"]
    state = job_state(job)
    assert state is not None and state.queue == "team-a-gpus" and not state.suspended


def suspended_job(**state: Any) -> dict[str, Any]:
    manifest = render_job(snapshot(), gpu_settings(queue_name="gpus"))
    manifest["spec"]["suspend"] = True
    manifest["status"] = {
        "conditions": [
            {"type": "Suspended", "status": "True", "reason": "JobSuspended", "message": "Job suspended"}
        ],
        **state,
    }
    return manifest


def test_a_suspended_job_is_read_as_held() -> None:
    state = job_state(suspended_job())
    assert state is not None and state.suspended and state.queue == "gpus"
    assert not state.finished


def test_a_job_kueue_holds_is_pending_queued_and_left_alone() -> None:
    res = resource("ImageGeneration", provider="cluster")
    res = apply(res, decide(res, World(now=NOW)))
    held = job(active=0, suspended=True, queue="gpus", gpus="1 nvidia.com/gpu")
    d = decide(res, World(now=NOW, jobs=(held,)))
    assert d.status["phase"] == "Pending" and reason(d.status) == "Queued"
    assert cond(d.status, "Reconciling") == "True" and cond(d.status, "Stalled") == "False"
    assert "waits in Kueue queue 'gpus'" in d.status["message"] and held.name in d.status["message"]
    assert [(e.type, e.reason) for e in d.events] == [("Normal", "Queued")]
    # nothing done to the Job: not created again, not stopped, not resumed (the operator has no such act)
    assert d.job is None and d.stop_job is None and d.needs_outcome is None
    assert "kubectl get workloads -n ns shows why" in d.status["message"]  # where Kueue says why
    # a pod problem of an earlier pod does not show while it is held
    quiet = decide(res, World(now=NOW, jobs=(held,), pod_problem="Unschedulable: 0/1 nodes are available"))
    assert reason(quiet.status) == "Queued"


def test_a_job_evicted_by_kueue_goes_back_to_queued_then_runs_when_admitted() -> None:
    res = resource("ImageGeneration", provider="cluster")
    res = apply(res, decide(res, World(now=NOW)))
    res = apply(res, decide(res, World(now=NOW, jobs=(job(active=1, ready=1, queue="gpus"),))))
    assert res.status["phase"] == "Running"
    res = apply(res, decide(res, World(now=NOW, jobs=(job(suspended=True, queue="gpus"),))))
    assert res.status["phase"] == "Pending" and reason(res.status) == "Queued"
    d = decide(res, World(now=NOW, jobs=(job(active=1, ready=1, queue="gpus"),)))
    assert d.status["phase"] == "Running" and [e.reason for e in d.events] == ["Running"]


def test_a_job_suspended_by_hand_says_so() -> None:
    res = resource("ImageGeneration", provider="cluster")
    res = apply(res, decide(res, World(now=NOW)))
    d = decide(res, World(now=NOW, jobs=(job(suspended=True),)))
    assert reason(d.status) == "Queued" and "is suspended (spec.suspend)" in d.status["message"]


def test_no_free_gpu_is_reported_in_gpus() -> None:
    res = resource("ImageGeneration", provider="cluster")
    res = apply(res, decide(res, World(now=NOW)))
    why = (
        "Unschedulable: 0/1 nodes are available: 1 Insufficient nvidia.com/gpu. preemption: 0/1 nodes are "
        "available: 1 No preemption victims found for incoming pod."
    )
    d = decide(res, World(now=NOW, jobs=(job(active=1, gpus="1 nvidia.com/gpu"),), pod_problem=why))
    assert d.status["phase"] == "Pending" and reason(d.status) == "PodNotScheduled"
    message = d.status["message"]
    assert "no node has 1 nvidia.com/gpu GPU free" in message and "Insufficient nvidia.com/gpu" in message
    assert [(e.type, e.reason) for e in d.events] == [("Warning", "PodNotScheduled")]
    # another obstacle (a taint no toleration matches) is still said in the cluster's words
    taint = "Unschedulable: 0/1 nodes are available: 1 node(s) had untolerated taint {gpu: true}."
    other = decide(res, World(now=NOW, jobs=(job(active=1, gpus="1 nvidia.com/gpu"),), pod_problem=taint))
    assert (
        "(asking for 1 nvidia.com/gpu GPU)" in other.status["message"]
        and "untolerated taint" in other.status["message"]
    )


def test_the_specs_queue_comes_first_for_any_provider() -> None:
    settings = gpu_settings(queue_name="gpu-default")
    asked = snapshot().model_copy(update={"spec": {**snapshot().spec, "queueName": "team-a-urgent"}})
    job = render_job(asked, settings, namespace_queue="team-a-gpus")
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a-urgent"
    fal = snapshot(provider="fal")
    fal = fal.model_copy(update={"spec": {**fal.spec, "queueName": "cpu-batch"}})
    labels = render_job(fal, settings, namespace_queue="team-a-gpus")["metadata"]["labels"]
    assert labels["kueue.x-k8s.io/queue-name"] == "cpu-batch"  # asked for: Kueue queues it too


def test_a_queue_name_that_is_no_label_value_is_refused_naming_the_field() -> None:
    from contentgen.api.manifests import Document
    from contentgen.api.validation import validate_document

    manifest = {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "ImageGeneration",
        "metadata": {"name": "x"},
        "spec": {"owner": "alice", "provider": "cluster", "prompt": "p", "queueName": "GPU Queue"},
    }
    problems = validate_document(Document("x.yaml", 1, manifest)).problems
    assert len(problems) == 1 and "queueName" in str(problems[0]), problems
    manifest["spec"]["queueName"] = "gpu-queue"
    assert validate_document(Document("x.yaml", 1, manifest)).problems == ()
