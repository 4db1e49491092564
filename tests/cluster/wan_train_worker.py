"""A Wan training process for the resume test (test_wan_training.py): trains a tiny Wan 2.2 pair with
its checkpoints in a folder and, after step `stall`, stops in place (as a pod about to be killed)
after writing a marker, so that the test can SIGKILL it mid-training.

python -m tests.cluster.wan_train_worker MODEL_DIR DATASET WORK_DIR CHECKPOINTS STALL DEVICE"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from contentgen.providers.cluster.families import wan_data, wan_training
from contentgen.providers.cluster.files import FolderFiles
from contentgen.providers.cluster.generation import flux

from .tiny_wan import PLAN


def main(model: Path, archive: Path, work: Path, checkpoints: Path, stall: int, device: str) -> None:
    torch.set_num_threads(1)

    def progress(step: int, steps: int) -> None:
        if step == stall:
            (work / "stalled").write_text(str(step))
            while True:
                time.sleep(1)

    folder = work / "examples"
    folder.mkdir(parents=True, exist_ok=True)
    examples = wan_data.read_dataset(archive, folder, "dmavatar")
    plan = replace(PLAN, steps=4, checkpoint_every=2)
    wan_training.train(model, examples, plan, flux.device(device), work, FolderFiles(checkpoints), progress)


if __name__ == "__main__":
    main(
        Path(sys.argv[1]),
        Path(sys.argv[2]),
        Path(sys.argv[3]),
        Path(sys.argv[4]),
        int(sys.argv[5]),
        sys.argv[6],
    )
