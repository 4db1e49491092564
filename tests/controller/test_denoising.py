"""Where a `provider: cluster` ImageGeneration or VideoGeneration draws (issue 47,
controller/denoising.py): the spec's `denoising`, else the chart's default; `pool` only where a pool
serves the model's base (a video model's staged directory at the clip's resolution); and the Job
of each choice: a pooled Job keeps everything a Job is (its spec, store, deadlines, restricted pod)
but sends its drawing to the pool's Service, holds no GPU, mounts no models, runs the plain worker
image, stays out of the platform's GPU queue and carries the label the pool's autoscaler counts."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from contentgen.api import SpecSnapshot
from contentgen.controller.denoising import ANNOTATION_DENOISING, LABEL_POOL, base_model, denoising
from contentgen.controller.jobs import render_job
from contentgen.controller.settings import ClusterPool, ModelsSource, OperatorSettings
from contentgen.providers.settings import ClusterWorkerSettings, from_environment
from tests.harness.jobs import UID, full_settings

DEV = ClusterPool(
    name="flux-dev", base_model="FLUX.1-dev", url="http://contentgen-pool-flux-dev.contentgen.svc:8090"
)


def snapshot(kind: str = "ImageGeneration", **spec: Any) -> SpecSnapshot:
    body = {"owner": "alice", "provider": "cluster", "prompt": "a cat", **spec}
    if kind == "Transcription":
        body = {"owner": "alice", "provider": "cluster", "source": {"url": "https://e.com/a.mp3"}}
    return SpecSnapshot(kind=kind, name="cat", namespace="team-a", uid=UID, generation=1, spec=body)


def settings(**changes: Any) -> OperatorSettings:
    chosen = full_settings()
    chosen.cluster_pools = [DEV]
    chosen.cluster_models = ModelsSource(persistent_volume_claim="weights")
    chosen.queue_name = "gpus"
    for name, value in changes.items():
        setattr(chosen, name, value)
    return chosen


@pytest.mark.parametrize(
    ("spec", "default", "pool", "why"),
    [
        ({}, "job", None, "job: the chart's pools.denoising is job"),
        (
            {},
            "pool",
            "flux-dev",
            "pool flux-dev: the chart's pools.denoising is pool, and it serves FLUX.1-dev",
        ),
        ({"denoising": "pool"}, "job", "flux-dev", "pool flux-dev: spec.denoising is pool"),
        ({"denoising": "job"}, "pool", None, "job: spec.denoising is job"),
        ({"model": "flux-lora"}, "pool", "flux-dev", "pool flux-dev"),
        (
            {"model": "flux-schnell", "denoising": "pool"},
            "job",
            None,
            "job: spec.denoising is pool, but no pool serves FLUX.1-schnell (the chart's pools.items)",
        ),
    ],
)
def test_the_spec_chooses_else_the_chart_and_a_pool_only_for_its_base(
    spec: dict[str, Any], default: str, pool: str | None, why: str
) -> None:
    where = denoising(snapshot(**spec), settings(cluster_denoising=default))
    assert where is not None
    assert (where.pool.name if where.pool else None) == pool
    assert where.describe().startswith(why)


def test_other_kinds_and_providers_are_not_asked() -> None:
    chosen = settings(cluster_denoising="pool")
    assert denoising(snapshot("Transcription"), chosen) is None
    assert denoising(snapshot(provider="offline"), chosen) is None
    assert base_model({"model": "flux-schnell"}, "flux-dev", chosen) == chosen.cluster_flux_schnell_model


WAN_480 = ClusterPool(
    name="wan-i2v",
    base_model="Wan2.1-I2V-14B-480P-Diffusers",
    url="http://contentgen-pool-wan-i2v:8090",
    gpus=2,
)
T2V = ClusterPool(
    name="wan-t2v", base_model="Wan2.1-T2V-1.3B-Diffusers", url="http://contentgen-pool-wan-t2v:8090"
)


@pytest.mark.parametrize(
    ("spec", "pool", "why"),
    [
        (
            {"model": "wan-1.3b-t2v"},
            "wan-t2v",
            "pool wan-t2v: the chart's pools.denoising is pool, and it serves Wan2.1-T2V-1.3B",
        ),
        ({"model": "wan-14b-i2v", "image": {"url": "https://e.com/a.png"}}, "wan-i2v", "pool wan-i2v"),
        # its 720p checkpoint is another staged directory, which no pool serves
        (
            {"model": "wan-14b-i2v", "resolution": "720p", "image": {"url": "https://e.com/a.png"}},
            None,
            "job: the chart's pools.denoising is pool, but no pool serves Wan2.1-I2V-14B-720P-Diffusers",
        ),
        (
            {"model": "ltx-video"},
            None,
            "job: the chart's pools.denoising is pool, but no pool serves LTX-Video",
        ),
        ({"model": "wan-1.3b-t2v", "denoising": "job"}, None, "job: spec.denoising is job"),
    ],
)
def test_a_clip_is_denoised_by_the_pool_of_its_staged_directory(
    spec: dict[str, Any], pool: str | None, why: str
) -> None:
    chosen = settings(cluster_denoising="pool", cluster_pools=[DEV, WAN_480, T2V])
    where = denoising(snapshot("VideoGeneration", **spec), chosen)
    assert where is not None and (where.pool.name if where.pool else None) == pool
    assert where.describe().startswith(why)
    job = render_job(snapshot("VideoGeneration", **spec), chosen)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env.get("CONTENTGEN_CLUSTER_POOL_URL") == (where.pool.url if where.pool else None)
    assert ("nvidia.com/gpu" in container["resources"].get("limits", {})) == (pool is None)


def test_a_pooled_job_sends_its_drawing_to_the_pool_and_holds_no_gpu() -> None:
    chosen = settings()
    own, pooled = render_job(snapshot(), chosen), render_job(snapshot(), settings(cluster_denoising="pool"))
    for job in (own, pooled):
        kubernetes_validate.validate(job, "1.33.0", strict=True)
    pod, own_pod = pooled["spec"]["template"], own["spec"]["template"]
    (container,), (own_container,) = pod["spec"]["containers"], own_pod["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    own_env = {e["name"]: e.get("value") for e in own_container["env"]}
    assert env["CONTENTGEN_CLUSTER_POOL_URL"] == DEV.url and "CONTENTGEN_CLUSTER_POOL_URL" not in own_env
    worker = from_environment(ClusterWorkerSettings, {k: v for k, v in env.items() if v is not None})
    assert worker.cluster_pool_url == DEV.url
    # the rest of the worker's environment is the Job's: its spec, store, models and prices
    assert {
        k: v for k, v in env.items() if not k.startswith(("CONTENTGEN_CLUSTER_MODELS", "CONTENTGEN_GPU"))
    } == {
        k: v for k, v in own_env.items() if not k.startswith(("CONTENTGEN_CLUSTER_MODELS", "CONTENTGEN_GPU"))
    } | {"CONTENTGEN_CLUSTER_POOL_URL": DEV.url}
    assert own_container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["resources"] == chosen.kinds["ImageGeneration"].resources.model_dump()
    # it imports no drawing stack (tests/cluster/test_pooled_worker.py), and the plain image has
    # all it does import (tests/chart/test_images.py): a 620 MB pull where the GPU image is 8.5 GB
    assert (container["image"], own_container["image"]) == (chosen.worker_image, chosen.gpu_worker_image)
    assert "models" not in {v["name"] for v in pod["spec"]["volumes"]}
    assert "contentgen.io/gpus" not in pooled["metadata"]["annotations"]
    assert "accelerator" not in pod["spec"].get("nodeSelector", {})  # not a GPU node's place
    assert (
        pod["metadata"]["labels"][LABEL_POOL] == "flux-dev"
        and LABEL_POOL not in own_pod["metadata"]["labels"]
    )
    assert pooled["metadata"]["annotations"][ANNOTATION_DENOISING].startswith("pool flux-dev: ")
    assert own["metadata"]["annotations"][ANNOTATION_DENOISING] == "job: the chart's pools.denoising is job"
    # the platform's GPU queue is for Jobs that hold GPUs; a user's own queue still applies
    assert own["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpus"
    assert "kueue.x-k8s.io/queue-name" not in pooled["metadata"]["labels"]
    asked = render_job(snapshot(denoising="pool", queueName="mine"), chosen)
    assert asked["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "mine"
    # everything else a Job is stays: deadlines, retries, the restricted pod, its owner
    for key in ("backoffLimit", "activeDeadlineSeconds", "podFailurePolicy", "ttlSecondsAfterFinished"):
        assert pooled["spec"][key] == own["spec"][key]
    assert pod["spec"]["securityContext"] == own_pod["spec"]["securityContext"]
    assert pooled["metadata"]["ownerReferences"] == own["metadata"]["ownerReferences"]


def test_the_pool_settings_are_read_from_the_charts_json() -> None:
    import os
    from unittest import mock

    env = {
        "CONTENTGEN_CLUSTER_DENOISING": "pool",
        "CONTENTGEN_CLUSTER_POOLS": '[{"name": "flux-dev", "baseModel": "FLUX.1-dev", "url": "http://p.ns.svc:8090"}]',
    }
    with mock.patch.dict(os.environ, env):
        read = OperatorSettings()
    assert read.cluster_denoising == "pool"
    assert read.cluster_pools == [
        ClusterPool(name="flux-dev", base_model="FLUX.1-dev", url="http://p.ns.svc:8090")
    ]
    with (
        mock.patch.dict(
            os.environ, {**env, "CONTENTGEN_CLUSTER_POOLS": '[{"name": "x", "baseModel": "M", "url": "p:1"}]'}
        ),
        pytest.raises(ValueError, match="url"),
    ):
        OperatorSettings()


@pytest.mark.parametrize("chart", ["job", "pool"])
@pytest.mark.parametrize(
    "spec",
    [{}, {"model": "flux-lora"}, {"model": "flux-schnell"}, {"denoising": "job"}, {"denoising": "pool"}],
)
def test_a_pooled_requests_estimate_counts_no_load(chart: str, spec: dict[str, Any]) -> None:
    """A warm pool keeps the base model loaded, so a request it draws is estimated at its
    pictures' seconds only; one its own Job draws (job, or no pool for its model) still counts
    the Job's load (startupSeconds), exactly where the operator's decision sends it."""
    from contentgen.pricing import expected_usage

    chosen = OperatorSettings(cluster_pools=[DEV], cluster_denoising=chart)
    cluster = chosen.prices.cluster
    wanted = snapshot(numImages=3, **spec)
    seconds = expected_usage("ImageGeneration", wanted.priced_spec(), chosen.prices)[0].quantity * 3600
    where = denoising(wanted, chosen)
    assert where is not None
    load = 0 if where.pool is not None else cluster.startup_seconds
    assert seconds == pytest.approx(load + 3 * cluster.image_seconds)
    if spec.get("denoising") == "pool" or (chart == "pool" and not spec):
        assert load == 0  # the cases a pool serves do drop the load


def test_a_pooled_requests_estimate_counts_the_pool_pods_gpus_not_the_jobs() -> None:
    """A request the pool draws holds the pool pod's GPUs (pools.items[].gpus) for its pictures;
    one its own Job draws holds the Job's (gpu.jobs.ImageGeneration.count)."""
    from contentgen.controller.job_defaults import GpuJob
    from contentgen.pricing import expected_gpu_seconds

    chosen = OperatorSettings(
        cluster_pools=[DEV.model_copy(update={"gpus": 4})],
        cluster_denoising="pool",
        gpu_jobs={"ImageGeneration": GpuJob(count=2)},
    )
    cluster = chosen.prices.cluster
    assert cluster.pool_gpus == dict.fromkeys(cluster.pooled_models, 4)  # the models whose base it serves
    assert {"flux-dev", "flux-lora"} <= set(cluster.pool_gpus) and "flux-schnell" not in cluster.pool_gpus
    drawn, own = snapshot(numImages=3), snapshot(numImages=3, model="flux-schnell")
    assert denoising(drawn, chosen).pool == chosen.cluster_pools[0]  # type: ignore[union-attr]
    assert denoising(own, chosen).pool is None  # type: ignore[union-attr]
    pooled_seconds = expected_gpu_seconds("ImageGeneration", drawn.priced_spec(), chosen.prices)
    own_seconds = expected_gpu_seconds("ImageGeneration", own.priced_spec(), chosen.prices)
    assert pooled_seconds == pytest.approx(4 * 3 * cluster.image_seconds)
    assert own_seconds == pytest.approx(2 * (cluster.startup_seconds + 3 * cluster.image_seconds))
