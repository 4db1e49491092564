"""The warm pool as the chart makes it (issue 47), on the real node with the GPU worker image itself
(built: CONTENTGEN_TEST_GPU_IMAGE=1, as tests/images' GPU image tests; test_pool_requests.py shows
the same Job-to-pool path by default, its pool a process of this machine): the chart's pool
Deployment and Service (`pools.items`), the tiny FLUX staged as FLUX.1-dev in the store's bucket
(`gpu.models.storePrefix`), the pod Ready only once its pipeline is loaded, and the operator set as
the chart's ConfigMap sets it. Two owners' ImageGenerations, one of them twice, draw there through
the Service's cluster DNS name; each ends Succeeded with its pictures stored once, and the pool's
pod loaded its model once for all of them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from contentgen.controller.denoising import ANNOTATION_DENOISING
from contentgen.providers.cluster.generation.pool import PoolClient
from contentgen.store import keys
from contentgen.store.s3 import s3_client
from tests.cluster.tiny_flux import session_cache, tiny_flux
from tests.harness.chart import operator_settings, rendered
from tests.harness.kube import image, uid_of
from tests.harness.real_node import needs_gpu_image
from tests.kube.harness import BUCKET, OPERATOR_NAMESPACE, Cluster, cluster, operator, wait_for
from tests.staged_models import upload_model

pytestmark = [pytest.mark.timeout(1200), pytest.mark.cluster_models, needs_gpu_image]

NS = "pooled-work"
POOL = "contentgen-pool-flux-dev"  # the chart's name for pool `flux-dev` of release `contentgen`
SMALL = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "6Gi"}}  # this machine's


def values(c: Cluster) -> dict[str, Any]:
    """What a platform team sets for one pool (docs/cluster-gpus.md#warm-pools), with this
    machine's resources and the store where the pods reach it."""
    assert c.s3_proxy is not None and c.s3 is not None
    return {
        "store": {"url": f"s3://{BUCKET}", "endpointUrl": c.s3_proxy.endpoint, "region": c.s3.region},
        "s3": {"existingSecret": "contentgen-s3"},
        "gpu": {
            "models": {"storePrefix": f"s3://{BUCKET}/models"},
            "inferenceSteps": 2,
            "jobs": {"ImageGeneration": {"resources": SMALL}},
        },
        "pools": {
            "denoising": "pool",
            "items": [{"name": "flux-dev", "baseModel": "FLUX.1-dev", "replicas": 1, "resources": SMALL}],
        },
        "prices": {"cluster": {"gpuHourUsd": 4.0}},
    }


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    flux = tiny_flux(session_cache(tmp_path_factory))
    with (
        pytest.MonkeyPatch.context() as mp,
        cluster(tmp_path_factory.mktemp("cluster"), mp, gpus=1, gpu_image=True) as c,
    ):
        upload_model(s3_client(), BUCKET, "models", "FLUX.1-dev", flux)
        docs = rendered(values(c))
        pool = [
            d for d in docs if (d["metadata"].get("labels") or {}).get("contentgen.io/pool") == "flux-dev"
        ]
        assert sorted(d["kind"] for d in pool) == ["Deployment", "Service"]
        c.local.install(pool)
        for name, value in operator_settings(
            docs, ("CONTENTGEN_GPU_", "CONTENTGEN_CLUSTER_", "CONTENTGEN_PRICES")
        ).items():
            mp.setenv(name, value)
        with operator(c):
            yield c


def pool_pod(c: Cluster) -> dict[str, Any]:
    (pod,) = [
        p
        for p in c.pods(OPERATOR_NAMESPACE)
        if (p["metadata"].get("labels") or {}).get("contentgen.io/pool") == "flux-dev"
    ]
    return pod


def test_two_owners_draw_in_the_charts_pool_which_loads_its_model_once(env: Cluster) -> None:
    c = env

    def ready() -> bool:
        conditions = (pool_pod(c).get("status") or {}).get("conditions") or []
        return any(x["type"] == "Ready" and x["status"] == "True" for x in conditions)

    wait_for(ready, 600, lambda: f"the pool's pod Ready (now {pool_pod(c).get('status')})")
    requests = [("first", "alice", 11), ("again", "alice", 21), ("other", "bob", 31)]
    for name, owner, seed in requests:
        c.apply(image(name, provider="cluster", owner=owner, numImages=1, imageSize="square", seed=seed), NS)
    for name, _, seed in requests:
        status = c.wait_phase("ImageGeneration", NS, name, "Succeeded", timeout=600)
        (job,) = [j for j in c.jobs(NS) if j["metadata"]["name"] == status["jobName"]]
        assert job["metadata"]["annotations"][ANNOTATION_DENOISING].startswith("pool flux-dev:")
        (container,) = job["spec"]["template"]["spec"]["containers"]
        url = next(e["value"] for e in container["env"] if e["name"] == "CONTENTGEN_CLUSTER_POOL_URL")
        assert f"{POOL}.{OPERATOR_NAMESPACE}" in url, url  # the Service, by its cluster DNS name
        assert [i["seed"] for i in status["images"]] == [seed]
        uid = uid_of(c, "ImageGeneration", NS, name)
        made = sorted(i.key.rsplit("/", 1)[1] for i in c.store.list(keys.pictures_made(uid, 1)))
        assert made == ["image-1.json", "image-1.png", "request.json"]
        assert status["cost"]["actualUsd"] > 0

    pod = pool_pod(c)
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    assert json.dumps(pod["spec"]["containers"][0]["resources"]).count("nvidia.com/gpu") == 2  # asked, held
    drawn = PoolClient(f"http://{pod['status']['podIP']}:8090").status()  # the host reaches a pod's IP
    assert (drawn["requests"], drawn["drawn"], drawn["loads"]) == (3, 3, 1)  # one load for three requests
    assert drawn["state"] == "warm"
