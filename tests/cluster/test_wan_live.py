"""A Wan training's watch (providers/watch.py) on the tiny Wan, on the CPU: each checkpoint is handed
to it as it is stored, with a maker of clips drawn by the Wan the trainer holds in memory and that
checkpoint's LoRA (providers/cluster/families/video_live.py); a clip it draws is the clip provider cluster's
video generator draws with the checkpoint's LoRA file, the picture scored is the clip's
frames across it (first to last, two by two); the baseline is keyed by the Wan it was drawn with;
a stop ends the training at that checkpoint. An image-to-video Wan's clips start from a still of
the dataset, whose frame is not scored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from hashlib import sha256
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from contentgen.providers import clip_frames
from contentgen.providers.base import ImageRequest, LoraWeights, MemoryCheckpoint
from contentgen.providers.cluster.families import video_data, video_live
from contentgen.providers.cluster.files import FolderFiles
from contentgen.providers.cluster.generation import video_state
from contentgen.providers.cluster.generation.video import ClusterVideoGenerator
from contentgen.providers.cluster.provider import ClusterProvider
from contentgen.providers.cluster.training import loop
from contentgen.providers.watch import Drawer, Planned, SoFar, Stop
from tests.harness.cluster import request as video_request

from .conftest import DEVICE
from .jobs import job
from .tiny_wan import PLAN, WAN21, WAN21_I2V, base_of, dataset

pytestmark = pytest.mark.cluster_models
STEPS = 2
PROMPT = "a photo of dmavatar smiling"


@dataclass
class Watch:
    """A watch that asks for one clip with the checkpoint's LoRA and one without at each checkpoint,
    and stops at `stop_at`."""

    work: Path
    stop_at: int = 0
    planned: Planned | None = None
    seen: list[tuple[int, str, bool]] = field(default_factory=list)
    drawn: dict[int, tuple[Any, Any]] = field(default_factory=dict)
    drawer: Any = None

    def prompts(self) -> Sequence[str]:
        return [PROMPT]

    def begin(self, planned: Planned) -> None:
        self.planned = planned

    def checkpoint(self, step: int, lora_uri: str, drawer: Drawer | None) -> Stop | None:
        self.seen.append((step, lora_uri, drawer is not None))
        if drawer is not None:
            self.drawer = drawer
            made = []
            for name, loras in (("with", (LoraWeights(lora_uri),)), ("without", ())):
                folder = self.work / f"s{step}-{name}"
                folder.mkdir(parents=True)
                asked = ImageRequest(PROMPT, "flux-dev", image_size="square", seed=3, loras=loras)
                [out] = drawer.generate_images(asked, folder, lambda _: None, MemoryCheckpoint())
                made.append(out)
            self.drawn[step] = (made[0], made[1])
        return Stop("plateau", "the test's stop") if step == self.stop_at else None

    def step_ended(self, so_far: SoFar) -> Stop | None:
        return None


def test_each_checkpoint_is_drawn_as_clips_by_the_wan_in_memory(wan_root, tmp_path, monkeypatch):
    archive = dataset(tmp_path / "dataset.zip", clips=1, stills=1)
    folder = tmp_path / "examples"
    folder.mkdir()
    examples = video_data.read_dataset(archive, folder, "dmavatar")
    provider = ClusterProvider(wan_root, device=DEVICE, inference_steps=STEPS)
    watch = Watch(tmp_path / "watch", stop_at=2)
    # 128 × 128: the tiny Wan's positions reach 512 pixels (its rope_max_seq_len, 32 patches)
    monkeypatch.setattr(video_live, "AREA", 128 * 128)
    plan = replace(PLAN, steps=4, checkpoint_every=2)
    trained = loop.train(
        job(
            wan_root / WAN21,
            examples,
            plan,
            tmp_path,
            FolderFiles(tmp_path / "checkpoints"),
            base=base_of(wan_root / WAN21),
            watch=watch,
            drawers=provider,
        )
    )
    # the watch's stop at the first checkpoint ends the training there
    assert watch.planned == Planned(0, 4, (2, 4))
    assert [(s, held) for s, _, held in watch.seen] == [(2, True)]
    assert trained.stopped is not None and trained.last_step == 2 and trained.steps_run == 2

    with_lora, without = watch.drawn[2]
    drawer = watch.drawer
    assert (with_lora.width, with_lora.height) == video_live.clip_size(512, 512, 128 * 128) == (128, 128)
    assert video_live.clip_size(512, 512) == (624, 624) and video_live.clip_size(768, 1024) == (544, 736)
    frames = clip_frames.read(with_lora.path)
    assert frames is not None and [t for t, _ in frames] == [0.0, 0.3125, 0.6875, 1.0]  # 17 at 16 fps
    assert with_lora.gpu_seconds > 0 and drawer.seconds > 0
    picture = np.asarray(Image.open(with_lora.path))
    assert picture.shape == (256, 256, 3)  # its four frames, two by two
    assert not np.array_equal(picture, np.asarray(Image.open(without.path)))  # the LoRA is in it
    assert drawer.weights_of("flux-dev") == f"flux-dev.{WAN21}.clip-17f.{STEPS}-steps"

    # the clip is the video generator's with the checkpoint's LoRA file, at the same seed and shape
    generator = ClusterVideoGenerator(wan_root, device=DEVICE, inference_steps=STEPS)
    lora = tmp_path / "checkpoints" / "step-000002.safetensors"
    request = video_request(
        tmp_path,
        "made",
        prompt=PROMPT,
        frames=17,
        fps=16,
        width=128,
        height=128,
        seed=with_lora.seed,
        loras=(LoraWeights(lora.as_uri()),),
    )
    (tmp_path / "run").mkdir()
    generator.generate_video(request, tmp_path / "run", lambda _: None, MemoryCheckpoint())
    with np.load(tmp_path / "made" / video_state.FRAMES) as stored:
        clip = np.asarray(stored["frames"])
    assert all(np.array_equal(clip[round(t * 16)], frame[..., ::-1]) for t, frame in frames)


def test_an_image_to_video_wans_clips_start_from_a_still_of_the_dataset(wan_root, tmp_path, monkeypatch):
    archive = dataset(tmp_path / "dataset.zip", clips=1, stills=1)
    monkeypatch.setattr(video_live, "AREA", 64 * 64)
    watch = Watch(tmp_path / "watch", stop_at=2)
    provider = ClusterProvider(wan_root, device=DEVICE, inference_steps=STEPS)
    model = wan_root / WAN21_I2V
    examples = video_data.read_dataset(archive, tmp_path, "dmavatar")
    plan = replace(PLAN, steps=2, checkpoint_every=2)
    loop.train(job(model, examples, plan, tmp_path, base=base_of(model), watch=watch, drawers=provider))
    with_lora, _ = watch.drawn[2]
    frames = clip_frames.read(with_lora.path)
    assert frames is not None and [t for t, _ in frames] == [0.0625, 0.375, 0.6875, 1.0]  # after the still
    still = next(e.path for e in examples if e.kind == "still")
    assert watch.drawer.first_frame == still
    assert watch.drawer.weights_of("flux-dev").endswith(
        f".from-{sha256(still.read_bytes()).hexdigest()[:12]}"
    )
