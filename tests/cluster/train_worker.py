"""A training process for the resume test: trains the tiny FLUX LoRA with its checkpoints in a
folder and, after step `stall`, stops in place (as a pod that is about to be killed) after
writing a marker, so the test can SIGKILL it mid-training.

python -m tests.cluster.train_worker MODEL_DIR WORK_DIR CHECKPOINTS STALL"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from contentgen.providers.cluster.files import FolderFiles
from contentgen.providers.cluster.generation import flux
from contentgen.providers.cluster.training import loop as training

from .tiny_flux import pictures

PLAN = training.Plan(steps=4, rank=4, resolution=64, checkpoint_every=2)


def examples(work: Path) -> list[training.Example]:
    return [training.Example(path, caption) for path, caption in pictures(work / "pictures")]


def main(model: Path, work: Path, checkpoints: Path, stall: int, device: str) -> None:
    torch.set_num_threads(1)

    def progress(step: int, steps: int) -> None:
        if step == stall:
            (work / "stalled").write_text(str(step))
            while True:
                time.sleep(1)

    training.train(model, examples(work), PLAN, flux.device(device), work, FolderFiles(checkpoints), progress)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
