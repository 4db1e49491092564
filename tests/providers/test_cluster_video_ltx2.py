"""provider cluster's `ltx-2` videos (providers/cluster/generation/video.py) on the tiny LTX-2 the
trainer's tests build (tests/cluster/tiny_ltx2.py: all eight parts of LTX2Pipeline from their
configs, random weights), staged where a LoraTraining of LTX-2 finds it too, on the CPU, with no way
to a hub: a clip is drawn with its sound and the MP4 carries both; a retried pod encodes the kept
frames and sound without denoising; a picture is animated; an LTX-2 LoRA changes the clip and at
scale 0 is the base clip; and a Wan LoRA is refused before the card is touched. A pod killed
mid-denoise resumes its clip, sound and all: tests/providers/test_cluster_video_resume.py."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from contentgen.api.base_models import base_model
from contentgen.errors import InvalidInput
from contentgen.providers.base import LoraWeights, MemoryCheckpoint, VideoOutput, VideoRequest
from contentgen.providers.cluster.generation import pipelines, video, video_models, video_state
from contentgen.providers.cluster.generation.video import ClusterVideoGenerator
from tests.cluster.tiny_ltx2 import tiny_ltx2
from tests.harness.cluster import request

from .cluster_models import device, refuse_hubs, tiny_lora, tiny_wan

pytestmark = pytest.mark.cluster_models

STEPS = 2


@pytest.fixture(scope="module")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.set_num_threads(1)  # 2 shared cores
    root = tmp_path_factory.mktemp("models")
    # the directory a VideoGeneration of model ltx-2 and a LoraTraining of baseModel ltx-2 both read
    assert video_models.STAGED["ltx-2"].directory == base_model("ltx-2").cluster_dir
    tiny_ltx2(root / video_models.STAGED["ltx-2"].directory)
    tiny_wan(root / "Wan2.1-T2V-1.3B-Diffusers")
    return root


@pytest.fixture
def generator(models_root: Path, monkeypatch: pytest.MonkeyPatch) -> ClusterVideoGenerator:
    refuse_hubs(monkeypatch)
    return ClusterVideoGenerator(models_root, device=device(), inference_steps=STEPS)


def ltx2(tmp_path: Path, name: str = "made", **changes: object) -> VideoRequest:
    fields: dict[str, object] = {"model": "ltx-2", "app": "diffusers LTX2Pipeline", "fps": 24, **changes}
    return request(tmp_path, name, **fields)


def generate(generator: ClusterVideoGenerator, req: VideoRequest, work: Path) -> VideoOutput:
    work.mkdir(parents=True, exist_ok=True)
    return generator.generate_video(req, work, lambda _: None, MemoryCheckpoint())


def streams(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """The MP4's frames (RGB), its sound (channels × samples) and the sound's rate."""
    with av.open(str(path)) as container:
        picture, sound = container.streams.video[0], container.streams.audio[0]
        assert (picture.codec_context.name, sound.codec_context.name) == ("h264", "aac")
        decoded = list(container.decode(picture, sound))  # one pass: the demuxer reads each packet once
    frames = np.stack([f.to_ndarray(format="rgb24") for f in decoded if isinstance(f, av.VideoFrame)])
    wave = np.concatenate([f.to_ndarray() for f in decoded if isinstance(f, av.AudioFrame)], axis=1)
    return frames, wave, sound.rate


def kept(folder: Path) -> tuple[np.ndarray, np.ndarray, int]:
    with np.load(folder / video_state.FRAMES) as stored:
        return np.asarray(stored["frames"]), np.asarray(stored["sound"]), int(stored["rate"])


def test_a_clip_is_drawn_with_its_sound_and_a_retry_encodes_both_without_denoising(
    generator, tmp_path, models_root, monkeypatch
):
    out = generate(generator, ltx2(tmp_path), tmp_path / "w1")
    frames, wave, rate = streams(out.path)
    made, sound, made_rate = kept(tmp_path / "made")
    assert frames.shape == made.shape == (9, 64, 64, 3)
    # the vocoder's stereo waveform at its own rate, in the kept frames and in the MP4
    vocoder = models_root / "LTX-2" / "vocoder" / "config.json"
    assert made_rate == rate == json.loads(vocoder.read_text())["output_sampling_rate"]
    assert sound.shape[0] == wave.shape[0] == 2 and sound.shape[1] > 0 and np.abs(sound).max() > 0
    assert wave.shape[1] >= sound.shape[1]  # AAC pads to its frames
    # the loop's states go once the frames are kept
    assert not [n for n in (tmp_path / "made").iterdir() if n.name.startswith("latents-")]
    # a retried pod takes the kept frames and sound: the same MP4, nothing loaded or denoised
    loads = pipelines.loads
    monkeypatch.setattr(video, "denoise", lambda *a, **k: pytest.fail("denoised again"))
    again = generate(generator, ltx2(tmp_path), tmp_path / "w2")
    assert pipelines.loads == loads
    assert again.path.read_bytes() == out.path.read_bytes()


def test_ltx2_animates_a_picture(generator, tmp_path):
    from PIL import Image

    drawn = []
    for colour in ((220, 30, 30), (30, 30, 220)):
        picture = tmp_path / f"{colour[0]}.png"
        Image.new("RGB", (64, 64), colour).save(picture)
        req = ltx2(tmp_path, f"image-{colour[0]}", image_path=picture, aspect_ratio="auto")
        frames, _, _ = streams(generate(generator, req, tmp_path / f"w{colour[0]}").path)
        drawn.append(kept(tmp_path / f"image-{colour[0]}")[0])
        assert frames.shape == (9, 64, 64, 3)
    assert not np.array_equal(drawn[0], drawn[1])  # each clip is its picture's


def test_an_ltx2_lora_changes_the_clip_and_at_scale_0_is_the_base_clip(generator, tmp_path, models_root):
    lora = tiny_lora(models_root / "LTX-2", tmp_path / "lora.safetensors")
    clips = {}
    for name, loras in (
        ("base", ()),
        ("lora", (LoraWeights(lora.as_uri(), 1.0),)),
        ("zero", (LoraWeights(lora.as_uri(), 0.0),)),
        ("after", ()),
    ):
        generate(generator, ltx2(tmp_path, name, loras=loras), tmp_path / f"w-{name}")
        clips[name] = kept(tmp_path / name)
    assert not np.array_equal(clips["base"][0], clips["lora"][0])
    for name in ("zero", "after"):  # scale 0 draws the base, and the LoRA leaves with its request
        assert np.array_equal(clips["base"][0], clips[name][0]) and np.array_equal(
            clips["base"][1], clips[name][1]
        )


def test_a_wan_lora_on_ltx2_is_refused_before_the_card_is_touched(
    generator, tmp_path, models_root, monkeypatch
):
    lora = tiny_lora(models_root / "Wan2.1-T2V-1.3B-Diffusers", tmp_path / "wan.safetensors")
    loads = pipelines.loads
    monkeypatch.setattr(video.devices, "check_torch", lambda *a: pytest.fail("the device was touched"))
    with pytest.raises(InvalidInput) as error:
        generate(generator, ltx2(tmp_path, loras=(LoraWeights(lora.as_uri(), 1.0),)), tmp_path / "w")
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"loras[0]: {lora.as_uri()} names layer blocks.")
    assert "not a LTX-2 LoRA" in message and pipelines.loads == loads


def test_an_ltx2_lora_in_comfyuis_layout_draws_the_clip_its_diffusers_file_draws(
    generator, tmp_path, models_root
):
    """The ComfyUI-layout copy a version stores (pipeline/lora_formats.py: `diffusion_model.`
    names, which diffusers' LTX-2 loader converts back), given by URL as another trainer's file
    would be, draws the very clip the trainer's diffusers-named file draws."""
    from contentgen.pipeline.lora_formats import comfyui_file

    lora = tiny_lora(models_root / "LTX-2", tmp_path / "lora.safetensors")
    comfy = comfyui_file(lora, tmp_path / "comfy.safetensors")
    for name, path in (("diffusers", lora), ("comfyui", comfy)):
        req = ltx2(tmp_path, name, loras=(LoraWeights(path.as_uri(), 1.0),))
        generate(generator, req, tmp_path / f"w-{name}")
    base = generate(generator, ltx2(tmp_path, "base"), tmp_path / "w-base")
    assert base.path.exists() and not np.array_equal(
        kept(tmp_path / "base")[0], kept(tmp_path / "comfyui")[0]
    )
    for index in (0, 1):
        assert np.array_equal(kept(tmp_path / "diffusers")[index], kept(tmp_path / "comfyui")[index])
