"""A pooled ImageGeneration and VideoGeneration end to end on the real control plane (issue 47): the
warm pools of the tiny FLUX and the tiny Wan 2.1 run as processes of this machine (`contentgen
pool`, as the chart's Deployments run it), the operator is set as the chart sets it for pools
(`pools.denoising: pool`, `pools.items`), and the Job's worker, a container of the worker image on
the real node, hands its drawing to the pool at the node's host address. The resource ends
Succeeded with its pictures (or its clip's frames) stored once, its cost the GPU-seconds the pool
measured (its estimate without a load: the pool had loaded the model), and status.pool written
while it waited or drew and removed after; the pool loaded its model once, at its start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contentgen.controller.denoising import ANNOTATION_DENOISING
from contentgen.providers.cluster.generation.pool import PoolClient
from contentgen.store import keys
from tests.cluster.tiny_flux import session_cache, tiny_flux
from tests.harness.kube import image, manifest, uid_of
from tests.kube.harness import Cluster, free_port, operator, unoperated, wait_for
from tests.providers.cluster_models import tiny_wan

pytestmark = [pytest.mark.timeout(900), pytest.mark.cluster_models]

NS = "pooled-work"
GPU_HOUR_USD = 4.0
IMAGE_SECONDS = 10.0  # prices.cluster.imageSeconds' default: the estimate of each picture
WAN = "Wan2.1-T2V-1.3B-Diffusers"


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`contentgen pool` of the tiny FLUX staged as FLUX.1-dev, on this machine's CPU and every
    address of it (the node's pods reach it at their host's); its URL here once it is warm."""
    root = tmp_path_factory.mktemp("pool")
    (root / "models").mkdir()
    (root / "models" / "FLUX.1-dev").symlink_to(tiny_flux(session_cache(tmp_path_factory)))
    yield from _served(root, "FLUX.1-dev")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`contentgen pool` of the tiny Wan 2.1 staged as Wan2.1-T2V-1.3B-Diffusers: a video model's
    pool, which denoises VideoGenerations' clips."""
    root = tmp_path_factory.mktemp("clips")
    tiny_wan(root / "models" / WAN)
    yield from _served(root, WAN)


def _served(root: Path, model: str) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "CONTENTGEN_CLUSTER_MODELS_DIR": str(root / "models"),
        "CONTENTGEN_CLUSTER_DEVICE": "cpu",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    command = [sys.executable, "-m", "contentgen", "pool", "--model", model, "--host", "0.0.0.0"]
    with (root / "pool.log").open("w") as log:
        process = subprocess.Popen(
            [*command, "--port", str(port), "--work-dir", str(root / "work")], env=env, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        client = PoolClient(url, wait=0)

        def warm() -> bool:
            assert process.poll() is None, (root / "pool.log").read_text()[-3000:]
            try:
                return client.status()["state"] == "warm"
            except Exception:
                return False

        wait_for(warm, 300, f"the pool's {model} loaded")
        yield url
    finally:
        process.terminate()
        process.wait(60)


def reached(c: Cluster, pool: str) -> str:
    """The pool's URL where the node's pods reach it."""
    return pool.replace("127.0.0.1", c.host_ip)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, pool: str, clips: str) -> Iterator[Cluster]:
    with unoperated(tmp_path_factory) as c, pytest.MonkeyPatch.context() as mp:
        # what the chart's ConfigMap says for pools.denoising: pool, a pool of FLUX.1-dev and one of Wan
        mp.setenv("CONTENTGEN_CLUSTER_DENOISING", "pool")
        pools = [
            {"name": "flux-dev", "baseModel": "FLUX.1-dev", "url": reached(c, pool)},
            {"name": "wan-t2v", "baseModel": WAN, "url": reached(c, clips)},
        ]
        mp.setenv("CONTENTGEN_CLUSTER_POOLS", json.dumps(pools))
        mp.setenv("CONTENTGEN_CLUSTER_INFERENCE_STEPS", "2")
        mp.setenv("CONTENTGEN_PRICES", json.dumps({"cluster": {"gpuHourUsd": GPU_HOUR_USD}}))
        with operator(c):
            yield c


def test_a_pooled_image_generation_draws_in_the_warm_pool(env: Cluster, pool: str) -> None:
    c = env
    c.ensure_namespace(NS)
    c.apply(image("pooled", provider="cluster", numImages=2, imageSize="square", seed=11), NS)
    status = c.wait_phase("ImageGeneration", NS, "pooled", "Succeeded", timeout=600)

    (job,) = [j for j in c.jobs(NS) if j["metadata"]["name"] == status["jobName"]]
    assert job["metadata"]["annotations"][ANNOTATION_DENOISING].startswith("pool flux-dev:")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert {"name": "CONTENTGEN_CLUSTER_POOL_URL", "value": reached(c, pool)} in container["env"]
    assert "nvidia.com/gpu" not in json.dumps(container.get("resources") or {})  # the pool holds it
    assert container["image"].rsplit("/", 1)[-1].startswith("contentgen-worker:")  # not the GPU image

    drawn = PoolClient(pool).status()
    assert (drawn["requests"], drawn["drawn"], drawn["loads"]) == (1, 2, 1)  # loaded once, at its start
    assert [i["seed"] for i in status["images"]] == [11, 12]
    uid = uid_of(c, "ImageGeneration", NS, "pooled")
    made = sorted(i.key.rsplit("/", 1)[1] for i in c.store.list(keys.pictures_made(uid, 1)))
    assert made == ["image-1.json", "image-1.png", "image-2.json", "image-2.png", "request.json"]

    # the bill: the pool's drawing time of these two pictures, at the GPU-hour's price; the
    # estimate: two pictures, no load
    cost = status["cost"]
    assert cost["estimatedUsd"] == pytest.approx(2 * IMAGE_SECONDS / 3600 * GPU_HOUR_USD, abs=1e-6)
    assert 0 < cost["actualUsd"] <= drawn["busySeconds"] / 3600 * GPU_HOUR_USD + 1e-6
    assert "image-generation" in cost["detail"]

    # status.pool while the request was with the pool, and none after
    places: list[Any] = [
        (s.get("status") or {}).get("pool") for s in c.history("ImageGeneration", NS, "pooled")
    ]
    states = {p["state"] for p in places if p}
    assert states and states <= {"starting", "loading", "queued", "drawing"}, places
    assert "drawing" in states
    assert "pool" not in status and "pool" not in c.status("ImageGeneration", NS, "pooled")
    assert PoolClient(pool).status()["state"] == "warm"  # the next request draws without a load


def test_a_pooled_video_generation_is_denoised_in_its_models_pool(env: Cluster, clips: str) -> None:
    """The clip's frames come back into the Job's write-once folder as the pool keeps them; the
    Job's worker (the worker image: no torch) encodes and stores the video, as its own Job would."""
    c = env
    c.ensure_namespace(NS)
    spec = {
        "owner": "bob",
        "provider": "cluster",
        "prompt": "a red fox runs through snow",
        "model": "wan-1.3b-t2v",
        "aspectRatio": "1:1",
        "numFrames": 5,
        "fps": 8,
        "seed": 3,
    }
    c.apply(manifest("VideoGeneration", "fox", spec), NS)
    status = c.wait_phase("VideoGeneration", NS, "fox", "Succeeded", timeout=600)

    (job,) = [j for j in c.jobs(NS) if j["metadata"]["name"] == status["jobName"]]
    assert job["metadata"]["annotations"][ANNOTATION_DENOISING].startswith("pool wan-t2v: the chart's")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert {"name": "CONTENTGEN_CLUSTER_POOL_URL", "value": reached(c, clips)} in container["env"]
    assert container["image"].rsplit("/", 1)[-1].startswith("contentgen-worker:")  # not the GPU image

    denoised = PoolClient(clips).status()
    assert (denoised["requests"], denoised["drawn"], denoised["loads"]) == (1, 1, 1)
    video = status["video"]
    assert (video["frames"], video["width"], video["height"]) == (5, 480, 480) and status["versions"][-1]
    uid = uid_of(c, "VideoGeneration", NS, "fox")
    made = sorted(i.key.rsplit("/", 1)[1] for i in c.store.list(keys.frames_made(uid, 1)))
    assert made == ["frames.json", "frames.npz", "request.json"]  # the states the pool kept, gone after
    record = json.loads(c.store.get_bytes(f"{keys.frames_made(uid, 1)}frames.json"))
    assert 0 < record["gpu_seconds"] <= denoised["busySeconds"] + 1e-6
    cost = status["cost"]
    assert 0 < cost["actualUsd"] <= denoised["busySeconds"] / 3600 * GPU_HOUR_USD + 1e-6
    places = [(s.get("status") or {}).get("pool") for s in c.history("VideoGeneration", NS, "fox")]
    assert "drawing" in {p["state"] for p in places if p}, places
    assert "pool" not in c.status("VideoGeneration", NS, "fox")
