"""CONTENTGEN_CLUSTER_DEVICE naming a GPU this machine lacks (issue 39): a LoraTraining on the tiny
FLUX and a VideoGeneration on the tiny Wan are refused as `DeviceUnavailable`, in one line naming
the setting, before any model is loaded (no pipeline, transformer or training copy, and the
training's dataset not even opened). Transcription's and an ImageGeneration's are in
tests/providers/test_cluster_whisper_sizes.py and test_kept_pipeline.py; `contentgen run`'s end
of each in tests/run/test_cluster_devices.py."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch

from contentgen.api.lora.plan import plan_for
from contentgen.errors import DeviceUnavailable
from contentgen.providers import trainer
from contentgen.providers.base import MemoryCheckpoint, TrainingRequest, VideoRequest
from contentgen.providers.cluster.families import flux_training
from contentgen.providers.cluster.families.flux_training import FluxFamily
from contentgen.providers.cluster.files import FolderFiles
from contentgen.providers.cluster.generation import flux, pipelines, video, video_state
from contentgen.providers.cluster.generation.video import ClusterVideoGenerator
from contentgen.providers.cluster.training import loop
from tests.providers.cluster_models import tiny_wan

pytestmark = pytest.mark.cluster_models

SAID = "CONTENTGEN_CLUSTER_DEVICE is 'cuda', and torch sees no GPU on this machine: unset "


@pytest.fixture(autouse=True)
def _without_a_gpu() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the unavailable device is checked where there is none")


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every model load from here on, by what was loaded (none is expected)."""
    pipelines.release()
    loaded: list[str] = []

    def spy(name: str, module: Any) -> None:
        real = getattr(module, name)

        def recorded(*args: Any, **kwargs: Any) -> Any:
            loaded.append(name)
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, recorded)

    for name in ("load_pipeline", "load_for_training", "load_transformer"):
        spy(name, flux)
    spy("load_pipeline", video)
    spy("train", loop)
    spy("read_dataset", flux_training)
    return loaded


def one_line(refused: pytest.ExceptionInfo[DeviceUnavailable]) -> str:
    message = str(refused.value)
    assert "\n" not in message and refused.value.reason == "DeviceUnavailable"
    return message


def test_a_lora_training_is_refused_before_any_load(
    models_root: Path, tmp_path: Path, loads: list[str]
) -> None:
    env = {"CONTENTGEN_CLUSTER_MODELS_DIR": str(models_root), "CONTENTGEN_CLUSTER_DEVICE": "cuda"}
    request = TrainingRequest(
        dataset_zip=tmp_path / "dataset.zip",
        trigger_word="sks",
        checkpoints=FolderFiles(tmp_path / "checkpoints"),
        plan=plan_for(app="fal-ai/flux-lora-fast-training", steps=2, rank=4, resolution=64),
    )
    before = pipelines.loads
    with pytest.raises(DeviceUnavailable) as refused:
        trainer("cluster", env=env).train_lora(request, tmp_path, lambda _: None, MemoryCheckpoint())
    assert one_line(refused).startswith(SAID)
    assert loads == [] and pipelines.loads == before  # nothing loaded, nothing read or trained
    assert FolderFiles(tmp_path / "checkpoints").names() == [] and not (tmp_path / "pictures").exists()


def test_a_lora_trainings_device_is_the_setting_and_the_cpu_trains(
    models_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other side: the same provider with the setting at cpu passes the check and reaches the
    training (stopped there: the training itself is test_training.py's)."""

    class Reached(Exception):
        pass

    def reached(job: Any, *args: Any) -> None:
        raise Reached(job.on)

    monkeypatch.setattr(FluxFamily, "examples", lambda *a, **k: [])
    monkeypatch.setattr(loop, "train", reached)
    env = {"CONTENTGEN_CLUSTER_MODELS_DIR": str(models_root), "CONTENTGEN_CLUSTER_DEVICE": "cpu"}
    request = TrainingRequest(
        dataset_zip=tmp_path / "dataset.zip", trigger_word="sks", plan=plan_for(app="FLUX.1-dev", steps=1)
    )
    with pytest.raises(Reached) as went_on:
        trainer("cluster", env=env).train_lora(request, tmp_path, lambda _: None, MemoryCheckpoint())
    on = went_on.value.args[0]
    assert isinstance(on, flux.Device) and str(on.where) == "cpu"


@pytest.fixture(scope="module")
def wan_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("video-models")
    tiny_wan(root / "Wan2.1-T2V-1.3B-Diffusers")
    return root


def video_request(tmp_path: Path) -> VideoRequest:
    return VideoRequest(
        prompt="a red fox runs through snow",
        model="wan-1.3b-t2v",
        app="diffusers WanPipeline",
        frames=5,
        fps=8,
        width=64,
        height=64,
        resolution="480p",
        aspect_ratio="1:1",
        seed=7,
        frames_made=FolderFiles(tmp_path / "made"),
    )


def test_a_video_generation_is_refused_before_any_load(
    wan_root: Path, tmp_path: Path, loads: list[str], threads: None
) -> None:
    generator = ClusterVideoGenerator(wan_root, device="cuda", inference_steps=2)
    before = pipelines.loads
    seen: list[float] = []
    with pytest.raises(DeviceUnavailable) as refused:
        generator.generate_video(video_request(tmp_path), tmp_path, seen.append, MemoryCheckpoint())
    assert one_line(refused).startswith(SAID)
    assert loads == [] and pipelines.loads == before
    assert not (tmp_path / "made" / video_state.FRAMES).exists()  # no frames kept, no GPU time recorded
    assert not (tmp_path / "made" / video_state.RECORD).exists()
    # the same generator on the CPU makes the clip: the refusal was the device's alone
    on_cpu = ClusterVideoGenerator(wan_root, device="cpu", inference_steps=2)
    made = on_cpu.generate_video(video_request(tmp_path), tmp_path, seen.append, MemoryCheckpoint())
    assert made.path.is_file() and pipelines.loads == before + 1 and loads == ["load_pipeline"]


def test_torch_is_prepared_with_expandable_segments_unless_the_pod_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from contentgen.providers.cluster import devices

    monkeypatch.delenv("PYTORCH_CUDA_ALLOC_CONF", raising=False)
    devices.prepare_torch("cpu")
    assert os.environ["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"
    monkeypatch.setenv("PYTORCH_CUDA_ALLOC_CONF", "max_split_size_mb:512")
    devices.prepare_torch("cpu")
    assert os.environ["PYTORCH_CUDA_ALLOC_CONF"] == "max_split_size_mb:512"
