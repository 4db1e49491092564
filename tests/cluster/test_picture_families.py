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
from collections.abc import Callable, Sequence
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
from contentgen.providers.cluster.files import FolderFiles
from contentgen.providers.cluster.generation import lora_files
from contentgen.providers.cluster.provider import ClusterProvider
from contentgen.providers.watch import Drawer, Planned, SoFar, Stop

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


def drawn_by_cluster(models: Path, model: str, lora: Path | None, scale: float, work: Path) -> np.ndarray:
    """The picture provider cluster draws of `model` (2 steps, 64 px, seed 3), with `lora` at `scale`."""
    provider = ClusterProvider(models, device="cpu", inference_steps=2, sizes={"square": (64, 64)})
    loras = (LoraWeights(url=lora.resolve().as_uri(), scale=scale),) if lora else ()
    request = ImageRequest("a photo of sks", model, image_size="square", seed=3, loras=loras)
    [out] = provider.generate_images(request, work, lambda _: None, MemoryCheckpoint())
    assert (out.width, out.height, out.seed) == (64, 64, 3) and out.memory_plan == "bf16, on the CPU"
    return np.asarray(Image.open(out.path).convert("RGB"), dtype=np.int16)


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
    # provider cluster draws the family's model (an ImageGeneration's, a likeness evaluation's)
    model = base_model(tiny.base).loads_on[0]
    plain = drawn_by_cluster(models, model, None, 1.0, tmp_path / "plain")
    assert np.abs(drawn_by_cluster(models, model, out.weights, 1.0, tmp_path / "lora") - plain).max() > 0
    np.testing.assert_array_equal(drawn_by_cluster(models, model, out.weights, 0.0, tmp_path / "zero"), plain)
    # a retry whose first run stopped after step 1's checkpoint: step 2 from it, the same LoRA
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    for name in ("step-000001.pt", "step-000001.safetensors"):
        shutil.copy(tmp_path / "stored" / name, resumed / name)
    again, second = train(tiny, models, tmp_path / "b", resumed)
    assert second.details["stepsRun"] == 1
    assert sorted(again) == sorted(tensors) and all(torch.equal(again[k], tensors[k]) for k in tensors)


PROMPT = "a photo of sks smiling"


@dataclass
class Watch:
    """A watch that asks, at each checkpoint, for the family's picture with the checkpoint's LoRA and
    without it, and stops at `stop_at`."""

    model: str
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
            asked = ImageRequest(PROMPT, self.model, image_size="square", seed=5, loras=loras)
            (self.work / f"s{step}-{name}").mkdir(parents=True)
            [out] = drawer.generate_images(asked, self.work / f"s{step}-{name}", lambda _: None, None)
            made.append(np.asarray(Image.open(out.path)))
        self.drawn[step] = (made[0], made[1])
        return Stop("plateau", "the test's stop") if step == self.stop_at else None

    def step_ended(self, so_far: SoFar) -> Stop | None:
        return None


@pytest.mark.parametrize("tiny", FAMILIES, ids=lambda t: t.base)
def test_a_familys_checkpoints_are_drawn_in_the_loop_as_the_generator_draws_them(tiny: Tiny, tmp_path: Path):
    """Each checkpoint's pictures are drawn between steps by the transformer in training (its
    adapter on, or off for the baseline): the generator's pictures of the checkpoint's LoRA file and
    of the base model, bit for bit; the watch's stop ends the training at that checkpoint."""
    models = tmp_path / "models"
    tiny.build(models / base_model(tiny.base).cluster_dir)
    model = base_model(tiny.base).loads_on[0]
    provider = ClusterProvider(models, device="cpu", inference_steps=2, sizes={"square": (64, 64)})
    watch = Watch(model, tmp_path / "watch", stop_at=1)
    plan = plan_for(base=tiny.base, steps=3, checkpoint_every=1, rank=4, learning_rate=5e-2, resolution=64)
    stored = FolderFiles(tmp_path / "stored")
    request = TrainingRequest(dataset(tmp_path), "sks", plan=plan, checkpoints=stored, watch=watch)
    out = provider.train_lora(request, tmp_path / "out", lambda _: None, MemoryCheckpoint())
    assert watch.planned == Planned(0, 3, (1, 2, 3))
    assert list(watch.drawn) == [1] and out.details["stepsRun"] == 1 and out.stopped is not None
    with_lora, without = watch.drawn[1]
    assert np.abs(with_lora.astype(int) - without).max() > 0  # the checkpoint's LoRA is in it
    lora = LoraWeights((tmp_path / "stored" / "step-000001.safetensors").as_uri())
    for name, loras, drawn in (("with", (lora,), with_lora), ("without", (), without)):
        asked = ImageRequest(PROMPT, model, image_size="square", seed=5, loras=loras)
        (tmp_path / name).mkdir()
        [made] = provider.generate_images(asked, tmp_path / name, lambda _: None, MemoryCheckpoint())
        np.testing.assert_array_equal(np.asarray(Image.open(made.path)), drawn)


def test_a_pool_of_a_newer_familys_model_draws_it_uncompiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`contentgen pool` of Z-Image-Turbo: a named torch.compile backend refused in one line before
    anything loads (the hot-swap slot is laid out on FLUX.1's blocks); with auto it is not compiled,
    and it warms up by drawing a Z-Image picture."""
    import argparse
    import time

    from contentgen.cli.pool import _pictures
    from contentgen.errors import InvalidInput
    from contentgen.providers.cluster import picture_models
    from contentgen.providers.cluster.generation import pipelines

    models = tmp_path / "models"
    staged = tiny_z_image(models / "Z-Image-Turbo")
    assert picture_models.for_directory(staged).name == "Z-Image"
    monkeypatch.setenv("CONTENTGEN_CLUSTER_MODELS_DIR", str(models))
    monkeypatch.setenv("CONTENTGEN_CLUSTER_DEVICE", "cpu")
    monkeypatch.setenv("CONTENTGEN_CLUSTER_INFERENCE_STEPS", "2")
    asked = argparse.Namespace(
        model="Z-Image-Turbo",
        compile="inductor",
        kept_loras=4,
        lora_rank=64,
        warm_up_size=(64, 64),
        routing="affinity",
    )
    with pytest.raises(
        InvalidInput, match=r"^--compile inductor: Z-Image-Turbo is a Z-Image model.*auto or none$"
    ):
        _pictures(asked, tmp_path / "work")
    monkeypatch.setattr(
        "contentgen.cli.pool._compiler", lambda *_: pytest.fail("a newer family is not compiled")
    )
    pipelines.release()
    (tmp_path / "work").mkdir()
    running = _pictures(argparse.Namespace(**{**vars(asked), "compile": "auto"}), tmp_path / "work").start()
    deadline = time.monotonic() + 120
    while running.status()["state"] != "warm" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert running.status()["state"] == "warm" and pipelines.loads > 0
    running.stop()
    pipelines.release()
