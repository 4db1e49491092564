"""A training process for the resume tests: trains the tiny FLUX (or a tiny Wan) LoRA with its
checkpoints in a folder and, after step `stall`, stops in place (as a pod that is about to be
killed) after writing a marker, so the test can SIGKILL it mid-training.

python -m tests.cluster.train_worker MODEL_DIR WORK_DIR CHECKPOINTS STALL BASE [ARCHIVE]"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from contentgen.providers.cluster.families.flux_training import Example
from contentgen.providers.cluster.files import FolderFiles
from contentgen.providers.cluster.training import loop
from contentgen.providers.cluster.training.plan import Plan

from .jobs import job
from .tiny_flux import pictures

PLAN = Plan(steps=4, rank=4, resolution=64, checkpoint_every=2)


def examples(work: Path) -> list[Example]:
    return [Example(path, caption) for path, caption in pictures(work / "pictures")]


def main(model: Path, work: Path, checkpoints: Path, stall: int, base: str, archive: str = "") -> None:
    torch.set_num_threads(1)

    def progress(step: int, steps: int) -> None:
        if step == stall:
            (work / "stalled").write_text(str(step))
            while True:
                time.sleep(1)

    if base == "flux.1":
        trained = job(model, examples(work), PLAN, work, FolderFiles(checkpoints))
    else:
        from .tiny_wan import PLAN as WAN_PLAN
        from .tiny_wan import wan_examples

        plan = replace(WAN_PLAN, steps=4, checkpoint_every=2)
        trained = job(
            model, wan_examples(Path(archive), work), plan, work, FolderFiles(checkpoints), base=base
        )
    loop.train(trained, progress)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), *sys.argv[5:])
