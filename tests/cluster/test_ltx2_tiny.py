"""What holds LTX-2 back on provider cluster is not its size (issue 78): a tiny LTX-2 built from its
classes' configs draws on the CPU through diffusers' own LTX2Pipeline, video and audio together,
and the training framework's LoRA on the video stream's layers, saved as the framework saves a
checkpoint's, loads in that pipeline, changes the video and at scale 0 is the base video. The
family module (its examples' video and audio latents, its loss) and a VideoGeneration model that
runs it are the work left (docs/cluster-training.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from contentgen.providers.cluster.families import pictures
from contentgen.providers.cluster.generation import lora_files
from contentgen.providers.cluster.training import adapters
from contentgen.providers.cluster.training.plan import Plan

from .tiny_ltx2 import tiny_ltx2

# The video stream's layers: its self- and cross-attention and feed-forward, not the audio
# stream's (audio_attn1, audio_ff) nor the two streams' cross-attention.
VIDEO_ATTENTION = tuple(f".{a}.{p}" for a in ("attn1", "attn2") for p in ("to_q", "to_k", "to_v", "to_out.0"))
VIDEO_FEEDFORWARD = (".ff.net.0.proj", ".ff.net.2")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_ltx2(tmp_path_factory.mktemp("ltx2") / "LTX-2")


def draw(pipe: Any) -> tuple[torch.Tensor, torch.Tensor]:
    out = pipe(
        prompt="a photo of sks smiling",
        negative_prompt="",
        num_inference_steps=2,
        guidance_scale=1.0,
        height=32,
        width=32,
        num_frames=9,
        frame_rate=24.0,
        max_sequence_length=16,
        generator=torch.Generator().manual_seed(3),
        output_type="pt",
    )
    return out.frames, out.audio


def test_a_video_stream_lora_loads_in_ltx2s_pipeline_and_changes_the_video(model: Path, tmp_path: Path):
    from diffusers import LTX2Pipeline
    from peft.utils import get_peft_model_state_dict

    pipe = LTX2Pipeline.from_pretrained(model)
    base_video, base_audio = draw(pipe)
    assert base_video.shape == (1, 9, 3, 32, 32)  # 9 frames: 4k + 1 for the tiny VAE's 4× in time
    assert base_audio.shape[:2] == (1, 2) and base_audio.abs().sum() > 0  # a stereo waveform

    transformer = pipe.transformer
    targets = pictures.preset(
        adapters.linear_layers(transformer),
        "attention+feedforward",
        ("transformer_blocks.",),
        VIDEO_ATTENTION,
        VIDEO_FEEDFORWARD,
    )
    assert targets and not [t for t in targets if "audio" in t]
    assert len(targets) == 2 * (len(VIDEO_ATTENTION) + len(VIDEO_FEEDFORWARD))  # both blocks
    adapters.with_adapter("transformer", transformer, Plan(steps=1, rank=4), targets)
    torch.manual_seed(5)
    for name, weights in transformer.named_parameters():  # as a trained LoRA's: B no longer zero
        if "lora_B" in name:
            weights.data = torch.randn_like(weights) * 0.5
    path = lora_files.save(tmp_path / "model.safetensors", get_peft_model_state_dict(transformer), {})

    fresh = LTX2Pipeline.from_pretrained(model)
    fresh.load_lora_weights(str(path), adapter_name="person")
    with_lora, _ = draw(fresh)
    assert (with_lora - base_video).abs().max() > 1e-3  # the LoRA changes the video
    fresh.set_adapters(["person"], [0.0])
    at_zero, audio_at_zero = draw(fresh)
    assert torch.allclose(at_zero, base_video, atol=1e-6)  # scale 0 is the base video
    assert torch.allclose(audio_at_zero, base_audio, atol=1e-6)
