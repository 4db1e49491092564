"""LTX-2 as a family of the shared trainer (families/ltx2_training.py), on a tiny LTX-2 built from its
classes' configs with random weights, on the CPU: a LoraTraining of clips and stills trains through
provider cluster, its LoRA is on the video stream alone, loads in diffusers' own LTX2Pipeline,
changes the video and at scale 0 is the base video and sound; a training resumed from a stored
checkpoint ends bit for bit where an uninterrupted one does; the watch's clips are drawn between
steps by the training's transformer, and its stop ends the training at that checkpoint. The audio
stream takes no part in a step: the video's prediction is the same whatever the audio is given.
Cost: the tiny model built once (seconds, after imports), three trainings of 2 steps at 32 px and a
few 2-step clips (hence `slow`)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from contentgen.api.base_models import base_model
from contentgen.api.lora.plan import plan_for
from contentgen.providers.base import (
    ImageRequest,
    LoraWeights,
    MemoryCheckpoint,
    TrainingOutput,
    TrainingRequest,
)
from contentgen.providers.cluster.families import ltx2_training, video_live
from contentgen.providers.cluster.files import FolderFiles
from contentgen.providers.cluster.generation import lora_files
from contentgen.providers.cluster.provider import ClusterProvider
from contentgen.providers.watch import Drawer, Planned, SoFar, Stop

from .tiny_ltx2 import tiny_ltx2
from .tiny_wan import dataset

pytestmark = [pytest.mark.cluster_models, pytest.mark.slow]

PROMPT = "a video of dmavatar smiling"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ltx2-models")
    tiny_ltx2(root / base_model("ltx-2").cluster_dir)
    return root


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dataset(tmp_path_factory.mktemp("ltx2-data") / "dataset.zip", clips=1, stills=1, frames=9, size=32)


def train(
    models: Path, archive: Path, work: Path, stored: Path, **asked: Any
) -> tuple[dict[str, torch.Tensor], TrainingOutput]:
    work.mkdir(parents=True, exist_ok=True)
    plan = plan_for(base="ltx-2", steps=2, checkpoint_every=1, rank=4, learning_rate=5e-2, resolution=32)
    request = TrainingRequest(archive, "dmavatar", plan=plan, checkpoints=FolderFiles(stored), **asked)
    provider = ClusterProvider(models, device="cpu", inference_steps=2)
    out = provider.train_lora(request, work / "out", lambda _: None, MemoryCheckpoint())
    return lora_files.load(out.weights), out


def draw(pipe: Any, scale: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    if scale is not None:
        pipe.set_adapters(["person"], [scale])
    out = pipe(
        prompt=PROMPT,
        negative_prompt="",
        num_inference_steps=2,
        height=32,
        width=32,
        num_frames=9,
        max_sequence_length=16,
        generator=torch.Generator().manual_seed(3),
        output_type="pt",
    )
    return out.frames, out.audio


def test_an_ltx2_lora_trains_on_the_video_stream_loads_in_diffusers_and_resumes(models, archive, tmp_path):
    from diffusers import LTX2Pipeline

    tensors, out = train(models, archive, tmp_path / "a", tmp_path / "stored")
    assert [c.step for c in out.checkpoints] == [1, 2]
    assert out.config is not None
    said = json.loads(out.config.read_text())
    assert (said["training_base_model"], said["family"], said["examples"]) == ("ltx-2", "LTX-2", 2)
    assert "not measured on a GPU" in out.details["memoryPlan"]
    assert tensors and all(k.startswith("transformer.transformer_blocks.") and ".lora_" in k for k in tensors)
    assert not [k for k in tensors if "audio" in k]  # the video stream's layers only
    assert all(any(p in k for k in tensors) for p in (".attn1.to_q.", ".attn2.to_k.", ".ff.net.0.proj."))
    assert any(v.abs().max() > 0 for k, v in tensors.items() if "lora_B" in k)  # it learnt

    staged = models / base_model("ltx-2").cluster_dir
    pipe = LTX2Pipeline.from_pretrained(str(staged))
    base_video, base_audio = draw(pipe, None)
    pipe.load_lora_weights(str(out.weights), adapter_name="person")
    assert (draw(pipe, 1.0)[0] - base_video).abs().max() > 1e-4  # the LoRA changes the video
    video, audio = draw(pipe, 0.0)
    assert torch.equal(video, base_video) and torch.equal(audio, base_audio)  # scale 0: the base

    # a retry whose first run stopped after step 1's checkpoint: step 2 from it, the same LoRA
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    for name in ("step-000001.pt", "step-000001.safetensors"):
        shutil.copy(tmp_path / "stored" / name, resumed / name)
    again, second = train(models, archive, tmp_path / "b", resumed)
    assert second.details["stepsRun"] == 1
    assert sorted(again) == sorted(tensors) and all(torch.equal(again[k], tensors[k]) for k in tensors)


def test_the_audio_stream_takes_no_part_in_a_step(models):
    """What a step predicts for the video is the same whatever the silent audio token holds: the
    streams are cut apart, so the LoRA learns the video stream as it is without audio."""
    from diffusers import LTX2VideoTransformer3DModel

    transformer = LTX2VideoTransformer3DModel.from_pretrained(
        str(models / base_model("ltx-2").cluster_dir / "transformer")
    )
    torch.manual_seed(0)
    width = transformer.config.caption_channels
    text = ltx2_training.Encoded(torch.randn(1, 8, width), torch.randn(1, 8, width), torch.ones(1, 8))
    latents = torch.randn(1, 2 * 4 * 4, transformer.config.in_channels)

    def predicted(audio: torch.Tensor) -> torch.Tensor:
        at = torch.tensor([500.0])
        return ltx2_training.video_prediction(transformer, latents, text, (2, 4, 4), at, 24.0, audio)

    channels = transformer.config.audio_in_channels
    assert torch.equal(predicted(torch.zeros(1, 1, channels)), predicted(torch.randn(1, 1, channels) * 3))


def test_the_noise_levels_shift_as_ltx2s_scheduler_shifts_its_sampling():
    fixed = {"use_dynamic_shifting": False, "shift": 3.0}
    assert ltx2_training.shift(5000, fixed) == 3.0
    dynamic = {"use_dynamic_shifting": True}
    assert ltx2_training.shift(1024, dynamic) == pytest.approx(np.exp(0.95))
    assert ltx2_training.shift(4096, dynamic) == pytest.approx(np.exp(2.05))
    assert ltx2_training.shift(1024, dynamic) < ltx2_training.shift(2048, dynamic)


@dataclass
class Watch:
    """At each checkpoint, the watch's clip with the checkpoint's LoRA and without it; a stop at
    `stop_at`."""

    work: Path
    stop_at: int
    planned: Planned | None = None
    drawn: dict[int, tuple[Any, Any]] = field(default_factory=dict)

    def prompts(self) -> Sequence[str]:
        return [PROMPT]

    def begin(self, planned: Planned) -> None:
        self.planned = planned

    def checkpoint(self, step: int, lora_uri: str, drawer: Drawer | None) -> Stop | None:
        assert drawer is not None
        made = []
        for name, loras in (("with", (LoraWeights(lora_uri),)), ("without", ())):
            asked = ImageRequest(PROMPT, "flux-lora", image_size="square", seed=5, loras=loras)
            (self.work / f"s{step}-{name}").mkdir(parents=True)
            [out] = drawer.generate_images(asked, self.work / f"s{step}-{name}", lambda _: None, None)
            made.append(np.asarray(Image.open(out.path)))
        self.drawn[step] = (made[0], made[1])
        return Stop("plateau", "the test's stop") if step == self.stop_at else None

    def step_ended(self, so_far: SoFar) -> Stop | None:
        return None


def test_the_watchs_clips_are_drawn_in_the_loop_and_its_stop_ends_the_training(
    models, archive, tmp_path, monkeypatch
):
    monkeypatch.setattr(video_live, "AREA", 32 * 32)
    watch = Watch(tmp_path / "watch", stop_at=1)
    _, out = train(models, archive, tmp_path / "w", tmp_path / "stored", watch=watch)
    assert watch.planned == Planned(0, 2, (1, 2))
    assert list(watch.drawn) == [1] and out.details["stepsRun"] == 1 and out.stopped is not None
    with_lora, without = watch.drawn[1]
    assert with_lora.shape == without.shape and np.abs(with_lora.astype(int) - without).max() > 0
