"""A video LoRA on the cluster's own GPUs, end to end on the real node (issue 68): a LoraTraining with
`training.baseModel: wan-2.1-t2v-1.3b` and `provider: cluster` trains a Wan LoRA with the cluster's
Wan trainer (providers/cluster/families/wan_training.py) in its Job's pod, on the tiny Wan 2.1 T2V staged on
the node's models volume as `Wan2.1-T2V-1.3B-Diffusers`; then a VideoGeneration on the cluster's
`wan-1.3b-t2v` with that LoRA by `loraRef` draws its clip with it in its own pod. Both Succeed; the
version stores the diffusers file, its ComfyUI-layout copy and the config saying what it was
trained for; the video's record names the LoRA version it was made with, and its lineage in the
catalog (what the web UI's lineage shows: GET /api/assets/REF/lineage reads the same function)
goes video ← LoRA version ← its dataset ← the source video.

The pods run the worker image with torch found on the models' volume (tests/kube/torch_layer.py,
as test_several_nodes.py: hard links to this checkout's .venv, the GPU worker image's pins): the
cluster provider runs there, on the node's CPU; the node advertises one GPU for the scheduler."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest

from contentgen.catalog.lineage import lineage
from contentgen.store import keys
from tests.harness.chart import operator_settings, rendered
from tests.harness.kube import lora, manifest, record_calls, uid_of
from tests.kube import torch_layer
from tests.kube.harness import Cluster, cluster, operator, wait_for
from tests.providers.cluster_models import tiny_wan

pytestmark = [pytest.mark.timeout(1800), pytest.mark.cluster_models]

NS = "wan"
VALUES = {"gpu": {"inferenceSteps": 2}}
MODEL = "Wan2.1-T2V-1.3B-Diffusers"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    models = tmp_path_factory.mktemp("models")
    models.chmod(0o755)
    built = tiny_wan(tmp_path_factory.mktemp("wan-build") / MODEL, unipc=True)
    shutil.copytree(built, models / MODEL, copy_function=lambda s, d: shutil.copy2(s, d))
    for path in (models / MODEL).rglob("*"):  # readable by the workers' user (uid 10001)
        path.chmod(0o755 if path.is_dir() else 0o644)
    torch_layer.packages(models / ".site-packages")
    root = tmp_path_factory.mktemp("cluster")
    worker = torch_layer.image(root.parent / "torch-layer")
    with pytest.MonkeyPatch.context() as mp, cluster(root, mp, gpus=1, worker=worker) as c:
        for name, value in operator_settings(
            rendered(VALUES), ("CONTENTGEN_GPU_", "CONTENTGEN_CLUSTER_")
        ).items():
            mp.setenv(name, value)
        mp.setenv("CONTENTGEN_GPU_WORKER_IMAGE", worker[0])
        mp.setenv("CONTENTGEN_CLUSTER_MODELS", json.dumps({"hostPath": str(models)}))
        small = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "6Gi"}}
        mp.setenv(
            "CONTENTGEN_GPU_JOBS",
            json.dumps({"LoraTraining": {"resources": small}, "VideoGeneration": {"resources": small}}),
        )
        with operator(c):
            yield c
        record_calls(c)


def test_a_wan_lora_trained_on_the_cluster_draws_a_clip_with_its_lineage(env: Cluster) -> None:
    c = env
    c.apply(
        lora(
            "dm-wan",
            c.media,
            provider="cluster",
            dataset={"maxFrames": 4, "minFrames": 4, "minSceneSeconds": 0.5, "clips": {"frames": 17}},
            training={
                "baseModel": "wan-2.1-t2v-1.3b",
                "steps": 100,
                "checkpointEvery": 50,
                "resolution": 256,
                "rank": 4,
            },
            evaluation={"enabled": False},
        ),
        NS,
    )
    trained = c.wait_phase("LoraTraining", NS, "dm-wan", "Succeeded", timeout=1200)
    lora_uid = uid_of(c, "LoraTraining", NS, "dm-wan")
    [version] = trained["versions"]
    assert version["provider"] == "cluster"
    prefix = keys.lora_version("alice", lora_uid, 1)
    stored = {i.key.removeprefix(prefix) for i in c.store.list(prefix)}
    assert {"model.safetensors", "comfyui/model.safetensors", "config.json", "training-loss.json"} <= stored
    assert {"checkpoints/step-000050.safetensors", "checkpoints/step-000100.pt"} <= stored
    config = json.loads(c.store.get_bytes(prefix + "config.json"))
    assert (config["training_base_model"], config["base_model"], config["steps"]) == (
        "wan-2.1-t2v-1.3b",
        MODEL,
        100,
    )
    assert len(json.loads(c.store.get_bytes(prefix + "training-loss.json"))["steps"]) == 100

    c.apply(
        manifest(
            "VideoGeneration",
            "dm-walks",
            {
                "owner": "alice",
                "provider": "cluster",
                "model": "wan-1.3b-t2v",
                "prompt": "tw walks on the beach",
                "numFrames": 5,
                "fps": 8,
                "aspectRatio": "1:1",
                "seed": 7,
                "loras": [{"loraRef": {"name": "dm-wan"}}],
            },
        ),
        NS,
    )
    made = c.wait_phase("VideoGeneration", NS, "dm-walks", "Succeeded", timeout=900)
    video_uid = uid_of(c, "VideoGeneration", NS, "dm-walks")
    assert (made["video"]["frames"], made["video"]["codec"]) == (5, "h264")
    [used] = made["loras"]
    assert (used["name"], used["uid"], used["version"]) == ("dm-wan", lora_uid, 1)
    assert used["uri"].split("?", 1)[0].endswith(f"{prefix}model.safetensors")
    # billed by the GPU time it held (the LoRA loads from the store: no charge of its own)
    assert " gpu-hours of video-generation x $" in made["cost"]["detail"], made["cost"]

    catalog = c.catalog()
    doc = wait_for(
        lambda: (d := catalog.get(video_uid)) and d.get("status") == "Succeeded" and d,
        60,
        "the clip's record",
    )
    found = lineage(catalog, doc, None)
    [use] = found.loras
    assert use.found and use.lora is not None and use.lora.id == lora_uid and use.version == 1
    assert use.trained is not None and use.trained.dataset_uri.endswith("dataset.zip")
    assert use.trained.source_url == f"{c.media}/clip.mp4"
