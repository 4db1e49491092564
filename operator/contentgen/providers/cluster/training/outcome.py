"""What a cluster training hands back, whatever its family: its request's id, the refusal of a run
stopped before it stored any checkpoint, the version's files (its LoRA files, its config, the same
on every attempt, and every step's loss) and its TrainingOutput, billed as the GPU time it held × the
pod's GPUs, the watch's pictures left out (each billed as a picture)."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from contentgen.providers.base import (
    CheckpointFiles,
    ContinuedState,
    TrainedCheckpoint,
    TrainingOutput,
    TrainingRequest,
)
from contentgen.providers.watch import NothingToKeep

from .family import Job
from .loop import Trained, Unkept

GIB = 1024**3


def request_id(identity: str, files: CheckpointFiles) -> str:
    """One id per training (its inputs, and where its checkpoints go: the version), so that a
    retried pod's report is counted once, and another version's training again."""
    run = f"{identity} {files.uri('')}"
    return f"cluster-{hashlib.sha256(run.encode()).hexdigest()[:16]}"


def held_seconds(began: float, trained: Trained | Unkept) -> float:
    """This process's time, and that of the killed ones before it up to the state it resumed, less
    the watch's pictures (each billed as a picture, with its own GPU time)."""
    return float(time.monotonic() - began + trained.seconds_before - trained.drawing_seconds)


@contextmanager
def kept(began: float, request_id: str, gpus: int) -> Iterator[None]:
    """Around the training: a run stopped before it stored any checkpoint is NothingToKeep, billed
    for the steps it ran (what it held, less its pictures)."""
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
    trained: Trained, job: Job, request: TrainingRequest, *, began: float, request_id: str, provider: str
) -> TrainingOutput:
    """The TrainingOutput of a training that kept its checkpoints (see the module); the GPU time ×
    the pod's GPUs (it holds them for as long as it runs, whatever it computes on)."""
    weights = files(job, trained)
    gpus = job.gpus
    return TrainingOutput(
        weights=weights[0],
        config=config(job, trained, request, provider),
        request_id=request_id,
        details=details(job, trained),
        checkpoints=tuple(
            TrainedCheckpoint(s.step, s.lora, s.more[0] if s.more else "") for s in trained.checkpoints
        ),
        gpu_seconds=held_seconds(began, trained) * gpus,
        gpus=gpus,
        loss=losses(job.work_dir, trained),
        stopped=trained.stopped,
        first_step=trained.first_step,
        last_step=trained.last_step,
        seconds_per_step=trained.seconds_per_step * gpus if trained.steps_run else None,
        state_uri=trained.checkpoints[-1].state,
        continued=trained.continued,
        low_noise_weights=weights[1] if len(weights) > 1 else None,
    )


def files(job: Job, trained: Trained) -> list[Path]:
    """The newest checkpoint's LoRA files as the version names them (the family's outputs)."""
    copied = []
    for name, final in zip(job.family.outputs, trained.finals, strict=False):
        shutil.copyfile(final, job.work_dir / name)
        copied.append(job.work_dir / name)
    return copied


def details(job: Job, trained: Trained) -> dict[str, Any]:
    """What the version keeps of how it trained: the steps run here, the memory plan, the processes,
    and on a GPU the peak torch's allocator held and reserved."""
    found: dict[str, Any] = {
        "resumedAfterStep": trained.resumed_from,
        "stepsRun": trained.steps_run,
        "memoryPlan": trained.memory.describe(),
        "processes": job.team.world.size,
        "batchSize": job.plan.batch,
    }
    if trained.peak_memory_bytes:
        found["peakAllocatedGiB"] = round(trained.peak_memory_bytes / GIB, 2)
        found["peakReservedGiB"] = round(trained.peak_reserved_bytes / GIB, 2)
    return found


def config(job: Job, trained: Trained, request: TrainingRequest, provider: str) -> Path:
    """config.json: what was asked (the same on every attempt, so a retry never writes it
    differently), the memory plan it trained with, and what its family adds."""
    plan, asked = job.plan, request.plan
    went_on = trained.continued
    said = {
        "provider": provider,
        "base_model": job.staged,
        "steps": asked.steps,
        "rank": plan.rank,
        "learning_rate": plan.learning_rate,
        "resolution": plan.resolution,
        "checkpoint_every": plan.checkpoint_every,
        "optimizer": plan.optimizer,
        "lora_targets": plan.targets,
        "timestep_sampling": plan.timestep_sampling,
        "max_grad_norm": plan.max_grad_norm,
        "memory_plan": trained.memory.base,
        **job.family.config(job),
        **({"continue_from": continued(went_on)} if went_on is not None else {}),
    }
    path = job.work_dir / "config.json"
    path.write_text(json.dumps(said, indent=1))
    return path


def continued(went_on: ContinuedState) -> dict[str, Any]:
    """The version and step it went on from, and what it changed (each applied), where anything."""
    changed = {"changed": list(went_on.changed)} if went_on.changed else {}
    return {"version": went_on.version, "step": went_on.step, **changed}


def losses(work_dir: Path, trained: Trained) -> Path:
    """training-loss.json: every step's loss (the killed attempts' kept in the state, a continued
    version's before them)."""
    path = work_dir / "training-loss.json"
    path.write_text(json.dumps({"steps": [[s, v] for s, v in trained.losses]}, separators=(",", ":")))
    return path
