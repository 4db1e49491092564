"""The newer picture families on the shared trainer (families/pictures.py and each family's recipe),
on tiny models with random weights built from their configs' shapes, on the CPU: a LoraTraining's
LoRA trains through provider cluster, loads in diffusers' own pipeline for its family and changes
its picture, at scale 0 it is the base picture, and a training resumed from a stored checkpoint
ends bit for bit where an uninterrupted one does (several processes: test_distributed_training.py).
Cost, each family: its tiny model built once (seconds, after imports), two trainings of 2 steps at
64 px and four 2-step pictures: about 30 s of CPU in all (hence `slow`)."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from contentgen.api.base_models import base_model
from contentgen.api.lora.plan import plan_for
from contentgen.providers.base import MemoryCheckpoint, TrainingOutput, TrainingRequest
from contentgen.providers.cluster.files import FolderFiles
from contentgen.providers.cluster.generation import lora_files
from contentgen.providers.cluster.provider import ClusterProvider

from .tiny_flux import pictures
from .tiny_flux2_klein import tiny_flux2_klein
from .tiny_qwen_image import tiny_qwen_image
from .tiny_z_image import tiny_z_image

pytestmark = [pytest.mark.cluster_models, pytest.mark.slow]


@dataclass(frozen=True)
class Tiny:
    base: str
    build: Callable[[Path], Path]
    pipeline: str
    probes: tuple[str, ...]  # layers its LoRA adapts by default
    guidance: float


FAMILIES = [
    Tiny("z-image-turbo", tiny_z_image, "ZImagePipeline", (".attention.to_q.", ".feed_forward.w1."), 0.0),
    Tiny(
        "flux.2-klein-4b",
        tiny_flux2_klein,
        "Flux2KleinPipeline",
        (".attn.to_q.", ".attn.add_q_proj.", ".attn.to_qkv_mlp_proj.", ".ff.linear_in."),
        4.0,
    ),
    Tiny(
        "qwen-image-2512", tiny_qwen_image, "QwenImagePipeline", (".attn.add_q_proj.", ".img_mlp.net.2."), 1.0
    ),
]


def dataset(folder: Path) -> Path:
    archive = folder / "dataset.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path, caption in pictures(folder / "pictures", 2):
            zf.write(path, f"images/{path.name}")
            zf.writestr(f"captions/{path.stem}.txt", caption)
    return archive


def train(
    tiny: Tiny, models: Path, work: Path, stored: Path
) -> tuple[dict[str, torch.Tensor], TrainingOutput]:
    work.mkdir(parents=True, exist_ok=True)
    plan = plan_for(base=tiny.base, steps=2, checkpoint_every=1, rank=4, learning_rate=5e-2, resolution=64)
    request = TrainingRequest(dataset(work), "sks", plan=plan, checkpoints=FolderFiles(stored))
    provider = ClusterProvider(models, device="cpu")
    out = provider.train_lora(request, work / "out", lambda _: None, MemoryCheckpoint())
    return lora_files.load(out.weights), out


def draw(tiny: Tiny, pipe: Any, scale: float | None) -> np.ndarray:
    if scale is not None:
        pipe.set_adapters(["person"], [scale])
    return pipe(
        prompt="a photo of sks",
        height=64,
        width=64,
        num_inference_steps=2,
        **(
            {"true_cfg_scale": 1.0}
            if tiny.pipeline == "QwenImagePipeline"
            else {"guidance_scale": tiny.guidance}
        ),
        generator=torch.Generator().manual_seed(3),
        output_type="np",
    ).images[0]


@pytest.mark.parametrize("tiny", FAMILIES, ids=lambda t: t.base)
def test_a_familys_lora_trains_loads_in_diffusers_changes_the_picture_and_resumes(tiny: Tiny, tmp_path: Path):
    import diffusers

    models = tmp_path / "models"
    staged = tiny.build(models / base_model(tiny.base).cluster_dir)
    tensors, out = train(tiny, models, tmp_path / "a", tmp_path / "stored")
    assert [c.step for c in out.checkpoints] == [1, 2]
    assert out.config is not None
    said = json.loads(out.config.read_text())
    assert (said["training_base_model"], said["base_model"]) == (tiny.base, staged.name)
    assert "not measured on a GPU" in out.details["memoryPlan"]
    assert tensors and all(k.startswith("transformer.") and ".lora_" in k for k in tensors)
    assert all(any(probe in k for k in tensors) for probe in tiny.probes)
    pipe = getattr(diffusers, tiny.pipeline).from_pretrained(str(staged))
    base = draw(tiny, pipe, None)
    pipe.load_lora_weights(str(out.weights), adapter_name="person")
    assert np.abs(draw(tiny, pipe, 1.0) - base).max() > 1e-3  # the LoRA changes the picture
    np.testing.assert_array_equal(draw(tiny, pipe, 0.0), base)  # at scale 0 it is the base picture
    # a retry whose first run stopped after step 1's checkpoint: step 2 from it, the same LoRA
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    for name in ("step-000001.pt", "step-000001.safetensors"):
        shutil.copy(tmp_path / "stored" / name, resumed / name)
    again, second = train(tiny, models, tmp_path / "b", resumed)
    assert second.details["stepsRun"] == 1
    assert sorted(again) == sorted(tensors) and all(torch.equal(again[k], tensors[k]) for k in tensors)
