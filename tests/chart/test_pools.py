"""The chart's warm generation pools (issue 47, docs/cluster-gpus.md#warm-pools): a Deployment and a
Service per pool, hardened as the workers are, ready once warm; KEDA's ScaledObject only where it is
asked for and the cluster serves it (counting the pooled Jobs' pods by KEDA alone, or by Prometheus
in a cluster-wide install); the operator's settings name each pool's Service, and the Job
of a pooled ImageGeneration reaches it, holds no GPU and carries the label KEDA counts."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from contentgen.api import SpecSnapshot
from contentgen.controller.jobs import render_job
from contentgen.pricing import expected_gpu_seconds
from contentgen.providers.settings import ClusterWorkerSettings, from_environment
from scripts import chart as chart_files
from tests.chart.conftest import (
    NAMESPACE,
    RELEASE,
    Doc,
    of_kind,
    one,
    operator_settings,
    render,
    settings_env,
    template_error,
)
from tests.harness.chart import KUBERNETES_VERSION, assert_restricted, secret_problems, validate

KEDA = "keda.sh/v1alpha1/ScaledObject"
POOLS: Doc = {
    "pools": {
        "denoising": "pool",
        "items": [
            {
                "name": "flux-dev",
                "baseModel": "FLUX.1-dev",
                "replicas": 3,
                "minReplicas": 0,
                "queueName": "gpu-serving",
                "nodeSelector": {"gpu": "l4"},
                "gpus": {"count": 2, "resourceName": "nvidia.com/mig-3g.40gb"},
            },
            {"name": "schnell", "baseModel": "FLUX.1-schnell", "replicas": 1, "port": 9000, "keptLoras": 0},
        ],
        "keda": {
            "enabled": True,
            "trigger": "prometheus",
            "prometheus": {"serverAddress": "http://prometheus-operated.monitoring:9090"},
        },
    },
    "gpu": {
        "nodeSelector": {"nvidia.com/gpu.present": "true"},
        "models": {"storePrefix": "s3://weights/models"},
    },
    "s3": {"existingSecret": "s3-credentials"},
    "worker": {"nodeSelector": {"pool": "batch"}},
}


def rendered(values: Doc, *api_versions: str) -> list[Doc]:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(json.dumps(values))
    try:
        extra = [a for v in api_versions for a in ("--api-versions", v)]
        return [d for d in yaml.safe_load_all(chart_files.template("--values", f.name, *extra)) if d]
    finally:
        Path(f.name).unlink()


def snapshot(**spec: Any) -> SpecSnapshot:
    return SpecSnapshot(
        kind="ImageGeneration",
        name="cat",
        namespace="team-a",
        uid="u-1",
        version=1,
        spec={"owner": "alice", "prompt": "a cat", "provider": "cluster", **spec},
    )


def test_no_pools_by_default() -> None:
    docs = render()
    assert not [
        d for d in docs if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "pool"
    ]
    settings = operator_settings(settings_env(docs))
    assert settings.cluster_pools == [] and settings.cluster_denoising == "job"


def test_a_pool_is_a_hardened_deployment_and_a_service_ready_once_warm() -> None:
    docs = render(POOLS)  # no KEDA in this cluster: the Deployments keep their replicas
    assert not of_kind(docs, "ScaledObject")
    for doc in docs:
        validate(doc)
    assert not secret_problems(yaml.safe_dump_all(docs), docs)
    deployment = one(docs, "Deployment", f"{RELEASE}-pool-flux-dev")
    assert deployment["spec"]["replicas"] == 3
    pod = deployment["spec"]["template"]["spec"]
    assert_restricted("the pool", pod)
    assert pod["automountServiceAccountToken"] is False  # it needs no API
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/contentgen/contentgen-worker-gpu:0.1.0"
    assert container["args"] == [
        *("pool", "--model", "FLUX.1-dev", "--port", "8090", "--work-dir", "/work"),
        *(
            "--kept-loras",
            "32",
            "--compile",
            "auto",
            "--lora-rank",
            "64",
            "--routing",
            "affinity",
        ),  # defaults
    ]
    assert container["resources"]["requests"]["nvidia.com/mig-3g.40gb"] == "2"
    assert container["resources"]["limits"]["nvidia.com/mig-3g.40gb"] == "2"
    assert container["resources"]["limits"]["memory"] == "48Gi"  # gpu.jobs.ImageGeneration's
    assert container["readinessProbe"]["httpGet"] == {"path": "/v1/ready", "port": "http"}
    assert pod["nodeSelector"] == {"pool": "batch", "nvidia.com/gpu.present": "true", "gpu": "l4"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["kueue.x-k8s.io/queue-name"] == "gpu-serving"  # Kueue's pod integration admits it
    assert (
        "kueue.x-k8s.io/queue-name"
        not in one(docs, "Deployment", f"{RELEASE}-pool-schnell")["metadata"]["labels"]
    )
    # the worker's settings as the pool's process reads them: the store's models into the cache
    env = {e["name"]: e.get("value") for e in container["env"]}
    own = from_environment(ClusterWorkerSettings, {k: v for k, v in env.items() if v is not None})
    assert (own.cluster_models_dir, own.cluster_models_store, own.gpu_count) == (
        Path("/models-cache"),
        "s3://weights/models",
        2,
    )
    assert {"name": "models", "emptyDir": {"sizeLimit": "100Gi"}} in pod["volumes"]

    service = one(docs, "Service", f"{RELEASE}-pool-schnell")
    schnell = one(docs, "Deployment", f"{RELEASE}-pool-schnell")["spec"]["template"]
    assert service["spec"]["selector"].items() <= schnell["metadata"]["labels"].items()
    assert service["spec"]["ports"] == [{"name": "http", "port": 9000, "targetPort": "http"}]
    assert schnell["spec"]["containers"][0]["ports"] == [{"name": "http", "containerPort": 9000}]
    args = schnell["spec"]["containers"][0]["args"]
    assert args[args.index("--kept-loras") + 1] == "0"  # 0 is 0, not the default
    # the headless Service a pooled Job's worker reaches every ready pod by (pool.PoolRouter)
    pods = one(docs, "Service", f"{RELEASE}-pool-schnell-pods")
    assert pods["spec"]["clusterIP"] == "None" and pods["spec"]["selector"] == service["spec"]["selector"]
    assert pods["spec"]["ports"] == service["spec"]["ports"]
    # one pool's Service does not select the other's pods
    assert (
        not service["spec"]["selector"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )


def test_keda_scales_a_pool_only_where_the_cluster_serves_it() -> None:
    docs = rendered(POOLS, KEDA)
    (scaled, _) = of_kind(docs, "ScaledObject")
    name = f"{RELEASE}-pool-flux-dev"
    scaled = one(docs, "ScaledObject", name)
    assert scaled["spec"]["scaleTargetRef"] == {"name": name}
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (0, 3)
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metadata"]["activationThreshold"] == "0"
    query = trigger["metadata"]["query"]
    assert 'label_contentgen_io_pool="flux-dev"' in query
    assert 'kube_pod_owner{owner_kind="Job"}' in query  # the pool's own pods carry the label too
    assert "replicas" not in one(docs, "Deployment", name)["spec"]  # KEDA's to set, not helm's
    # past one pod the HPA KEDA makes scales it; it takes a pod away only after the count stayed low
    behavior = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior == {"scaleDown": {"stabilizationWindowSeconds": 300}}
    off = {**POOLS, "pools": {**POOLS["pools"], "keda": {"enabled": False}}}
    assert not of_kind(rendered(off, KEDA), "ScaledObject")


def test_keda_alone_counts_the_jobs_pods_where_they_run_in_the_release_namespace() -> None:
    """The default trigger needs nothing but KEDA's operator, which lists pods in the ScaledObject's
    namespace only: an install that watches the release namespace alone. Run on the real KEDA in
    tests/kube/test_pool_keda.py."""
    keda = {"enabled": True, "cooldownSeconds": 60}
    values = {**POOLS, "watchNamespaces": [NAMESPACE], "pools": {**POOLS["pools"], "keda": keda}}
    docs = rendered(values, KEDA)
    name = f"{RELEASE}-pool-flux-dev"
    scaled = one(docs, "ScaledObject", name)
    assert scaled["spec"]["cooldownPeriod"] == 60
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger == {
        "type": "kubernetes-workload",
        "metadata": {
            "podSelector": "contentgen.io/pool=flux-dev,batch.kubernetes.io/job-name",
            "value": "4",
            "activationValue": "0",
        },
    }
    # the Job controller's label is what tells a Job's pod from the pool's own
    pool_pod = one(docs, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
    assert pool_pod["contentgen.io/pool"] == "flux-dev" and "batch.kubernetes.io/job-name" not in pool_pod


def test_a_pooled_job_reaches_the_pools_service_and_holds_no_gpu() -> None:
    """The operator's settings from the chart, and the Jobs it makes of them: the spec's choice or
    the chart's default, the pool of the model's base, else a Job that draws itself."""
    docs = render(POOLS)
    settings = operator_settings(settings_env(docs))
    service = one(docs, "Service", f"{RELEASE}-pool-flux-dev-pods")  # headless: each pod's address
    url = f"http://{service['metadata']['name']}.{NAMESPACE}.svc:{service['spec']['ports'][0]['port']}"
    assert [(p.name, p.base_model, p.url) for p in settings.cluster_pools] == [
        ("flux-dev", "FLUX.1-dev", url),
        ("schnell", "FLUX.1-schnell", f"http://{RELEASE}-pool-schnell-pods.{NAMESPACE}.svc:9000"),
    ]
    job = render_job(snapshot(model="flux-lora"), settings)
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)
    pod = job["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CONTENTGEN_CLUSTER_POOL_URL"] == url
    assert (
        from_environment(ClusterWorkerSettings, {"CONTENTGEN_CLUSTER_POOL_URL": url}).cluster_pool_url == url
    )
    assert not [r for r in container["resources"]["limits"] if "gpu" in r]
    assert "models" not in {v["name"] for v in pod["spec"]["volumes"]}
    assert pod["metadata"]["labels"]["contentgen.io/pool"] == "flux-dev"  # what KEDA's query counts
    assert job["metadata"]["annotations"]["contentgen.io/denoising"].startswith("pool flux-dev: ")
    assert_restricted("the pooled Job", pod["spec"])

    # the estimate counts what draws it: the pool's pods (no load, their GPUs), else the Job
    assert [p.gpus for p in settings.cluster_pools] == [2, 1]
    cluster = settings.prices.cluster
    pictures = 3 * cluster.image_seconds
    assert [
        expected_gpu_seconds("ImageGeneration", snapshot(numImages=3, **spec).priced_spec(), settings.prices)
        for spec in ({"model": "flux-lora"}, {"model": "flux-schnell"}, {"denoising": "job"})
    ] == pytest.approx([2 * pictures, pictures, cluster.startup_seconds + pictures])

    own = render_job(snapshot(model="flux-schnell", denoising="job"), settings)
    (container,) = own["spec"]["template"]["spec"]["containers"]
    assert "CONTENTGEN_CLUSTER_POOL_URL" not in {e["name"] for e in container["env"]}
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert own["metadata"]["annotations"]["contentgen.io/denoising"] == "job: spec.denoising is job"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"pools": {"items": [{"name": "a", "baseModel": "M", "replicas": 1}] * 2}}, "two pools are named a"),
        (
            {
                "pools": {
                    "items": [
                        {"name": "a", "baseModel": "M", "replicas": 1},
                        {"name": "b", "baseModel": "M", "replicas": 1},
                    ]
                }
            },
            "two pools serve M: one pool per base model",
        ),
        (
            {"pools": {"items": [{"name": "a", "baseModel": "M", "replicas": 1, "minReplicas": 2}]}},
            "minReplicas 2",
        ),
        (
            {"pools": {"items": [{"name": "a", "baseModel": "M", "replicas": 1}], "keda": {"enabled": True}}},
            "pools.keda.trigger workload counts the pools' waiting Jobs in the release namespace only",
        ),
        (
            {
                "watchNamespaces": [NAMESPACE, "team-a"],
                "pools": {
                    "items": [{"name": "a", "baseModel": "M", "replicas": 1}],
                    "keda": {"enabled": True},
                },
            },
            f"watchNamespaces: [{NAMESPACE}]: set that, or pools.keda.trigger prometheus",
        ),
        (
            {
                "pools": {
                    "items": [{"name": "a", "baseModel": "M", "replicas": 1}],
                    "keda": {"enabled": True, "trigger": "prometheus"},
                }
            },
            "pools.keda.trigger prometheus needs pools.keda.prometheus.serverAddress",
        ),
        ({"pools": {"keda": {"trigger": "http"}}}, "/pools/keda/trigger"),
        ({"pools": {"denoising": "always"}}, "/pools/denoising"),
        ({"pools": {"items": [{"name": "A_b", "baseModel": "M", "replicas": 1}]}}, "/pools/items/0/name"),
        (
            {"pools": {"items": [{"name": "a", "baseModel": "../M", "replicas": 1}]}},
            "/pools/items/0/baseModel",
        ),
        ({"pools": {"items": [{"name": "a", "baseModel": "M"}]}}, "replicas"),
        ({"pools": {"items": [{"name": "a", "baseModel": "M", "replicas": 1, "gpu": 1}]}}, "gpu"),
    ],
)
def test_bad_pool_values_are_rejected(values: Doc, message: str, tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(json.dumps(values))
    assert message in template_error("--values", str(path))
