"""A burst of pooled ImageGenerations scales the chart's warm pool from zero past one pod and back
(issue 79), by the real KEDA: its operator (zero to one and back) and its metrics apiserver, which
the HorizontalPodAutoscaler KEDA makes reads to go past one pod (both built from KEDA's module,
processes of the cluster: localcluster/managers.py). 40 ImageGenerations across 10 LoRAs of one
owner, drawn by the chart's pool (its Deployment, headless Service and ScaledObject as it renders
them: `pools.keda` with the kubernetes-workload trigger, 2 waiting Jobs a pod, its HPA's
scale-down at once), the pool's pods `contentgen pool` of the tiny FLUX (the worker image with
torch found on the models' volume: tests/kube/torch_layer.py) on one real node of 4 GPUs.

- The pool goes from 0 pods to more than one while the Jobs wait, and back to 0 once none has
  waited for the cooldown (KEDA's Events and its HPA say so).
- Nothing is lost or drawn twice: every ImageGeneration Succeeded with its one picture, written
  once (the S3 server's access log), no Job's pod failed; pods the HPA took away while the burst
  drained finished the request they drew (their SIGTERM: the pool stops once idle), the requests
  they held asked another pod.
- The pooled Jobs' workers chose pods by the LoRAs they hold (pool.route): the pods' statuses,
  read while they ran, say how many LoRA files each loaded."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from contentgen.providers.cluster.generation.pool import PoolClient
from contentgen.store import keys
from scripts import chart
from tests.cluster.tiny_flux import session_cache, tiny_flux
from tests.harness.chart import operator_settings
from tests.harness.cluster import random_lora
from tests.harness.kube import image
from tests.kube import torch_layer
from tests.kube.harness import (
    BUCKET,
    OPERATOR_NAMESPACE,
    Cluster,
    cluster,
    engines_at_length,
    operator,
    wait_for,
)

pytestmark = [pytest.mark.timeout(1800), pytest.mark.cluster_models, engines_at_length]

NS = OPERATOR_NAMESPACE  # the release's: the workload trigger counts the Jobs' pods there
OWNER = "alice"  # every request's, and the LoRAs' uploads
POOL, REQUESTS, LORAS, PODS = "flux-dev", 40, 10, 4
NAME = f"{chart.RELEASE}-pool-{POOL}"
SMALL = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "3Gi"}}
KEDA = "keda.sh/v1alpha1/ScaledObject"


def values(models: Path) -> dict[str, Any]:
    """The chart's pool, for an install that watches its own namespace (the workload trigger counts
    the Jobs' pods there: the operator here watches them all, and the test's Jobs run there)."""
    return {
        "watchNamespaces": [NS],
        "gpu": {"models": {"hostPath": str(models)}, "inferenceSteps": 2},
        "pools": {
            "denoising": "pool",
            "items": [
                {
                    "name": POOL,
                    "baseModel": "FLUX.1-dev",
                    "replicas": PODS,
                    "minReplicas": 0,
                    "keptLoras": 4,
                    "compile": "none",  # this test scales; tests/cluster/test_hot_swap.py compiles
                    "resources": SMALL,
                }
            ],
            "keda": {
                "enabled": True,
                "pollingSeconds": 2,
                "cooldownSeconds": 20,
                "jobsPerReplica": 2,
                "scaleDownSeconds": 0,
            },
        },
    }


def rendered(models: Path) -> list[dict[str, Any]]:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
        yaml.safe_dump(values(models), file)
        file.flush()
        return [
            d for d in yaml.safe_load_all(chart.template("--values", file.name, "--api-versions", KEDA)) if d
        ]


def pool_objects(docs: list[dict[str, Any]], worker: str) -> list[dict[str, Any]]:
    """The chart's pool, its container the worker image with torch on the models' volume, torch on
    one thread (two shared cores)."""
    made = [d for d in docs if (d["metadata"].get("labels") or {}).get("contentgen.io/pool") == POOL]
    assert sorted(d["kind"] for d in made) == ["Deployment", "ScaledObject", "Service", "Service"]
    (deployment,) = [d for d in made if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    container.update(image=worker, imagePullPolicy="Never")
    container["env"].append({"name": "OMP_NUM_THREADS", "value": "1"})
    return made


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, list[dict[str, Any]]]]:
    models = tmp_path_factory.mktemp("models")
    models.chmod(0o755)
    shutil.copytree(tiny_flux(session_cache(tmp_path_factory)), models / "FLUX.1-dev")
    for path in (models / "FLUX.1-dev").rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    torch_layer.packages(models / ".site-packages")
    root = tmp_path_factory.mktemp("cluster")
    worker = torch_layer.image(root.parent / "torch-layer")
    docs = rendered(models)
    with (
        pytest.MonkeyPatch.context() as mp,
        cluster(root, mp, gpus=PODS, controllers=("keda", "keda-adapter"), worker=worker) as c,
    ):
        for name, value in operator_settings(docs, ("CONTENTGEN_CLUSTER_", "CONTENTGEN_GPU_")).items():
            mp.setenv(name, value)
        mp.setenv("CONTENTGEN_GPU_WORKER_IMAGE", worker[0])
        mp.setenv("CONTENTGEN_MAX_RUNNING_JOBS_PER_NAMESPACE", "8")
        with operator(c):
            yield c, pool_objects(docs, worker[0])


def loras(c: Cluster, folder: Path, models: Path) -> list[str]:
    """LORAS random LoRAs of the tiny FLUX in the bucket, uploads of the requests' owner (a
    resource may name no other key of the store: InputNotShared); their s3:// URLs."""
    from contentgen.store.s3 import s3_client

    client, urls = s3_client(), []
    for k in range(LORAS):
        made = random_lora(models, folder, k + 1)
        key = keys.upload(OWNER, f"burst-lora-{k}", "lora.safetensors")
        client.put_object(Bucket=BUCKET, Key=key, Body=made.read_bytes())
        urls.append(f"s3://{BUCKET}/{key}")
    return urls


class Watch:
    """The pool's Deployment's replicas and its pods' statuses, sampled until stopped."""

    def __init__(self, c: Cluster) -> None:
        self.c, self.replicas, self.statuses = c, [0], {}  # type: dict[str, dict[str, Any]]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            found = self.c.get("deployments", NS, NAME, "apps/v1")
            self.replicas.append(int(((found or {}).get("spec") or {}).get("replicas") or 0))
            for pod in pool_pods(self.c):
                if ip := pod["status"].get("podIP"):
                    try:
                        self.statuses[pod["metadata"]["name"]] = PoolClient(
                            f"http://{ip}:8090", timeout=2
                        ).status()
                    except Exception:  # not answering yet, or gone: sampled again
                        continue


def pool_pods(c: Cluster) -> list[dict[str, Any]]:
    return [
        p
        for p in c.pods(NS)
        if (p["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == "pool"
    ]


def keda_events(c: Cluster) -> list[str]:
    events = c.admin.get(
        f"/api/v1/namespaces/{NS}/events",
        fieldSelector=f"involvedObject.kind=ScaledObject,involvedObject.name={NAME}",
    )["items"]
    events.sort(key=lambda e: e.get("eventTime") or e.get("firstTimestamp") or "")
    return [e["reason"] for e in events if e["reason"].startswith("KEDAScaleTarget")]


def test_a_burst_scales_the_pool_past_one_pod_and_back_to_zero_losing_nothing(
    env: tuple[Cluster, list[dict[str, Any]]], tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    c, pool = env
    models = tmp_path / "models"
    models.mkdir()
    (models / "FLUX.1-dev").symlink_to(tiny_flux(session_cache(tmp_path_factory)))
    urls = loras(c, tmp_path / "loras", models)
    # the models' hostPath volume (the tiny FLUX and the torch layer) is outside Pod Security's
    # restricted and baseline levels, which the release namespace enforces (docs/cluster-gpus.md)
    level = {"pod-security.kubernetes.io/enforce": "privileged"}
    c.admin.patch(f"/api/v1/namespaces/{NS}", {"metadata": {"labels": level}})
    c.local.install(pool)

    def replicas() -> int:
        found = c.get("deployments", NS, NAME, "apps/v1") or {}
        return int((found.get("spec") or {}).get("replicas", -1))

    wait_for(lambda: replicas() == 0, 120, "KEDA to take the idle pool to zero")
    watch = Watch(c)
    watch.thread.start()
    names = [f"burst-{n:02d}" for n in range(REQUESTS)]
    for n, name in enumerate(names):
        spec = {"owner": OWNER, "provider": "cluster", "model": "flux-lora", "imageSize": "square"}
        spec["seed"] = 100 + n
        spec["loras"] = [{"url": urls[n % LORAS], "scale": 0.8}]
        c.apply(image(name, **spec), NS)
    try:
        done = [c.wait_phase("ImageGeneration", NS, name, "Succeeded", timeout=1200) for name in names]
        wait_for(lambda: replicas() == 0 and not pool_pods(c), 300, "KEDA to take the pool back to zero")
    finally:
        watch.stop.set()
        watch.thread.join(10)
    most = max(watch.replicas)
    assert 1 < most <= PODS, watch.replicas  # past one pod: the HPA, on KEDA's metrics apiserver
    assert c.get("horizontalpodautoscalers", NS, f"keda-hpa-{NAME}", "autoscaling/v2") is not None
    # idle at first (1 to 0), woken by the burst (0 to 1), idle again after it (N to 0)
    events = keda_events(c)
    assert events == ["KEDAScaleTargetDeactivated", "KEDAScaleTargetActivated", "KEDAScaleTargetDeactivated"]

    # nothing lost or drawn twice
    assert all(len(s.get("images") or []) == 1 for s in done)
    assert c.s3 is not None
    writes = Counter(
        key
        for operation, key, status in c.s3.requests()
        if operation in ("PutObject", "CompleteMultipartUpload")
        and status < 300
        and key.removeprefix(f"{BUCKET}/").startswith("generated-images/")
        and key.endswith(".png")
    )
    assert len(writes) == REQUESTS and set(writes.values()) == {1}, writes
    failed = [p["metadata"]["name"] for p in c.pods(NS) if p["status"].get("phase") == "Failed"]
    assert failed == []
    drawn = sum(int(s.get("drawn") or 0) for s in watch.statuses.values())
    loads = sum(int((s.get("loras") or {}).get("loads") or 0) for s in watch.statuses.values())
    seen = f"pool pods seen {len(watch.statuses)}, most replicas {most}"
    print(f"{seen}, pictures drawn seen {drawn}, LoRA loads seen {loads}")
