"""What the Wan LoRA trainer's tests train on: the tiny Wan 2.1 of tests/providers/cluster_models.py
(diffusers' own test shapes, random weights), a tiny Wan 2.2 A14B made the same way (two
transformers of different weights, `boundary_ratio` in its model_index.json, the published
repository's scheduler kind), each staged under its published directory's name, and a dataset
archive as the clip dataset stage writes it (flat: clip-0001.mp4 and 0001.jpg, each with its
caption beside it). Nothing is downloaded."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from contentgen.providers.cluster.families import video_data
from contentgen.providers.cluster.training.plan import Plan
from tests.harness.frames import moving
from tests.providers.cluster_models import WAN21_SCHEDULER, tiny_wan

WAN21 = "Wan2.1-T2V-1.3B-Diffusers"
WAN21_I2V = "Wan2.1-I2V-14B-480P-Diffusers"
WAN22 = "Wan2.2-T2V-A14B-Diffusers"
# The Wan 2.2 T2V A14B repository's scheduler: UniPC on flow sigmas, shifted 12.0 (the Wan team's
# t2v_A14B sample_shift), boundary 0.875.
WAN22_SHIFT = 12.0
BOUNDARY = 0.875
# a learning rate that moves a rank-4 LoRA far in a few steps: the frames it draws differ plainly
PLAN = Plan(steps=6, rank=4, resolution=64, checkpoint_every=3, learning_rate=5e-3)


def tiny_wan22(folder: Path) -> Path:
    """A tiny Wan 2.2 T2V A14B: the tiny Wan 2.1's components, and a second transformer of other
    weights as the low-noise expert, `boundary_ratio` 0.875."""
    if (folder / "model_index.json").exists():
        return folder
    import torch
    from diffusers import UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel

    base = tiny_wan(folder.parent / f".{folder.name}-base")
    pipe = WanPipeline.from_pretrained(str(base), local_files_only=True)
    torch.manual_seed(1)
    config = dict(WanTransformer3DModel.load_config(str(base / "transformer")))
    low = WanTransformer3DModel.from_config(config)
    WanPipeline(
        tokenizer=pipe.tokenizer,
        text_encoder=pipe.text_encoder,
        vae=pipe.vae,
        scheduler=UniPCMultistepScheduler.from_config({**WAN21_SCHEDULER, "flow_shift": WAN22_SHIFT}),
        transformer=pipe.transformer,
        transformer_2=low,
        boundary_ratio=BOUNDARY,
    ).save_pretrained(folder)
    return folder


def stage(root: Path) -> Path:
    """A models' root with the tiny Wan 2.1 T2V, Wan 2.1 I2V and Wan 2.2 T2V A14B under their
    published directories' names (the 2.1 text-to-video with its published UniPC scheduler)."""
    tiny_wan(root / WAN21, unipc=True)
    tiny_wan(root / WAN21_I2V, image=True)
    tiny_wan22(root / WAN22)
    return root


def dataset(path: Path, *, clips: int = 1, stills: int = 1, frames: int = 9, size: int = 64) -> Path:
    """A video LoRA's dataset archive as pipeline/dataset.py writes it (flat)."""
    import cv2

    from contentgen.providers.offline_video import encode

    work = path.parent / f"{path.stem}-files"
    work.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for n in range(1, stills + 1):
            picture = moving(5, size, (200, 60 + 40 * n, 60))[n % 5]
            ok, data = cv2.imencode(".jpg", picture)
            assert ok
            archive.writestr(f"{n:04d}.jpg", data.tobytes())
            archive.writestr(f"{n:04d}.txt", f"dmavatar in a still {n}")
        for n in range(1, clips + 1):
            clip = encode(work / f"clip-{n:04d}.mp4", moving(frames, size), fps=16, width=size, height=size)
            archive.writestr(clip.name, clip.read_bytes())
            archive.writestr(f"clip-{n:04d}.txt", f"a video of dmavatar {n}")
    return path


def boundary_of(model: Path) -> float:
    return float(json.loads((model / "model_index.json").read_text())["boundary_ratio"])


# The base model (api/base_models.py) each staged tiny Wan stands for.
BASES = {WAN21: "wan-2.1-t2v-1.3b", WAN21_I2V: "wan-2.1-i2v-14b", WAN22: "wan-2.2-t2v-a14b"}


def base_of(model: Path) -> str:
    return BASES[model.name]


def wan_examples(archive: Path, work: Path) -> list[video_data.Example]:
    """The archive's examples as the trainer reads them, extracted under `work`."""
    folder = work / "examples"
    folder.mkdir(parents=True, exist_ok=True)
    return video_data.read_dataset(archive, folder, "dmavatar")
