"""LoraTraining's spec: the video to learn from, how its frames become a dataset, how the LoRA is
trained (and which of that only provider cluster reads), and its likeness evaluation (likeness.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ..base import ApiModel, CelRule
from ..base_models import BASE_MODEL_RULES, DEFAULT_FAL_TRAINER, BaseModelField
from ..common import CommonSpec, SourceSpec, SourceUrl
from ..providers import OWN_GPUS, PICTURES_DEFAULT, TRAINS_LIVE, PictureProvider
from ..rules import (
    Absent,
    AtDefault,
    Equals,
    Is,
    NotAbove,
    Rule,
    SpecField,
    Unset,
    ValueIs,
    Written,
    generate,
)
from .clips import ClipsField, MediaField
from .likeness import EvaluationSpec
from .resources import CLUSTER_RESOURCES_RULES, PROVIDER, ResourcesField
from .stopping import ContinueFrom, StopWhen

DEFAULT_TRAINING_MODEL = DEFAULT_FAL_TRAINER

DEFAULT_MIN_FRAMES = 10
# The vision-language app that writes captions on fal (captioning: auto), one request per image.
FAL_CAPTION_APP = "openrouter/router/vision"
DEFAULT_MAX_FRAMES = 40

CaptionTemplate = Annotated[
    str,
    Field(
        min_length=1,
        max_length=300,
        description="The caption of every dataset image: {trigger} becomes the trigger word; with "
        "captioning auto, {caption} becomes the vision model's description (appended after a comma "
        "when the template has no {caption}).",
    ),
    CelRule(
        rule="self.contains('{trigger}')",
        message="must contain {trigger}, where the trigger word goes",
        check=lambda value: "{trigger}" in value,
    ),
]


MAX_REFERENCE_IMAGES = 5
# A reference photo's URL: the same rule as source.url, described as what it is.
ReferenceImageUrl = Annotated[
    SourceUrl,
    Field(
        description="Where to fetch one photo of the person (JPEG, PNG or WebP): an http://, https:// "
        "or s3://bucket/key URL, like source.url."
    ),
]


class SubjectSpec(ApiModel):
    reference_images: Annotated[
        list[ReferenceImageUrl],
        Field(
            min_length=1,
            max_length=MAX_REFERENCE_IMAGES,
            description="Photos of the person to train on (http(s):// or s3:// URLs, like source.url; "
            "one face each, the largest counts): the dataset keeps the person in the video who looks "
            "like them.",
        ),
    ]


MIN_FRAMES = SpecField("minFrames", "integer")
SUBJECT = SpecField("subject", "object")
DATASET_RULES = (
    generate(
        Rule(
            MIN_FRAMES,
            "minFrames must not be larger than maxFrames",
            (Absent(MIN_FRAMES), NotAbove(MIN_FRAMES, SpecField("maxFrames", "integer", DEFAULT_MAX_FRAMES))),
        )
    ),
    generate(
        Rule(
            SUBJECT,
            "subject needs faceFilter: true (people are told apart by their faces)",
            (Absent(SUBJECT), AtDefault(SpecField("faceFilter", "boolean", True))),
        )
    ),
)


class DatasetSpec(ApiModel):
    cel_rules = tuple(r.cel for r in DATASET_RULES)

    max_frames: Annotated[
        int, Field(ge=4, le=200, description="At most this many images in the dataset (one per scene).")
    ] = DEFAULT_MAX_FRAMES
    min_frames: (
        Annotated[
            int,
            Field(
                ge=4,
                le=200,
                description=f"Fewer usable images than this fail the run (DatasetTooSmall) before "
                f"anything is uploaded or paid for; at most maxFrames. Unset: {DEFAULT_MIN_FRAMES}, "
                "or maxFrames when that is smaller.",
            ),
        ]
        | None
    ) = None
    min_scene_seconds: Annotated[
        float, Field(ge=0.2, le=60, description="Scenes shorter than this many seconds are skipped.")
    ] = 1.0
    face_filter: Annotated[
        bool,
        Field(
            description="Use only scenes that show the subject's face (frontal, turned or in profile; its "
            "height at least 15 % of the picture's shorter side) and crop around it; turn off for "
            "subjects without a face (then no one is told apart)."
        ),
    ] = True
    subject: Annotated[
        SubjectSpec | None,
        Field(
            description="Whose face the dataset shows (faceFilter). Unset: the person with clearly the "
            "most screen time."
        ),
    ] = None
    caption_template: CaptionTemplate = "a photo of {trigger}"
    captioning: Annotated[
        Literal["template", "auto"],
        Field(
            description="template: every image gets captionTemplate; auto: a vision-language model "
            "describes each image through the provider (paid on fal, checkpointed), put into the template."
        ),
    ] = "template"
    media: MediaField = "auto"
    clips: ClipsField

    @property
    def least_frames(self) -> int:
        """The fewest images a run accepts: minFrames, or its default (10, at most maxFrames)."""
        return self.min_frames if self.min_frames is not None else min(DEFAULT_MIN_FRAMES, self.max_frames)


# A training stores a state (the LoRA and its optimizer's moments, a few hundred MB on a real
# FLUX) per checkpoint: at most this many (`checkpoints_stored`).
MAX_STORED_CHECKPOINTS = 50


def checkpoints_stored(steps: int, every: int) -> int:
    """How many checkpoints a training of `steps` stores with `checkpointEvery` `every`: every
    `every`-th step and the last, so ceil(steps / every); 0 (or more than steps) stores the last."""
    return 1 if every <= 0 or every >= steps else -(-steps // every)


CHECKPOINT_EVERY = SpecField("checkpointEvery", "integer", 250)
TRAINING_RULES = (
    generate(
        Rule(
            CHECKPOINT_EVERY,
            f"training.steps / training.checkpointEvery must be at most {MAX_STORED_CHECKPOINTS} "
            f"(one stored checkpoint each): make checkpointEvery at least steps / {MAX_STORED_CHECKPOINTS}, "
            "or 0 for only the last step",
            (
                Absent(CHECKPOINT_EVERY),
                ValueIs(CHECKPOINT_EVERY, 0),
                Written(
                    "((has(self.steps) ? self.steps : 1000) + self.checkpointEvery - 1) "
                    f"/ self.checkpointEvery <= {MAX_STORED_CHECKPOINTS}",
                    lambda spec: (
                        checkpoints_stored(spec.steps, spec.checkpoint_every) <= MAX_STORED_CHECKPOINTS
                    ),
                ),
            ),
        )
    ),
)


class TrainingSpec(ApiModel):
    cel_rules = tuple(r.cel for r in TRAINING_RULES)

    base_model: BaseModelField = "flux.1"

    model: Annotated[
        str,
        Field(
            min_length=1,
            max_length=200,
            description="The provider's training model; with provider cluster, the base model's directory "
            "under the cluster's models root (FLUX.1-dev, say), and fal's default means the cluster's "
            "default (CONTENTGEN_CLUSTER_FLUX_MODEL).",
        ),
    ] = DEFAULT_TRAINING_MODEL
    steps: Annotated[int, Field(ge=100, le=10000, description="Training steps.")] = 1000
    learning_rate: (
        Annotated[float, Field(gt=0, le=0.01, description="Learning rate; the model's default when unset.")]
        | None
    ) = None
    rank: Annotated[
        int, Field(ge=1, le=128, description="provider cluster: the LoRA's rank (alpha is the same).")
    ] = 16
    resolution: Annotated[
        int,
        Field(
            ge=256,
            le=1024,
            multiple_of=64,
            description="provider cluster: the side of the square the pictures are trained at.",
        ),
    ] = 512
    checkpoint_every: Annotated[
        int,
        Field(
            ge=0,
            le=10000,
            description="provider cluster (offline: simulated, placeholder LoRAs): store a checkpoint every "
            "this many steps (and at the last); "
            "a retried pod resumes from the newest, and the likeness evaluation scores them "
            f"(evaluation.checkpoints). 0 (or more than steps): only the last step. At most "
            f"{MAX_STORED_CHECKPOINTS} checkpoints: steps / checkpointEvery ≤ {MAX_STORED_CHECKPOINTS}.",
        ),
    ] = 250
    optimizer: Annotated[
        Literal["adamw", "adamw8bit"],
        Field(
            description="provider cluster: AdamW, or 8-bit AdamW (bitsandbytes' AdamW8bit: its moments in "
            "8 bits, a quarter of the memory) for smaller GPUs."
        ),
    ] = "adamw"
    memory_plan: Annotated[
        Literal["auto", "bf16", "int8", "fp8", "nf4"],
        Field(
            description="provider cluster: how the base model is held on the GPU. auto: bf16 where it fits "
            "the card's free memory, else an 8-bit base (fp8 on Ada and Hopper, int8 before them; torchao "
            "weight-only), else a 4-bit NF4 base (bitsandbytes, QLoRA); a named plan is used as it is. A "
            "plan that cannot fit fails before any GPU time (GpuMemoryTooSmall, with the numbers); the "
            "version records the plan used (memoryPlan)."
        ),
    ] = "auto"
    lora_targets: Annotated[
        Literal["attention", "attention+feedforward", "all-linear"],
        Field(
            description="provider cluster: the layers the LoRA adapts. attention: every attention "
            "projection (266 layers on FLUX.1-dev); attention+feedforward: and the double blocks' "
            "feed-forward layers, as diffusers' FLUX example (342); all-linear: every linear layer of the "
            "blocks, as ai-toolkit (494)."
        ),
    ] = "attention+feedforward"
    guidance: Annotated[
        float,
        Field(
            ge=0,
            le=10,
            description="provider cluster: the distilled guidance FLUX.1-dev is given while it trains (1.0, "
            "as diffusers' FLUX example's and ai-toolkit's recommended settings; pictures are still drawn at "
            "3.5). Models without guidance embedding (schnell) ignore it.",
        ),
    ] = 1.0
    timestep_sampling: Annotated[
        Literal["shift", "logit-normal", "uniform"],
        Field(
            description="provider cluster: how each step's noise level is drawn. shift: uniform, shifted by "
            "FLUX's resolution-dependent shift (the noise levels its sampler spends its steps at, at the "
            "training resolution; kohya's flux_shift); logit-normal: diffusers' logit_normal weighting "
            "(mean 0, std 1; ai-toolkit's sigmoid); uniform: the scheduler's training schedule, uniformly."
        ),
    ] = "shift"
    max_grad_norm: Annotated[
        float,
        Field(
            ge=0,
            le=100,
            description="provider cluster: clip the LoRA's gradient to this norm before each step (1.0, as "
            "diffusers' FLUX example); 0 does not clip.",
        ),
    ] = 1.0
    batch_size: (
        Annotated[
            int,
            Field(
                ge=1,
                le=64,
                description="provider cluster: pictures each step learns from, shared among the training's "
                "GPUs (resources.gpus × resources.nodes; at least one each); unset: one per GPU. The same "
                "batch gives the same LoRA on any number of GPUs.",
            ),
        ]
        | None
    ) = None
    stop_when: Annotated[
        StopWhen | None,
        Field(
            description="provider cluster (offline: simulated): stop before the last step, keeping the "
            "best-scoring checkpoint so far as the version's model and billed for the steps run: when the "
            "likeness stops rising (likenessPlateau), or before the run's cost would pass maxCostUsd "
            "(docs/cluster-training.md#stopping-early). Unset: every step runs.",
        ),
    ] = None
    continue_from: Annotated[
        ContinueFrom | None,
        Field(
            description="provider cluster (offline: simulated): go on from a version of this LoraTraining, "
            "its LoRA and optimizer state as its training left them, for `steps` more steps, numbered on "
            "from its last; the same base model, rank, loraTargets, optimizer and memory plan "
            "(docs/cluster-training.md#continuing-a-training).",
        ),
    ] = None


# The training fields only provider cluster reads (fal's trainer and the offline placeholder ignore
# them): each refused with another provider unless it is its default, so a manifest never asks for
# what it would not get. (the field, its default)
CLUSTER_ONLY_TRAINING: tuple[tuple[str, Any], ...] = (
    ("memoryPlan", "auto"),
    ("loraTargets", "attention+feedforward"),
    ("guidance", 1.0),
    ("timestepSampling", "shift"),
    ("maxGradNorm", 1.0),
)


def _cluster_only_rule(field: str, default: Any) -> Rule:
    training = SpecField(f"training.{field}", "number" if isinstance(default, float) else "string", default)
    return Rule(
        training,
        f"{training.name} is for provider cluster (fal and offline ignore it): leave it {default}, "
        "or use provider cluster",
        (AtDefault(training), Is(PROVIDER, OWN_GPUS)),
    )


BATCH = SpecField("training.batchSize", "integer")
CLUSTER_ONLY_TRAINING_RULES = (
    *(generate(_cluster_only_rule(*entry)) for entry in CLUSTER_ONLY_TRAINING),
    generate(
        Rule(
            BATCH,
            "training.batchSize is for provider cluster (fal and offline ignore it): remove it, or use "
            "provider cluster",
            (Unset(BATCH), Is(PROVIDER, OWN_GPUS)),
        )
    ),
)


def _trains_live_rule(field: str, what: str) -> Rule:
    training = SpecField(f"training.{field}", "object")
    return Rule(
        training,
        f"{training.name} needs provider cluster, whose trainer {what} (fal's trainer returns one LoRA at "
        "the end; offline simulates it): remove it, or use provider cluster",
        (Unset(training), Equals(PROVIDER, TRAINS_LIVE)),
    )


PLATEAU = SpecField("training.stopWhen.likenessPlateau", "object")
# training.stopWhen and continueFrom with the providers whose trainers score checkpoints as they
# train (api/providers.py `trains_live`), and a plateau of the likeness with its evaluation on
LIVE_TRAINING_RULES = (
    generate(_trains_live_rule("stopWhen", "scores checkpoints as it trains and can stop between steps")),
    generate(_trains_live_rule("continueFrom", "keeps its training state with each version")),
    generate(
        Rule(
            PLATEAU,
            "training.stopWhen.likenessPlateau needs the likeness evaluation (evaluation.enabled: true): "
            "the plateau is of the checkpoints' likeness",
            (Unset(PLATEAU), AtDefault(SpecField("evaluation.enabled", "boolean", True))),
        )
    ),
)


class LoraTrainingSpec(CommonSpec):
    cel_rules = tuple(
        r.cel
        for r in (
            *CLUSTER_ONLY_TRAINING_RULES,
            *BASE_MODEL_RULES,
            *LIVE_TRAINING_RULES,
            *CLUSTER_RESOURCES_RULES,
        )
    )

    source: Annotated[SourceSpec, Field(description="The video to learn from.")]
    trigger_word: Annotated[
        str,
        Field(
            min_length=1,
            max_length=32,
            pattern=r"^[A-Za-z0-9_-]{1,32}$",
            description="The word that invokes the LoRA in prompts (1-32 of A-Z, a-z, 0-9, _ and -).",
        ),
    ]
    provider: Annotated[
        PictureProvider,
        Field(
            description="fal trains on fal.ai; cluster on the cluster's own GPUs (docs/cluster-gpus.md); "
            "offline makes a labelled placeholder, for demos and CI."
        ),
    ] = PICTURES_DEFAULT
    dataset: Annotated[DatasetSpec, Field(default_factory=DatasetSpec, description="How frames are chosen.")]
    training: Annotated[
        TrainingSpec, Field(default_factory=TrainingSpec, description="How the LoRA is trained.")
    ]
    evaluation: Annotated[
        EvaluationSpec,
        Field(default_factory=EvaluationSpec, description="Whether each version looks like the person."),
    ]
    resources: ResourcesField
