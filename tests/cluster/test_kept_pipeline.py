"""provider: cluster keeps its FLUX pipeline loaded for the process (issue 39): picture requests
with different LoRAs and with none, one after another, load it once and make the pictures that
fresh loads make (one request's LoRA never reaches the next); another device or model is another
pipeline, and training releases the kept one. GPU-seconds are seconds held × the pod's GPUs on
every device, as transcription counts them. On the tiny FLUX."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from contentgen.errors import DeviceUnavailable
from contentgen.providers.base import ImageRequest, LoraWeights, MemoryCheckpoint
from contentgen.providers.cluster import provider as provider_module
from contentgen.providers.cluster.generation import flux, pipelines
from contentgen.providers.cluster.gpus import GpuClock
from contentgen.providers.cluster.provider import ClusterProvider
from tests.harness.cluster import random_lora

from .conftest import DEVICE

pytestmark = pytest.mark.cluster_models


def picture(provider: ClusterProvider, folder: Path, *loras: tuple[Path, float]) -> str:
    folder.mkdir(parents=True)
    request = ImageRequest(
        prompt="a photo of sks",
        model="flux-lora" if loras else "flux-dev",
        image_size="square",
        seed=5,
        loras=tuple(LoraWeights(url=path.resolve().as_uri(), scale=scale) for path, scale in loras),
    )
    [out] = provider.generate_images(request, folder, lambda _: None, MemoryCheckpoint())
    return hashlib.sha256(out.path.read_bytes()).hexdigest()


def test_one_load_serves_every_request_and_no_lora_leaks(
    models_root: Path, tmp_path: Path, counted: list[Path]
) -> None:
    provider = ClusterProvider(models_root, device=DEVICE, inference_steps=2, sizes={"square": (64, 64)})
    first, second = random_lora(models_root, tmp_path, 1), random_lora(models_root, tmp_path, 2)
    cases = {
        "first": [(first, 0.5)],
        "second": [(second, 0.5)],
        "none": [],
        "both": [(first, 0.5), (second, 0.3)],
    }

    kept = {name: picture(provider, tmp_path / "kept" / name, *loras) for name, loras in cases.items()}
    kept["first again"] = picture(provider, tmp_path / "kept" / "first again", *cases["first"])
    assert len(counted) == 1  # the pipeline was loaded once for the five requests

    fresh = {}
    for name, loras in cases.items():
        pipelines.release()  # a new process's load
        fresh[name] = picture(provider, tmp_path / "fresh" / name, *loras)
    assert len(counted) == 1 + len(cases)
    assert {name: kept[name] for name in cases} == fresh
    assert kept["first again"] == kept["first"]
    assert len(set(fresh.values())) == len(cases)  # each LoRA changed the picture: they were there


def test_another_device_or_model_is_another_pipeline_and_training_releases_it(
    models_root: Path, tmp_path: Path, counted: list[Path]
) -> None:
    on = flux.device(DEVICE)
    model = models_root / "FLUX.1-dev"
    loads = pipelines.loads
    pipe = pipelines.pipeline(model, on)
    assert pipelines.pipeline(model, on) is pipe and pipelines.loads == loads + 1
    other = tmp_path / "models" / "other"
    other.parent.mkdir()
    other.symlink_to(model.resolve(), target_is_directory=True)
    assert pipelines.key(other, on) == pipelines.key(model, on)  # the same weights: the same pipeline
    as_fp16 = flux.Device(on.where, torch.float16)
    assert pipelines.key(model, as_fp16) != pipelines.key(model, on)
    assert pipelines.key(model, on, variant="nf4") != pipelines.key(model, on)
    pipelines.release()
    assert pipelines.pipeline(model, on) is not pipe and len(counted) == 2


def test_gpu_seconds_are_seconds_held_times_the_gpus_for_every_kind(
    models_root: Path, tmp_path: Path, counted: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One way for every kind: the pod holds CONTENTGEN_GPU_COUNT GPUs while it works, whatever
    device it computes on, so its seconds are × that count (they were only on CUDA for training and
    generation, always for transcription)."""
    ticks = iter(range(1000))
    monkeypatch.setattr(provider_module, "time", SimpleNamespace(monotonic=lambda: float(next(ticks))))
    provider = ClusterProvider(
        models_root, device=DEVICE, gpus=3, inference_steps=2, sizes={"square": (64, 64)}
    )
    request = ImageRequest(prompt="a photo", model="flux-dev", image_size="square", seed=1)
    [out] = provider.generate_images(request, tmp_path, lambda _: None, MemoryCheckpoint())
    assert out.gpu_seconds == 3.0  # one tick held, × 3 GPUs, on the CPU too
    assert provider._gpu_seconds(2.0, flux.device("cpu")) == 6.0
    clock = iter([10.0, 12.0])
    assert GpuClock(3, clock=lambda: next(clock)).gpu_seconds() == 6.0  # transcription's count


def test_a_gpu_this_machine_lacks_is_said_before_any_load(
    models_root: Path, tmp_path: Path, counted: list[Path]
) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the unavailable device is checked where there is none")
    provider = ClusterProvider(models_root, device="cuda", inference_steps=2, sizes={"square": (64, 64)})
    request = ImageRequest(prompt="a photo", model="flux-dev", image_size="square", seed=1)
    with pytest.raises(DeviceUnavailable) as refused:
        provider.generate_images(request, tmp_path, lambda _: None, MemoryCheckpoint())
    message = str(refused.value)
    assert (
        message.startswith("CONTENTGEN_CLUSTER_DEVICE is 'cuda', and torch sees no GPU")
        and "\n" not in message
    )
    assert counted == []
