"""What a trainer that stores checkpoints as it trains asks of the run between its steps: the
interface the pipeline hands in (as progress.py is for progress).

Providers sit below the pipeline and never import it. A trainer that can (`trains_live` in
api/providers.py: the cluster's own, and the offline provider's simulation) is handed a
`TrainingWatch` in its request; it tells the watch what it plans (`begin`), hands it each
checkpoint as soon as it is stored, with a picture maker that draws with the model it holds in
memory and that checkpoint's LoRA (`checkpoint`: the pipeline scores it with the same prompts,
seeds and score as any version's evaluation), and asks after every step whether to stop
(`step_ended`: a person's stop, a budget). A `Stop` ends the training at that step boundary; the
pipeline keeps its best-scoring checkpoint so far as the version's model.

A retried pod tells the watch of the checkpoints stored before it (`checkpoint` again, in order,
with no picture maker for those whose LoRA it does not hold): the watch takes their scores from
the store, never scoring a checkpoint twice, and the same curve gives the same stop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from contentgen.errors import PermanentError
from contentgen.providers.progress import SubProgress

StopHow = Literal["plateau", "budget", "asked"]


@dataclass(frozen=True)
class Stop:
    """Why a training stops at a step boundary, before its last step."""

    how: StopHow
    why: str
    by: str = ""  # who asked (a person's stop), where known


@dataclass(frozen=True)
class Planned:
    """What a training will do: the step it starts after (a continued version's last, else 0), the
    step it ends at unless it stops, and the steps whose checkpoints it stores."""

    first_step: int
    last_step: int
    checkpoints: tuple[int, ...]


@dataclass(frozen=True)
class SoFar:
    """Where a training is after a step, in the terms a budget reads: GPU-seconds are × the pod's
    GPUs, and leave out the checkpoints' pictures (billed as pictures)."""

    step: int
    gpu_seconds: float | None  # the training's GPU time so far (None: the provider bills none)
    seconds_per_step: float | None  # this process's, its pictures left out (None before a step)
    next_checkpoint: int  # the step of the next stored checkpoint (the last step at most)
    gpus: int = 1  # what `gpu_seconds` is × (seconds_per_step is the wall clock's)
    losses: Sequence[tuple[int, float]] = ()  # every step's loss so far, where the trainer has it


class Drawer(Protocol):
    """A picture maker a trainer hands its watch: an `ImageGenerator` (base.py) of the pictures it
    draws with the model it holds in memory."""

    name: str

    def generate_images(
        self, request: Any, work_dir: Path, progress: SubProgress, checkpoint: Any
    ) -> list[Any]: ...


class TrainingWatch(Protocol):
    def prompts(self) -> Sequence[str]:
        """Every prompt the watch will ask pictures of, so that a trainer can encode them before
        its text encoders go."""

    def begin(self, planned: Planned) -> None: ...

    def checkpoint(self, step: int, lora_uri: str, drawer: Drawer | None) -> Stop | None:
        """The checkpoint stored after `step` (its LoRA file, `lora_uri`): scored where the watch
        scores it, its pictures made by `drawer` (None: the trainer no longer holds that LoRA, and
        only pictures kept before are taken). A stop, or None to go on."""

    def step_ended(self, so_far: SoFar) -> Stop | None:
        """After each step: a stop asked, or a budget the next steps would pass; None to go on."""


class NothingToKeep(PermanentError):
    """A person stopped a training before it stored any checkpoint: nothing to keep. It carries the
    GPU time its steps held (None: the provider bills none) and the id it is counted under, which
    the run is billed for."""

    def __init__(self, message: str, *, gpu_seconds: float | None, request_id: str) -> None:
        super().__init__(message, reason="StoppedBeforeCheckpoint")
        self.gpu_seconds, self.request_id = gpu_seconds, request_id
