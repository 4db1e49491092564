"""When a LoRA training ends before its last step, and where a training goes on from
(docs/cluster-training.md#stopping-early, #continuing-a-training): what a spec asks for
(`training.stopWhen`, `training.continueFrom`), the annotation a person stops a running training
with, and what a version says of it (`stopped`, `continuedFrom`).

A training stops at a step boundary and keeps its best-scoring checkpoint so far as the version's
model, billed for the steps it ran: on a likeness plateau (`stopWhen.likenessPlateau`), where its
cost would pass a budget (`stopWhen.maxCostUsd`, or what the monthly budgets leave it), or when a
person asks (`contentgen.io/stop: keep-best`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ..base import ApiModel

# A person stops a LoraTraining's run and keeps its best checkpoint so far: this annotation on the
# LoraTraining with a value of STOP_VALUES (kubectl annotate, the HTTP API, the web UI). The
# operator refuses another value (StopRefused, status.stopProblem) and removes the annotation once
# no run is under way (the run it stopped has ended, or there was none to stop).
STOP_ANNOTATION = "contentgen.io/stop"
KEEP_BEST = "keep-best"
STOP_VALUES = (KEEP_BEST,)

# stopWhen.likenessPlateau's suggested patience (a required field, so that the CRD defaults no
# plateau into a spec that asks for none) and default gain: docs/performance.md#early-stop
DEFAULT_PATIENCE = 2
DEFAULT_MIN_GAIN = 0.01
MAX_PATIENCE = 19  # one fewer than the most checkpoints an evaluation scores


class LikenessPlateau(ApiModel):
    """Stop once the likeness has stopped rising: `patience` scored checkpoints in a row without a
    median at least `minGain` over the best so far."""

    patience: Annotated[
        int,
        Field(
            ge=1,
            le=MAX_PATIENCE,
            description="Scored checkpoints in a row that must fail to beat the best so far by minGain "
            f"before the training stops (evaluation.checkpoints spreads them over the training); "
            f"{DEFAULT_PATIENCE} is what the measurements of docs/performance.md#early-stop suggest.",
        ),
    ]
    min_gain: Annotated[
        float,
        Field(
            ge=0,
            le=0.5,
            description="How much a checkpoint's median similarity must rise over the best so far to "
            "count as better (SFace cosine similarity; the likeness scale's strangers are at 0.08, one "
            "person at 0.553).",
        ),
    ] = DEFAULT_MIN_GAIN


class StopWhen(ApiModel):
    """When a training stops before its last step, keeping its best-scoring checkpoint so far."""

    likeness_plateau: Annotated[
        LikenessPlateau | None,
        Field(
            description="Stop when the checkpoints' likeness stops rising (needs the likeness evaluation). "
            "Unset: every step runs."
        ),
    ] = None
    max_cost_usd: Annotated[
        float | None,
        Field(
            gt=0,
            le=100000,
            description="Stop, keeping what it has, before the run's cost (its GPU time and the checkpoints' "
            "pictures, at the price table's prices) would pass this many USD. The monthly budgets stop a "
            "run the same way where its actual cost would pass what they leave it.",
        ),
    ] = None


class ContinueFrom(ApiModel):
    """Go on training from a version of this LoraTraining: its LoRA, optimizer state and random
    generator as its training left them, for `training.steps` more steps."""

    version: Annotated[
        int, Field(ge=1, description="The version to go on from (it must have kept its state).")
    ]
    step: Annotated[
        int | None,
        Field(
            ge=1,
            description="One of that version's stored checkpoints to go on from (its step). Unset: the "
            "step its training ended at.",
        ),
    ] = None


StopHow = Literal["plateau", "budget", "asked"]


class TrainingStop(ApiModel):
    """Why and where a training ended before the last step its spec asked for, and what that saved."""

    how: Annotated[
        StopHow,
        Field(
            description="plateau: the likeness stopped rising (stopWhen.likenessPlateau); budget: the next "
            "steps would have cost more than a budget leaves; asked: a person stopped it "
            "(contentgen.io/stop: keep-best)."
        ),
    ]
    step: Annotated[int, Field(ge=0, description="The last step trained.")]
    planned_steps: Annotated[int, Field(ge=0, description="The step the training would have ended at.")]
    why: Annotated[str, Field(max_length=1024, description="Why it stopped, in one sentence.")] = ""
    by: Annotated[str, Field(max_length=256, description="Who asked (asked), where known.")] = ""
    steps_saved: Annotated[int, Field(ge=0, description="Steps not run.")] = 0
    gpu_seconds_saved: Annotated[
        float | None,
        Field(
            ge=0,
            description="The GPU time the steps not run and the checkpoints not scored would have held, "
            "at the rate measured so far (× the pod's GPUs); unset where the provider bills no GPU time.",
        ),
    ] = None
    saved_usd: Annotated[
        float | None, Field(ge=0, description="That GPU time at the price table's GPU-hour price.")
    ] = None


class ContinuedFrom(ApiModel):
    """The version a training went on from (spec.training.continueFrom): its lineage."""

    version: Annotated[int, Field(ge=1, description="The version it continued.")]
    step: Annotated[int, Field(ge=1, description="The step of that version's state it went on after.")]
    state_uri: Annotated[str, Field(description="That training state.")] = ""
    changed: Annotated[
        list[Annotated[str, Field(max_length=256)]],
        Field(
            max_length=16,
            description="What this training changed of the settings the version it went on from was "
            "trained with, each applied (learningRate 0.0001 -> 5e-05): learningRate, maxGradNorm, "
            "timestepSampling, guidance, resolution and batchSize may change; the base model, rank, "
            "loraTargets, optimizer and memoryPlan may not (docs/cluster-training.md#continuing-a-training).",
        ),
    ] = []
