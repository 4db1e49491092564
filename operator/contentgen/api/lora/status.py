"""What a LoraTraining made: its versions (each a trained LoRA, its loss curve, likeness and any
promotion) and the latest run's dataset."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ..base import ApiModel, Timestamp
from ..common import CommonStatus, LatestVersion, VersionBase
from .dataset import DatasetSummary
from .likeness import MAX_SCORED_CHECKPOINTS, CheckpointLikeness, Likeness
from .promotion import Promotion
from .stopping import ContinuedFrom, TrainingStop
from .verdict import VerdictChoice

MAX_LOSS_POINTS = 64


class LossPoint(ApiModel):
    step: Annotated[int, Field(ge=1)]
    loss: float


def loss_curve(steps: list[tuple[int, float]], points: int = MAX_LOSS_POINTS) -> list[LossPoint]:
    """Every step's loss as at most `points` points: each the mean of a run of consecutive steps,
    at the last of them (a curve people can read, from the thousands of steps of a training)."""
    if not steps:
        return []
    size = -(-len(steps) // points)  # steps per point, rounded up
    runs = [steps[i : i + size] for i in range(0, len(steps), size)]
    return [LossPoint(step=run[-1][0], loss=round(sum(v for _, v in run) / len(run), 6)) for run in runs]


class LoraVersion(VersionBase):
    """One trained model. Editing the spec of a LoraTraining trains a new version."""

    model_uri: Annotated[
        str,
        Field(
            description="The weights (model.safetensors): the chosen checkpoint's LoRA where the trainer "
            "stores checkpoints."
        ),
    ]
    final_model_uri: Annotated[
        str,
        Field(
            description="The last step's LoRA (checkpoints/step-NNNNNN.safetensors) where another checkpoint "
            "was chosen; the same as modelUri otherwise."
        ),
    ] = ""
    chosen_step: Annotated[
        int | None,
        Field(description="Where the trainer stores checkpoints: the step whose LoRA modelUri is."),
    ] = None
    config_uri: Annotated[str, Field(description="The training config (config.json).")] = ""
    size_bytes: Annotated[int, Field(ge=0)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    dataset_uri: Annotated[str, Field(description="The dataset archive it was trained on.")] = ""
    source_url: Annotated[str, Field(description="The video the dataset was made from.")] = ""
    contact_sheet_uri: Annotated[
        str, Field(description="One JPEG showing every dataset image with its time in the video.")
    ] = ""
    contact_sheet_thumbnail_uri: Annotated[str, Field(description="A small JPEG of the contact sheet.")] = ""
    frames: Annotated[int, Field(ge=0, description="Images in the dataset.")] = 0
    trigger_word: str
    training_model: str = ""
    base_model: Annotated[
        str, Field(description="What the LoRA is made for (training.baseModel); empty: flux.1.")
    ] = ""
    low_noise_model_uri: Annotated[
        str,
        Field(
            description="Wan 2.2 A14B, trained as two LoRAs: the low-noise expert's "
            "(model-low-noise.safetensors); modelUri is then the high-noise expert's."
        ),
    ] = ""
    steps: Annotated[
        int,
        Field(ge=0, description="The steps it trained: fewer than plannedSteps where it stopped early."),
    ] = 0
    planned_steps: Annotated[
        int, Field(ge=0, description="The steps it was asked to train (training.steps).")
    ] = 0
    memory_plan: Annotated[
        str,
        Field(
            max_length=300,
            description="provider cluster: the memory plan it was trained with (training.memoryPlan, or "
            "what auto chose on the card), with the estimate and the free memory it was chosen on.",
        ),
    ] = ""
    likeness: Annotated[
        Likeness | None, Field(description="Whether it looks like the person (spec.evaluation).")
    ] = None
    loss_uri: Annotated[
        str,
        Field(
            description="provider cluster: training-loss.json, the training's loss at every step "
            '({"steps": [[step, loss], ...]}, a retried pod\'s earlier steps included).'
        ),
    ] = ""
    training_loss: Annotated[
        list[LossPoint],
        Field(
            max_length=MAX_LOSS_POINTS,
            description="provider cluster: the training loss as a curve of at most 64 points, each the mean "
            "of the steps up to its own since the one before (every step's is in lossUri).",
        ),
    ] = []
    promotion: Annotated[
        Promotion | None,
        Field(
            description="In a cluster: the checkpoint a person made the model (the annotation "
            "contentgen.io/promoted-checkpoints); a loraRef to the version uses its LoRA, not modelUri."
        ),
    ] = None
    verdict_choice: Annotated[
        VerdictChoice | None,
        Field(
            description="In a cluster: the evaluation a person made the version's verdict (the annotation "
            "contentgen.io/verdicts); the catalog's record shows that evaluation's report as the version's "
            "likeness."
        ),
    ] = None
    stopped: Annotated[
        TrainingStop | None,
        Field(
            description="Where its training ended before the last step the spec asked for: a likeness "
            "plateau, a budget or a person's stop (docs/cluster-training.md#stopping-early); its model is "
            "the best-scoring checkpoint so far, and it was billed for the steps it ran. Unset: every step "
            "ran."
        ),
    ] = None
    continued_from: Annotated[
        ContinuedFrom | None,
        Field(description="The version its training went on from (spec.training.continueFrom): its lineage."),
    ] = None
    state_uri: Annotated[
        str,
        Field(
            description="The training state kept with the version (checkpoints/step-NNNNNN.pt, written once: "
            "the LoRA, the optimizer's moments, the step, the random generator) of the step its training "
            "ended at, which training.continueFrom goes on from; empty where the trainer keeps none."
        ),
    ] = ""


class TrainingRun(ApiModel):
    """The training under way (or the last one, once it ended), as its worker reports it between
    steps: where it is, its loss, its checkpoints' likeness as each is scored, and its stop."""

    version: Annotated[int, Field(ge=0, description="The version the run makes.")]
    step: Annotated[int, Field(ge=0, description="The last step trained.")] = 0
    steps: Annotated[int, Field(ge=0, description="The step it ends at unless it stops early.")] = 0
    first_step: Annotated[
        int, Field(ge=0, description="The step it started after (continueFrom's, or a retried pod's 0).")
    ] = 0
    seconds_per_step: Annotated[float | None, Field(ge=0, description="Measured so far.")] = None
    eta_seconds: Annotated[
        float | None, Field(ge=0, description="The steps left at that rate, and their checkpoints' pictures.")
    ] = None
    loss: Annotated[
        list[LossPoint],
        Field(max_length=MAX_LOSS_POINTS, description="The training loss so far, as at most 64 points."),
    ] = []
    checkpoints: Annotated[
        list[CheckpointLikeness],
        Field(
            max_length=MAX_SCORED_CHECKPOINTS,
            description="Each checkpoint scored so far, oldest first, as the version's likeness curve will "
            "hold it; `chosen` marks the best so far.",
        ),
    ] = []
    best_step: Annotated[int | None, Field(description="The best-scoring checkpoint so far.")] = None
    stop_asked: Annotated[
        str,
        Field(
            max_length=256,
            description="A stop the worker has seen asked (contentgen.io/stop), followed at the next step "
            "boundary.",
        ),
    ] = ""
    stop: Annotated[TrainingStop | None, Field(description="Where and why it stopped early.")] = None
    updated_at: Annotated[Timestamp, Field(description="When the worker last reported.")] | None = None


class LoraTrainingStatus(CommonStatus):
    latest_version: LatestVersion = 0
    promotion_problem: Annotated[
        str,
        Field(
            max_length=1024,
            description="What is wrong with the annotation contentgen.io/promoted-checkpoints (the "
            "versions it names that cannot be promoted are left as they are); empty when nothing is.",
        ),
    ] = ""
    verdict_problem: Annotated[
        str,
        Field(
            max_length=1024,
            description="What is wrong with the annotation contentgen.io/verdicts (the versions it names "
            "whose evaluation cannot be a verdict are left as they are); empty when nothing is.",
        ),
    ] = ""
    stop_problem: Annotated[
        str,
        Field(
            max_length=1024,
            description="What is wrong with the annotation contentgen.io/stop (its value is not keep-best); "
            "empty when nothing is.",
        ),
    ] = ""
    likeness: Annotated[
        Likeness | None,
        Field(description="The newest version's likeness report (its versions[] entry has it too)."),
    ] = None
    versions: Annotated[
        list[LoraVersion],
        Field(
            description="The newest 100 versions, oldest first (olderVersions counts the rest; the catalog "
            "keeps every one); a LoRA version older than the newest 10 shows no likeness report here."
        ),
    ] = []
    dataset: Annotated[
        DatasetSummary | None,
        Field(description="The latest run's dataset: scenes found, kept, and dropped by reason."),
    ] = None
    training: Annotated[
        TrainingRun | None,
        Field(
            description="The training under way, live (its step, loss, checkpoints' likeness as each is "
            "scored, a stop asked), or the last one once it ended; `likeness` stays the newest version's "
            "report."
        ),
    ] = None
