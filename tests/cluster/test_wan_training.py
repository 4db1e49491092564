"""provider cluster's Wan LoRA trainer (providers/cluster/families/wan_training.py) on the tiny Wan 2.1 and
Wan 2.2 A14B (tiny_wan.py), on the CPU: a LoRA it trains loads in diffusers' own WanPipeline and
draws the frames contentgen's video generator draws with it; a Wan 2.2 pair is two files, each
trained only by the steps whose timesteps its expert owns and loaded into that expert (swapped,
the frames differ); a training killed by SIGKILL resumes bit for bit; stills alone, and an
image-to-video model's clips."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from contentgen.api.lora.plan import plan_for
from contentgen.errors import InvalidInput
from contentgen.providers.base import LoraWeights, MemoryCheckpoint, TrainingRequest
from contentgen.providers.cluster.families import video_data, wan_models, wan_training
from contentgen.providers.cluster.files import FolderFiles
from contentgen.providers.cluster.generation import flux, video_state
from contentgen.providers.cluster.generation.video import ClusterVideoGenerator
from contentgen.providers.cluster.provider import ClusterProvider
from contentgen.providers.cluster.training import loop
from tests.harness.cluster import request as video_request

from .conftest import DEVICE
from .jobs import job
from .tiny_wan import PLAN, WAN21, WAN21_I2V, WAN22, WAN22_SHIFT, base_of, dataset

pytestmark = pytest.mark.cluster_models
ROOT = Path(__file__).resolve().parents[2]
STEPS = 3  # denoising steps of the clips compared
PROMPT = "a red fox runs through snow"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dataset(tmp_path_factory.mktemp("wan-dataset") / "dataset.zip", clips=2, stills=1)


def examples(archive: Path, work: Path) -> list[video_data.Example]:
    folder = work / "examples"
    folder.mkdir(parents=True, exist_ok=True)
    return video_data.read_dataset(archive, folder, "dmavatar")


def trained_by_the_provider(root: Path, archive: Path, work: Path, base_model: str) -> Any:
    work.mkdir(parents=True, exist_ok=True)
    provider = ClusterProvider(root, device=DEVICE, inference_steps=STEPS)
    return provider.train_lora(
        TrainingRequest(
            dataset_zip=archive,
            trigger_word="dmavatar",
            checkpoints=FolderFiles(work / "checkpoints"),
            plan=plan_for(
                base=base_model,
                app="fal-ai/wan-22-trainer/t2v-a14b" if base_model.startswith("wan-2.2") else base_model,
                steps=PLAN.steps,
                learning_rate=PLAN.learning_rate,
                rank=PLAN.rank,
                resolution=PLAN.resolution,
                checkpoint_every=PLAN.checkpoint_every,
            ),
        ),
        work,
        lambda _: None,
        MemoryCheckpoint(),
    )


def generator_frames(root: Path, work: Path, model: str, loras: tuple[LoraWeights, ...] = ()) -> np.ndarray:
    """The frames provider cluster's video generator keeps for a clip (before its encode)."""
    generator = ClusterVideoGenerator(root, device=DEVICE, inference_steps=STEPS)
    request = video_request(work, "made", model=model, prompt=PROMPT, loras=loras)
    (work / "run").mkdir(parents=True, exist_ok=True)
    generator.generate_video(request, work / "run", lambda _: None, MemoryCheckpoint())
    with np.load(work / "made" / video_state.FRAMES) as stored:
        return np.asarray(stored["frames"])


def diffusers_frames(model: Path, loras: list[tuple[Path, bool]], **extra: Any) -> np.ndarray:
    """The same clip by diffusers' own WanPipeline, its LoRAs loaded by diffusers (True: into
    transformer_2), as uint8 frames as the generator rounds them."""
    from diffusers import WanPipeline

    pipe = WanPipeline.from_pretrained(str(model), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    for number, (path, second) in enumerate(loras):
        pipe.load_lora_weights(str(path), adapter_name=f"a{number}", load_into_transformer_2=second)
    frames = pipe(
        prompt=PROMPT,
        height=64,
        width=64,
        num_frames=9,
        num_inference_steps=STEPS,
        generator=torch.Generator("cpu").manual_seed(7),
        output_type="np",
        **extra,
    ).frames[0]
    return np.clip(np.rint(np.asarray(frames, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)


def apart(one: np.ndarray, other: np.ndarray) -> int:
    return int(np.abs(one.astype(int) - other.astype(int)).max())


def test_noise_levels_are_wans_and_a_timestep_has_one_owner():
    experts = wan_models.Experts(0.875)
    assert (experts.owner(875.0), experts.owner(874.99), experts.owner(999.0)) == ("high", "low", "high")
    assert wan_models.Experts(0.9).owner(899.9) == "low"
    generator = torch.Generator("cpu").manual_seed(0)
    drawn = [float(wan_training.draw_noise_level("shift", generator, WAN22_SHIFT)[1]) for _ in range(4000)]
    # σ' = sσ / (1 + (s − 1)σ) over uniform σ: the high-noise expert's share of the steps
    assert wan_training.share_above(0.875, 12.0) == pytest.approx(0.632, abs=0.001)
    assert sum(t >= 875 for t in drawn) / len(drawn) == pytest.approx(0.632, abs=0.025)
    assert wan_training.share_above(0.9, 5.0) == pytest.approx(0.357, abs=0.001)
    assert all(0 < t <= 1000 for t in drawn)
    uniform = [float(wan_training.draw_noise_level("uniform", generator, 12.0)[1]) for _ in range(4000)]
    assert sum(t >= 500 for t in uniform) / len(uniform) == pytest.approx(0.5, abs=0.025)
    with pytest.raises(InvalidInput, match="timestepSampling"):
        wan_training.draw_noise_level("cosine", generator, 3.0)


def test_a_trained_lora_loads_in_diffusers_and_draws_the_generators_frames(wan_root, archive, tmp_path):
    out = trained_by_the_provider(wan_root, archive, tmp_path / "train", "wan-2.1-t2v-1.3b")
    tensors = load_file(str(out.weights))
    assert tensors and all(k.startswith("transformer.blocks.") for k in tensors)
    assert any(".ffn.net.0.proj.lora_A." in k for k in tensors)  # attention+feedforward by default
    assert any(float(v.abs().max()) > 0 for k, v in tensors.items() if ".lora_B." in k)  # it learnt
    assert out.low_noise_weights is None and [c.step for c in out.checkpoints] == [3, 6]
    config = json.loads(out.config.read_text())
    assert config["training_base_model"] == "wan-2.1-t2v-1.3b" and config["examples"] == 3
    assert [s for s, _ in json.loads(out.loss.read_text())["steps"]] == [1, 2, 3, 4, 5, 6]
    assert out.gpu_seconds > 0 and out.request_id.startswith("cluster-")

    ours = generator_frames(wan_root, tmp_path / "ours", "wan-1.3b-t2v", (LoraWeights(out.weights.as_uri()),))
    theirs = diffusers_frames(wan_root / WAN21, [(out.weights, False)])
    assert np.array_equal(ours, theirs)
    without = generator_frames(wan_root, tmp_path / "without", "wan-1.3b-t2v")
    assert apart(ours, without) > 8  # the LoRA is in the frames

    from contentgen.pipeline.lora_formats import comfyui_file

    comfy = load_file(str(comfyui_file(out.weights, tmp_path / "comfyui.safetensors")))
    assert len(comfy) == len(tensors) and all(k.startswith("diffusion_model.blocks.") for k in comfy)


def test_a_wan22_pair_is_two_files_each_loaded_into_its_expert(wan_root, archive, tmp_path):
    out = trained_by_the_provider(wan_root, archive, tmp_path / "train", "wan-2.2-t2v-a14b")
    assert (
        out.low_noise_weights is not None
        and json.loads(out.config.read_text())["experts"]["boundary"] == 0.875
    )
    high, low = load_file(str(out.weights)), load_file(str(out.low_noise_weights))
    assert set(high) == set(low) and any(not torch.equal(high[k], low[k]) for k in high)
    from safetensors import safe_open

    with safe_open(str(out.low_noise_weights), "pt") as opened:
        assert opened.metadata()["contentgen.loads_into"] == "transformer_2"

    pair = LoraWeights(out.weights.as_uri(), low_noise_url=out.low_noise_weights.as_uri())
    ours = generator_frames(wan_root, tmp_path / "ours", "wan-2.2-a14b-t2v", (pair,))
    # the Wan team's guidance for T2V A14B: 4.0 on the high-noise expert, 3.0 on the low-noise one
    right = diffusers_frames(
        wan_root / WAN22,
        [(out.weights, False), (out.low_noise_weights, True)],
        guidance_scale=4.0,
        guidance_scale_2=3.0,
    )
    swapped = diffusers_frames(
        wan_root / WAN22,
        [(out.low_noise_weights, False), (out.weights, True)],
        guidance_scale=4.0,
        guidance_scale_2=3.0,
    )
    assert np.array_equal(ours, right)
    assert apart(ours, swapped) > 8

    from contentgen.providers.cluster.generation import pipelines
    from contentgen.providers.cluster.generation.video_loras import experts_loaded

    pipe = pipelines.pipeline(wan_root / WAN22, flux.device(DEVICE), variant=("video", False))
    with experts_loaded(pipe, [(out.weights, 1.0, out.low_noise_weights)], "wan-2.2-a14b-t2v"):
        for transformer, file in ((pipe.transformer, high), (pipe.transformer_2, low)):
            loaded = dict(transformer.named_parameters())["blocks.0.attn1.to_q.lora_A.lora0.weight"]
            assert torch.equal(loaded, file["transformer.blocks.0.attn1.to_q.lora_A.weight"].to(loaded.dtype))


def test_each_step_trains_only_the_expert_its_timestep_routes_to(wan_root, archive, tmp_path):
    model = wan_root / WAN22
    found: dict[str, int] = {}
    for seed in range(12):  # the first step's draws, as the run draws them: example, then timestep
        generator = torch.Generator("cpu").manual_seed(seed)
        torch.randint(3, (1,), generator=generator)
        timestep = float(wan_training.draw_noise_level("shift", generator, WAN22_SHIFT)[1])
        found.setdefault(wan_models.Experts(0.875).owner(timestep), seed)
    assert set(found) == {"high", "low"}
    for owner, seed in found.items():
        work = tmp_path / owner
        work.mkdir()
        plan = replace(PLAN, steps=1, checkpoint_every=0, seed=seed)
        done = loop.train(
            job(model, examples(archive, work), plan, work, FolderFiles(work / "c"), base=base_of(model))
        )
        [(_, timestep, routed)] = done.routed
        assert routed == owner == wan_models.Experts(0.875).owner(timestep)
        for expert, path in (("high", done.final), ("low", done.finals[1])):
            moved = any(float(v.abs().max()) > 0 for k, v in load_file(str(path)).items() if ".lora_B." in k)
            assert moved == (expert == owner), (expert, owner)


def test_a_killed_training_resumes_bit_for_bit(wan_root, archive, tmp_path):
    plan = replace(PLAN, steps=4, checkpoint_every=2)
    whole = tmp_path / "whole"
    whole.mkdir()
    uninterrupted = loop.train(
        job(
            wan_root / WAN22,
            examples(archive, whole),
            plan,
            whole,
            FolderFiles(whole / "c"),
            base=base_of(wan_root / WAN22),
        )
    )
    killed, checkpoints = tmp_path / "killed", tmp_path / "checkpoints"
    killed.mkdir()
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.cluster.train_worker",
            str(wan_root / WAN22),
            str(killed),
            str(checkpoints),
            "3",
            "wan-2.2-t2v-a14b",
            str(archive),
        ],
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        deadline = time.monotonic() + 300
        while not (killed / "stalled").exists():
            assert worker.poll() is None, f"the training process ended early ({worker.returncode})"
            assert time.monotonic() < deadline, "the training process did not reach step 3 in 300 s"
            time.sleep(0.2)
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=60)
    assert worker.returncode == -signal.SIGKILL
    assert sorted(FolderFiles(checkpoints).names()) == [
        "step-000002-low-noise.safetensors",
        "step-000002.pt",
        "step-000002.safetensors",
    ]
    resumed_dir = tmp_path / "resumed"
    resumed_dir.mkdir()
    resumed = loop.train(
        job(
            wan_root / WAN22,
            examples(archive, resumed_dir),
            plan,
            resumed_dir,
            FolderFiles(checkpoints),
            base=base_of(wan_root / WAN22),
        )
    )
    assert (resumed.resumed_from, resumed.steps_run) == (2, 2)  # steps 3 and 4, never 1 and 2 again
    assert resumed.seconds_before > 0
    assert resumed.losses == uninterrupted.losses and resumed.routed == uninterrupted.routed
    for mine, theirs in ((resumed.final, uninterrupted.final), (resumed.finals[1], uninterrupted.finals[1])):
        a, b = load_file(str(mine)), load_file(str(theirs))
        assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_stills_alone_train_as_one_frame_clips(wan_root, tmp_path):
    stills = dataset(tmp_path / "stills.zip", clips=0, stills=2)
    work = tmp_path / "work"
    work.mkdir()
    found = examples(stills, work)
    assert [e.kind for e in found] == ["still", "still"]
    assert tuple(video_data.pixels(found[0], 64).shape) == (1, 3, 1, 64, 64)
    done = loop.train(
        job(
            wan_root / WAN21,
            found,
            replace(PLAN, steps=2, checkpoint_every=0),
            work,
            FolderFiles(work / "c"),
            base=base_of(wan_root / WAN21),
        )
    )
    assert [s for s, _ in done.losses] == [1, 2] and done.final.exists()


def test_an_image_to_video_wan_learns_from_its_clips_with_the_first_frame_given(wan_root, archive, tmp_path):
    work = tmp_path / "i2v"
    work.mkdir()
    done = loop.train(
        job(
            wan_root / WAN21_I2V,
            examples(archive, work),
            replace(PLAN, steps=2, checkpoint_every=0),
            work,
            FolderFiles(work / "c"),
            base=base_of(wan_root / WAN21_I2V),
        )
    )
    assert [s for s, _ in done.losses] == [1, 2]
    assert [video_data.frame_count(n) for n in (10, 9, 1)] == [9, 9, 1]
    stills = dataset(tmp_path / "stills.zip", clips=0, stills=1)
    alone = tmp_path / "alone"
    alone.mkdir()
    with pytest.raises(InvalidInput, match=r"^dataset.media: an image-to-video Wan learns from clips"):
        loop.train(
            job(
                wan_root / WAN21_I2V,
                examples(stills, alone),
                replace(PLAN, steps=1),
                alone,
                FolderFiles(alone / "c"),
                base=base_of(wan_root / WAN21_I2V),
            )
        )
