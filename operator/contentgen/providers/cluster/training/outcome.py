"""What a cluster training hands back, FLUX's and Wan's alike: its request's id, the refusal of a
run stopped before it stored any checkpoint, and its TrainingOutput."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from contentgen.providers.base import CheckpointFiles, TrainedCheckpoint, TrainingOutput
from contentgen.providers.watch import NothingToKeep


def request_id(identity: str, files: CheckpointFiles) -> str:
    """One id per training (its inputs, and where its checkpoints go: the version), so that a
    retried pod's report is counted once, and another version's training again."""
    run = f"{identity} {files.uri('')}"
    return f"cluster-{hashlib.sha256(run.encode()).hexdigest()[:16]}"


def held_seconds(began: float, trained: Any) -> float:  # a Trained, a WanTrained or an Unkept
    """This process's time, and that of the killed ones before it up to the state it resumed, less
    the watch's pictures (each billed as a picture, with its own GPU time)."""
    return float(time.monotonic() - began + trained.seconds_before - trained.drawing_seconds)


@contextmanager
def kept(began: float, request_id: str, gpus: int) -> Iterator[None]:
    """Around the training: a run stopped before it stored any checkpoint is NothingToKeep, billed
    for the steps it ran (what it held, less its pictures)."""
    from .loop import Unkept

    try:
        yield
    except Unkept as unkept:
        raise NothingToKeep(
            f"the training was stopped after step {unkept.step}, before it stored any checkpoint: "
            "nothing to keep",
            gpu_seconds=held_seconds(began, unkept) * gpus,
            request_id=request_id,
        ) from None


def output(
    trained: Any,  # a Trained, or a family's alike (families/wan_training.py)
    *,
    began: float,
    request_id: str,
    gpus: int,
    files: tuple[Path, Path, Path],
    details: dict[str, Any],
    low_noise_weights: Path | None = None,
) -> TrainingOutput:
    """The TrainingOutput of a training that kept its checkpoints: `files` its weights, config and
    loss curve, `details` what its kind adds to the steps it ran and its memory plan; the GPU time
    × the pod's GPUs (it holds them for as long as it runs, whatever it computes on)."""
    weights, config, loss = files
    return TrainingOutput(
        weights=weights,
        config=config,
        request_id=request_id,
        details={
            "resumedAfterStep": trained.resumed_from,
            "stepsRun": trained.steps_run,
            "memoryPlan": trained.memory.describe(),
            **details,
        },
        checkpoints=tuple(TrainedCheckpoint(s.step, s.lora) for s in trained.checkpoints),
        gpu_seconds=held_seconds(began, trained) * gpus,
        gpus=gpus,
        loss=loss,
        stopped=trained.stopped,
        first_step=trained.first_step,
        last_step=trained.last_step,
        seconds_per_step=trained.seconds_per_step * gpus if trained.steps_run else None,
        state_uri=trained.checkpoints[-1].state,
        continued=trained.continued,
        low_noise_weights=low_noise_weights,
    )
