"""A Wan 2.2 LoRA pair on fal's text-to-video app (providers/fal/video.py `lora_entries`): the
high-noise expert's file into the high-noise transformer, the low-noise one's into the low-noise
one (fal's LoRAWeight.transformer), through the fake that refuses any other value; one LoRA as
fal's page shows it, {path, scale}."""

from __future__ import annotations

from pathlib import Path

import pytest

from contentgen.providers.base import LoraWeights, MemoryCheckpoint, VideoRequest
from contentgen.providers.fal import FalProvider
from contentgen.providers.fal.video import FalVideoGenerator, lora_entries

from . import fake_fal_video as apps
from .fake_fal import FAL_KEY, FakeFal
from .fakes import FakeSleep, Progress, mocked, retry

HIGH = "https://bucket.s3.amazonaws.com/loras/u/1/v1/model.safetensors?X-Amz-Signature=a"
LOW = "https://bucket.s3.amazonaws.com/loras/u/1/v1/model-low-noise.safetensors?X-Amz-Signature=b"


def request(*loras: LoraWeights) -> VideoRequest:
    return VideoRequest(
        prompt="dmavatar walks on the beach at dusk",
        model="wan-2.2-t2v",
        app=apps.WAN_T2V,
        frames=17,
        fps=16,
        width=832,
        height=480,
        resolution="480p",
        aspect_ratio="16:9",
        loras=loras,
    )


def test_a_pair_goes_into_both_experts_and_one_lora_as_fals_page_shows_it(tmp_path: Path) -> None:
    fal = FakeFal()
    generator = FalVideoGenerator(FalProvider(FAL_KEY, retry=retry(FakeSleep()), poll_interval=2.0))
    pair = LoraWeights(HIGH, 0.9, low_noise_url=LOW)
    with mocked(fal):
        generator.generate_video(request(pair), tmp_path, Progress(), MemoryCheckpoint())
    [(app, sent)] = fal.submitted
    assert app == apps.WAN_T2V and fal.billed == 1
    assert sent["loras"] == [
        {"path": HIGH, "scale": 0.9, "transformer": "high"},
        {"path": LOW, "scale": 0.9, "transformer": "low"},
    ]
    assert lora_entries(LoraWeights(HIGH)) == [{"path": HIGH, "scale": 1.0}]


@pytest.mark.parametrize("value", ["both", "low", "high"])
def test_the_fake_takes_every_documented_expert_and_refuses_others(value: str) -> None:
    def error(loc: list[object], msg: str, kind: str) -> dict[str, object]:
        return {"loc": loc, "msg": msg, "type": kind}

    args = {"prompt": "p", "loras": [{"path": HIGH, "scale": 1.0, "transformer": value}]}
    assert apps.validate(apps.WAN_T2V, args, lambda url: True, error) == []
    args["loras"][0]["transformer"] = "middle"  # type: ignore[index]
    assert [e["loc"] for e in apps.validate(apps.WAN_T2V, args, lambda url: True, error)] == [
        ["loras", 0, "transformer"]
    ]
