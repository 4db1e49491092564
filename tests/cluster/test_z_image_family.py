"""Z-Image as a family of the shared trainer (families/z_image_training.py), on a tiny Z-Image with
random weights (tiny_z_image.py) on the CPU: a LoraTraining's LoRA trains through provider cluster,
loads in diffusers' own ZImagePipeline and changes its picture, at scale 0 it is the base picture,
and a training resumed from a stored checkpoint ends bit for bit where an uninterrupted one does.
Cost: the tiny model is built once per session (about 30 s of CPU, most of it imports), each
training 2 steps at 64 px (seconds)."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from contentgen.api.lora.plan import plan_for
from contentgen.providers.base import MemoryCheckpoint, TrainingRequest
from contentgen.providers.cluster.files import FolderFiles
from contentgen.providers.cluster.generation import lora_files
from contentgen.providers.cluster.provider import ClusterProvider

from .tiny_flux import pictures
from .tiny_z_image import tiny_z_image

pytestmark = [pytest.mark.cluster_models, pytest.mark.slow]  # ~40 s of CPU in all
BASE = "z-image-turbo"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("z-image-models")
    tiny_z_image(root / "Z-Image-Turbo")
    return root


def dataset(folder: Path) -> Path:
    archive = folder / "dataset.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path, caption in pictures(folder / "pictures", 2):
            zf.write(path, f"images/{path.name}")
            zf.writestr(f"captions/{path.stem}.txt", caption)
    return archive


def train(models: Path, work: Path, stored: Path) -> tuple[dict[str, torch.Tensor], object]:
    work.mkdir(parents=True, exist_ok=True)
    plan = plan_for(base=BASE, steps=2, checkpoint_every=1, rank=4, learning_rate=5e-2, resolution=64)
    request = TrainingRequest(dataset(work), "sks", plan=plan, checkpoints=FolderFiles(stored))
    out = ClusterProvider(models, device="cpu").train_lora(
        request, work / "out", lambda _: None, MemoryCheckpoint()
    )
    return lora_files.load(out.weights), out


def draw(pipe, scale: float | None) -> np.ndarray:
    if scale is not None:
        pipe.set_adapters(["person"], [scale])
    return pipe(
        "a photo of sks",
        height=64,
        width=64,
        num_inference_steps=2,
        guidance_scale=0.0,
        generator=torch.Generator().manual_seed(3),
        output_type="np",
    ).images[0]


def test_a_z_image_lora_trains_loads_in_diffusers_changes_the_picture_and_resumes(models, tmp_path):
    from diffusers import ZImagePipeline

    tensors, out = train(models, tmp_path / "a", tmp_path / "stored")
    assert [c.step for c in out.checkpoints] == [1, 2]
    assert tensors and all(k.startswith("transformer.layers.") for k in tensors)
    assert any(".attention.to_q.lora_A." in k for k in tensors) and any(
        ".feed_forward.w1." in k for k in tensors
    )
    pipe = ZImagePipeline.from_pretrained(str(models / "Z-Image-Turbo"))
    base = draw(pipe, None)
    pipe.load_lora_weights(str(out.weights), adapter_name="person")
    assert np.abs(draw(pipe, 1.0) - base).max() > 1e-3  # the LoRA changes the picture
    np.testing.assert_array_equal(draw(pipe, 0.0), base)  # at scale 0 it is the base picture
    # a retry whose first run stopped after step 1's checkpoint: step 2 from it, the same LoRA
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    for name in ("step-000001.pt", "step-000001.safetensors"):
        shutil.copy(tmp_path / "stored" / name, resumed / name)
    again, second = train(models, tmp_path / "b", resumed)
    assert second.details["stepsRun"] == 1
    assert sorted(again) == sorted(tensors) and all(torch.equal(again[k], tensors[k]) for k in tensors)
