"""A LoRA of a newer picture family on the cluster's own GPUs, end to end on the real node (issue
78): a LoraTraining with `training.baseModel: z-image-turbo` and `provider: cluster` trains a Z-Image
LoRA with the cluster's one trainer and its Z-Image recipe (providers/cluster/families/) in its Job's
pod, on the tiny Z-Image (tests/cluster/tiny_z_image.py) staged on the node's models volume as
`Z-Image-Turbo`. It Succeeds; the version stores the diffusers file under Z-Image's layer names, its
checkpoints and the config saying what it was trained for, and the family's memory plan is said as
an estimate. Each checkpoint is scored for likeness with z-image-turbo's pictures, drawn in the
loop by the transformer in training (no face in the tiny model's noise: the last step is the model),
and the cost says the evaluation's GPU time. An ImageGeneration of model z-image-turbo on the
cluster, waiting for that LoRA by `loraRef`, draws its two pictures with it in its own Job's pod,
from the same staged directory. On the same cluster, a LoraTraining with `training.baseModel: ltx-2`
trains an LTX-2 LoRA on the tiny LTX-2 (tests/cluster/tiny_ltx2.py) staged as `LTX-2`, from clips
of the source video, with the same trainer and LTX-2's family module: it Succeeds and stores a LoRA
of the video stream's layers only (its watch's clips are drawn at 480p, which the tiny model on a
CPU does not need to prove: tests/cluster/test_ltx2_training.py draws them); a VideoGeneration of
model ltx-2, waiting for that LoRA by `loraRef`, draws a clip with it and its sound in its own Job's
pod, from the same staged directory. The pods run the worker
image with torch found on the models' volume (tests/kube/torch_layer.py, as test_wan_lora.py); the
node advertises one GPU for the scheduler, the trainer runs on its CPU."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from safetensors import safe_open

from contentgen.pipeline.lora_formats import read_header
from contentgen.store import keys
from tests.cluster.tiny_ltx2 import tiny_ltx2
from tests.cluster.tiny_z_image import tiny_z_image
from tests.harness.kube import image, lora, manifest, record_calls, uid_of
from tests.kube import torch_layer
from tests.kube.harness import Cluster, cluster, operator

pytestmark = [pytest.mark.timeout(1800), pytest.mark.cluster_models]

NS = "zimage"
MODEL, LTX2 = "Z-Image-Turbo", "LTX-2"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    models = tmp_path_factory.mktemp("models")
    models.chmod(0o755)
    for name, build in ((MODEL, tiny_z_image), (LTX2, tiny_ltx2)):
        built = build(tmp_path_factory.mktemp("build") / name)
        shutil.copytree(built, models / name, copy_function=lambda s, d: shutil.copy2(s, d))
        for path in (models / name).rglob("*"):  # readable by the workers' user (uid 10001)
            path.chmod(0o755 if path.is_dir() else 0o644)
    torch_layer.packages(models / ".site-packages")
    root = tmp_path_factory.mktemp("cluster")
    worker = torch_layer.image(root.parent / "torch-layer")
    with pytest.MonkeyPatch.context() as mp, cluster(root, mp, gpus=1, worker=worker) as c:
        mp.setenv("CONTENTGEN_GPU_WORKER_IMAGE", worker[0])
        mp.setenv("CONTENTGEN_CLUSTER_MODELS", json.dumps({"hostPath": str(models)}))
        small = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "6Gi"}}
        jobs = {kind: {"resources": small} for kind in ("LoraTraining", "ImageGeneration", "VideoGeneration")}
        mp.setenv("CONTENTGEN_GPU_JOBS", json.dumps(jobs))
        with operator(c):
            yield c
        record_calls(c)


def test_a_z_image_lora_trained_on_the_cluster(env: Cluster, tmp_path: Path) -> None:
    c = env
    c.apply(
        lora(
            "dm-z",
            c.media,
            provider="cluster",
            training={
                "baseModel": "z-image-turbo",
                "steps": 100,
                "checkpointEvery": 50,
                "resolution": 256,
                "rank": 4,
            },
            evaluation={"seeds": [1]},
        ),
        NS,
    )
    picture = image(
        "dm-z-portrait",
        provider="cluster",
        model="z-image-turbo",
        prompt="a photo of dmavatar",
        numImages=2,
        imageSize="square",
        seed=7,
        loras=[{"loraRef": {"name": "dm-z"}}],
    )
    c.apply(picture, NS)  # waits for the LoRA
    trained = c.wait_phase("LoraTraining", NS, "dm-z", "Succeeded", timeout=1200)
    [version] = trained["versions"]
    assert version["provider"] == "cluster"
    prefix = keys.lora_version("alice", uid_of(c, "LoraTraining", NS, "dm-z"), 1)
    stored = {i.key.removeprefix(prefix) for i in c.store.list(prefix)}
    assert {"model.safetensors", "config.json", "training-loss.json"} <= stored
    assert {"checkpoints/step-000050.safetensors", "checkpoints/step-000100.pt"} <= stored
    config = json.loads(c.store.get_bytes(prefix + "config.json"))
    assert (config["training_base_model"], config["base_model"], config["family"]) == (
        "z-image-turbo",
        MODEL,
        "Z-Image",
    )
    model = tmp_path / "z.safetensors"
    model.write_bytes(c.store.get_bytes(prefix + "model.safetensors"))
    with safe_open(model, "pt") as f:
        names = list(f.keys())
    assert names and all(n.startswith("transformer.layers.") for n in names)
    assert "not measured on a GPU" in version.get("memoryPlan", "")
    likeness = trained["likeness"]
    scored = [(p["step"], p["verdict"], p["chosen"]) for p in likeness["checkpoints"]]
    assert scored == [(50, "no-faces", False), (100, "no-faces", True)], likeness["reasons"]
    assert "likeness-evaluation" in trained["cost"]["detail"]
    drawn_in = {i.key.removeprefix(prefix) for i in c.store.list(prefix + "likeness/step-000050/")}
    assert "likeness/step-000050/likeness.json" in drawn_in

    drawn = c.wait_phase("ImageGeneration", NS, "dm-z-portrait", "Succeeded", timeout=600)
    assert [(i["seed"], i["width"], i["height"]) for i in drawn["images"]] == [(7, 512, 512), (8, 512, 512)]
    assert drawn["loras"][0]["name"] == "dm-z" and drawn["loras"][0]["version"] == 1
    assert "gpu-hour" in drawn["cost"]["detail"] and drawn["cost"]["actualUsd"] > 0
    assert drawn["versions"][-1].get("memoryPlan") == "bf16, on the CPU"  # its one base, in FLUX.1's words


def test_an_ltx2_lora_trained_on_the_cluster(env: Cluster, tmp_path: Path) -> None:
    c = env
    training = {"baseModel": "ltx-2", "steps": 100, "checkpointEvery": 50, "resolution": 256, "rank": 4}
    dataset = {"maxFrames": 4, "minFrames": 4, "minSceneSeconds": 0.5, "clips": {"frames": 17}}
    off = {"enabled": False}
    made = lora("dm-ltx", c.media, provider="cluster", dataset=dataset, training=training, evaluation=off)
    c.apply(made, NS)
    clip = {
        "owner": "alice",
        "provider": "cluster",
        "model": "ltx-2",
        "prompt": "dmavatar smiles at the camera",
        "numFrames": 9,
        "aspectRatio": "1:1",
        "seed": 7,
        "loras": [{"loraRef": {"name": "dm-ltx"}}],
    }
    c.apply(manifest("VideoGeneration", "dm-ltx-smiles", clip), NS)  # waits for the LoRA
    trained = c.wait_phase("LoraTraining", NS, "dm-ltx", "Succeeded", timeout=1200)
    [version] = trained["versions"]
    assert version["provider"] == "cluster" and "not measured on a GPU" in version.get("memoryPlan", "")
    prefix = keys.lora_version("alice", uid_of(c, "LoraTraining", NS, "dm-ltx"), 1)
    stored = {i.key.removeprefix(prefix) for i in c.store.list(prefix)}
    assert {"model.safetensors", "config.json", "checkpoints/step-000050.safetensors"} <= stored
    config = json.loads(c.store.get_bytes(prefix + "config.json"))
    assert (config["training_base_model"], config["base_model"], config["family"]) == ("ltx-2", LTX2, "LTX-2")
    assert config["examples"] >= 1
    model = tmp_path / "ltx.safetensors"
    model.write_bytes(c.store.get_bytes(prefix + "model.safetensors"))
    with safe_open(model, "pt") as f:
        names = list(f.keys())
    assert names and all(n.startswith("transformer.transformer_blocks.") and "audio" not in n for n in names)
    # and again in ComfyUI's layout: the same tensors under the names its LTXAV model maps
    comfy, _ = read_header(c.store.get_bytes(prefix + "comfyui/model.safetensors"))
    assert sorted(k for k in comfy if k != "__metadata__") == sorted(
        "diffusion_model." + n.removeprefix("transformer.") for n in names
    )

    # a VideoGeneration of model ltx-2 draws with it, from the same staged directory, with its sound
    drawn = c.wait_phase("VideoGeneration", NS, "dm-ltx-smiles", "Succeeded", timeout=900)
    video = drawn["video"]
    assert (video["frames"], video["width"], video["height"]) == (9, 480, 480)
    assert (video["codec"], video["audioCodec"]) == ("h264", "aac")
    [used] = drawn["loras"]
    assert (used["name"], used["version"]) == ("dm-ltx", 1)
    assert used["uri"].split("?", 1)[0].endswith(f"{prefix}model.safetensors")
    assert " gpu-hours of video-generation x $" in drawn["cost"]["detail"], drawn["cost"]
