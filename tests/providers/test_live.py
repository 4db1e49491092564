"""Opt-in checks against the real APIs: one tiny call each. They cost (a little) money.

    REAL_API_TESTS=1 FAL_KEY=... ASSEMBLYAI_API_KEY=... pytest -m real_api tests/providers/test_live.py

Each test also needs its provider's key; LoRA training (about $0.20 for 100 steps) runs only
with REAL_API_TESTS_TRAINING=1 as well, a video (LTX, 25 frames at 480p: about $0.02) with
REAL_API_TESTS_VIDEO=1.
"""

from __future__ import annotations

import os

import cv2
import pytest
from safetensors import safe_open

from contentgen.api.lora.plan import plan_for
from contentgen.providers.assemblyai import AssemblyAIProvider
from contentgen.providers.base import (
    ImageRequest,
    MemoryCheckpoint,
    TrainingRequest,
    TranscriptionRequest,
    VideoRequest,
)
from contentgen.providers.fal import FalProvider
from contentgen.providers.fal.video import FalVideoGenerator

from .fakes import Progress, audio_file, dataset_zip

pytestmark = [
    pytest.mark.real_api,
    pytest.mark.skipif(
        os.environ.get("REAL_API_TESTS") != "1", reason="talks to the real APIs; set REAL_API_TESTS=1"
    ),
    pytest.mark.timeout(1800),
]


def key(variable: str) -> str:
    value = os.environ.get(variable, "")
    if not value:
        pytest.skip(f"{variable} is not set")
    return value


def test_fal_generates_one_small_image(tmp_path):
    fal = FalProvider(key("FAL_KEY"), poll_interval=1.0, max_wait=600)
    request = ImageRequest(
        prompt="a red apple on a white table", model="flux-schnell", image_size="square", seed=1
    )
    checkpoint = MemoryCheckpoint()
    [image] = fal.generate_images(request, tmp_path, Progress(), checkpoint)
    assert (image.width, image.height) == (512, 512)
    assert cv2.imread(str(image.path)).shape == (512, 512, 3)
    assert checkpoint.load()["request_id"]


@pytest.mark.skipif(
    os.environ.get("REAL_API_TESTS_TRAINING") != "1", reason="costs more; set REAL_API_TESTS_TRAINING=1"
)
def test_fal_trains_a_short_lora(tmp_path):
    fal = FalProvider(key("FAL_KEY"), poll_interval=10.0, max_wait=1500)
    request = TrainingRequest(
        dataset_zip=dataset_zip(tmp_path / "dataset.zip", images=4),
        trigger_word="cgtestsubject",
        plan=plan_for(app="fal-ai/flux-lora-fast-training", steps=100, provider="fal"),
    )
    work = tmp_path / "work"
    work.mkdir()
    out = fal.train_lora(request, work, Progress(), MemoryCheckpoint())
    with safe_open(out.weights, "np") as weights:
        assert list(weights.keys())


@pytest.mark.skipif(os.environ.get("REAL_API_TESTS_VIDEO") != "1", reason="set REAL_API_TESTS_VIDEO=1")
def test_fal_makes_one_short_video(tmp_path):
    import av

    generator = FalVideoGenerator(FalProvider(key("FAL_KEY"), poll_interval=5.0, max_wait=1500))
    request = VideoRequest(
        prompt="a paper boat drifting on a pond",
        model="ltx-video-13b",
        app="fal-ai/ltxv-13b-098-distilled",
        frames=25,
        fps=24,
        width=832,
        height=480,
        resolution="480p",
        aspect_ratio="16:9",
        seed=1,
    )
    checkpoint = MemoryCheckpoint()
    out = generator.generate_video(request, tmp_path, Progress(), checkpoint)
    with av.open(str(out.path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 25
    assert checkpoint.load()["request_id"] == out.request_id


def test_assemblyai_transcribes_one_second(tmp_path):
    assemblyai = AssemblyAIProvider(key("ASSEMBLYAI_API_KEY"), poll_interval=2.0, max_wait=600)
    audio = audio_file(tmp_path / "silence.wav", seconds=1.0)
    request = TranscriptionRequest(audio_path=audio, language_code="en", duration_seconds=1.0)
    out = assemblyai.transcribe(request, tmp_path, Progress(), MemoryCheckpoint())
    assert out.response["status"] == "completed" and out.response["id"] == out.request_id
    assert out.duration_seconds <= 2
