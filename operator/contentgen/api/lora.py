"""LoraTraining: a video in, a versioned LoRA out."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field

from .base import ApiModel, CelRule
from .common import Artifact, CommonSpec, CommonStatus, SourceSpec, SourceUrl, VersionBase
from .providers import provider_entry

DEFAULT_TRAINING_MODEL = "fal-ai/flux-lora-fast-training"

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


class DatasetSpec(ApiModel):
    cel_rules = (
        CelRule(
            rule=f"!has(self.minFrames) || self.minFrames <= "
            f"(has(self.maxFrames) ? self.maxFrames : {DEFAULT_MAX_FRAMES})",
            message="minFrames must not be larger than maxFrames",
            field_path=".minFrames",
            check=lambda spec: spec.min_frames is None or spec.min_frames <= spec.max_frames,
        ),
        CelRule(
            rule="!has(self.subject) || !has(self.faceFilter) || self.faceFilter",
            message="subject needs faceFilter: true (people are told apart by their faces)",
            field_path=".subject",
            check=lambda spec: spec.subject is None or spec.face_filter,
        ),
    )

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


class TrainingSpec(ApiModel):
    cel_rules = (
        CelRule(
            rule="!has(self.checkpointEvery) || self.checkpointEvery == 0 || "
            f"((has(self.steps) ? self.steps : 1000) + self.checkpointEvery - 1) / self.checkpointEvery "
            f"<= {MAX_STORED_CHECKPOINTS}",
            message=f"training.steps / training.checkpointEvery must be at most {MAX_STORED_CHECKPOINTS} "
            f"(one stored checkpoint each): make checkpointEvery at least steps / {MAX_STORED_CHECKPOINTS}, "
            "or 0 for only the last step",
            field_path=".checkpointEvery",
            check=lambda spec: (
                checkpoints_stored(spec.steps, spec.checkpoint_every) <= MAX_STORED_CHECKPOINTS
            ),
        ),
    )

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


# The likeness evaluation's prompt sets, each with its number of prompts (the prompts are in
# pipeline/likeness/prompts.py; a test checks the counts). A published set never changes.
LIKENESS_PROMPT_SETS = {"likeness-v1": 6}
LIKENESS_MODEL = "flux-lora"  # what users generate with a LoRA
LIKENESS_IMAGE_SIZE = "square"  # 512 × 512: one billed megapixel, faces large enough to recognise
LikenessPromptSet = Literal["likeness-v1"]
# The checkpoints a version's evaluation scores at most (evaluation.checkpoints) and by default.
MAX_SCORED_CHECKPOINTS = 20
DEFAULT_SCORED_CHECKPOINTS = 8
# The likeness scale's calibrated reference points (bench/likeness.py; pipeline/likeness/score.py
# checks them against its results): the median similarity of two strangers' faces and of two
# pictures of one person. A report's `percent` runs between them where it has no baseline or
# leave-one-out bound of its own.
STRANGERS_SIMILARITY = 0.08
ONE_PERSON_SIMILARITY = 0.553


def checkpoints_scored(stored: int, at_most: int) -> int:
    """How many of `stored` checkpoints an evaluation of `at_most` (evaluation.checkpoints) scores."""
    return max(1, min(stored, at_most))


Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]


# The likeness evaluation's prompt set and seeds, as a LoraTraining's evaluation and a
# LoraEvaluation (evaluation.py) ask for them.
PromptSetChoice = Annotated[
    LikenessPromptSet,
    Field(description="The versioned prompt set: portraits, contexts and two-person pictures."),
]
Seeds = Annotated[
    list[Seed], Field(min_length=1, max_length=4, description="One picture per prompt and seed.")
]


class EvaluationSpec(ApiModel):
    """The likeness evaluation of every version (docs/likeness.md): the prompt set × seeds
    generated with the new LoRA on flux-lora through the spec's provider, and once without it
    (the baseline, stored and shared per provider, prompt and seed), scored against the dataset's
    faces. Paid like any generation, and in the run's estimate and cost."""

    enabled: bool = Field(
        default=True,
        description="Evaluate each new version; false skips it (no pictures are generated or paid for).",
    )
    prompt_set: PromptSetChoice = "likeness-v1"
    seeds: Seeds = [1, 2]
    checkpoints: Annotated[
        int,
        Field(
            ge=1,
            le=MAX_SCORED_CHECKPOINTS,
            description="Where the trainer stores checkpoints (provider cluster: training.checkpointEvery), "
            "score at most this many of them, spread evenly over the training with the last always "
            "among them, and make the best-scoring one the version's model (docs/likeness.md); each "
            "costs the prompt set × seeds pictures again. 1: only the last step, which is then the "
            "model. Providers without checkpoints (fal, offline): the one LoRA.",
        ),
    ] = DEFAULT_SCORED_CHECKPOINTS


# The training fields only provider cluster reads (fal's trainer and the offline placeholder ignore
# them): each refused with another provider unless it is its default, so a manifest never asks for
# what it would not get. (the field, its attribute, its default as CEL writes it, the default)
CLUSTER_ONLY_TRAINING: tuple[tuple[str, str, str, Any], ...] = (
    ("memoryPlan", "memory_plan", "'auto'", "auto"),
    ("loraTargets", "lora_targets", "'attention+feedforward'", "attention+feedforward"),
    ("guidance", "guidance", "1.0", 1.0),
    ("timestepSampling", "timestep_sampling", "'shift'", "shift"),
    ("maxGradNorm", "max_grad_norm", "1.0", 1.0),
)


def _cluster_only_rule(field: str, attribute: str, cel_default: str, default: Any) -> CelRule:
    shown = str(default)
    return CelRule(
        rule=f"!has(self.training) || !has(self.training.{field}) || self.training.{field} == {cel_default} "
        "|| (has(self.provider) && self.provider == 'cluster')",
        message=f"training.{field} is for provider cluster (fal and offline ignore it): leave it {shown}, "
        "or use provider cluster",
        field_path=f".training.{field}",
        check=lambda spec: (
            provider_entry(spec.provider).own_gpus or getattr(spec.training, attribute) == default
        ),
    )


CLUSTER_ONLY_TRAINING_RULES = tuple(_cluster_only_rule(*entry) for entry in CLUSTER_ONLY_TRAINING)


class LoraTrainingSpec(CommonSpec):
    cel_rules = CLUSTER_ONLY_TRAINING_RULES

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
        Literal["fal", "offline", "cluster"],
        Field(
            description="fal trains on fal.ai; cluster on the cluster's own GPUs (docs/cluster-gpus.md); "
            "offline makes a labelled placeholder, for demos and CI."
        ),
    ] = "fal"
    dataset: Annotated[DatasetSpec, Field(default_factory=DatasetSpec, description="How frames are chosen.")]
    training: Annotated[
        TrainingSpec, Field(default_factory=TrainingSpec, description="How the LoRA is trained.")
    ]
    evaluation: Annotated[
        EvaluationSpec,
        Field(default_factory=EvaluationSpec, description="Whether each version looks like the person."),
    ]


Verdict = Literal["good", "poor", "no-faces", "unmeasured", "skipped"]


class CheckpointLikeness(ApiModel):
    """One point of the likeness curve: a checkpoint's LoRA evaluated as a version is (the same
    prompts, seeds and baseline), its report in brief (the whole one is its `reportUri`)."""

    step: Annotated[int, Field(ge=1, description="The training step the checkpoint was saved after.")]
    model_uri: Annotated[str, Field(description="That checkpoint's LoRA file.")] = ""
    verdict: Annotated[Verdict, Field(description="As the version's: good, poor, no-faces, ...")]
    median: Annotated[float | None, Field(description="Median similarity of the generated faces.")] = None
    percent: Annotated[
        float | None, Field(description="The median on the version's scale (likeness.percent).")
    ] = None
    above_threshold: Annotated[float | None, Field(description="Share of faces over the threshold.")] = None
    no_face_rate: Annotated[float | None, Field(description="Share of pictures without a face.")] = None
    gain: Annotated[float | None, Field(description="median - the baseline's median.")] = None
    bleed_share: Annotated[
        float | None,
        Field(description="Two-person pictures: the share whose other person looks like the subject."),
    ] = None
    copies: Annotated[int, Field(ge=0, description="Generated faces at or over the copy level.")] = 0
    sameness: Annotated[float | None, Field(description="The faces' median similarity to each other.")] = None
    reasons: Annotated[list[str], Field(description="Why its verdict is what it is.")] = []
    grid_uri: Annotated[str, Field(description="Its pictures with and without the LoRA (JPEG).")] = ""
    report_uri: Annotated[str, Field(description="Its likeness.json: every picture's score.")] = ""
    chosen: Annotated[bool, Field(description="The version's model is this checkpoint's LoRA.")] = False


class Likeness(ApiModel):
    """Does the version look like the person? Every similarity is SFace's cosine similarity of a
    generated face to the subject's dataset faces (docs/likeness.md); unset where nothing was
    measured (no face is never a made-up score)."""

    verdict: Annotated[
        Verdict,
        Field(
            description="good; poor (see reasons); no-faces (no generated picture showed a face); "
            "unmeasured (the dataset has no face embeddings: faceFilter off); skipped (see reasons)."
        ),
    ]
    reasons: Annotated[list[str], Field(description="Why the verdict is what it is.")] = []
    prompt_set: str = ""
    seeds: list[int] = []
    images: Annotated[int, Field(ge=0, description="Pictures generated with the LoRA.")] = 0
    faces: Annotated[int, Field(ge=0, description="Of them, pictures with a face.")] = 0
    no_face_rate: Annotated[float | None, Field(description="Share of pictures without a face.")] = None
    median: Annotated[float | None, Field(description="Median similarity of the generated faces.")] = None
    percent: Annotated[
        float | None,
        Field(
            description="The median on the version's own scale, not capped: 0 at baselineMedian (the "
            "base model alone; two strangers' 0.08 without one), 100 at upperBound (the subject's own "
            "photographs; one person's 0.553 without one). Over 100: more alike than the subject's "
            "photographs are to each other."
        ),
    ] = None
    above_threshold: Annotated[float | None, Field(description="Share of faces over the threshold.")] = None
    threshold: float | None = None
    baseline_median: Annotated[
        float | None, Field(description="The same prompts and seeds without the LoRA.")
    ] = None
    gain: Annotated[float | None, Field(description="median - baselineMedian.")] = None
    bleed: Annotated[
        float | None, Field(description="Two-person pictures: the other person's median similarity.")
    ] = None
    bleed_share: Annotated[float | None, Field(description="Of them, the share over the threshold.")] = None
    copy_similarity: Annotated[
        float | None, Field(description="The highest similarity of a generated face to one training image.")
    ] = None
    copy_of: Annotated[str, Field(description="That training image.")] = ""
    copies: Annotated[int, Field(ge=0, description="Generated faces at or over the copy level.")] = 0
    copied_images: Annotated[
        int, Field(ge=0, description="How many different training images those copies are of.")
    ] = 0
    sameness: Annotated[float | None, Field(description="The faces' median similarity to each other.")] = None
    baseline_sameness: Annotated[
        float | None, Field(description="The same of the pictures without the LoRA.")
    ] = None
    from_baseline: Annotated[
        float | None,
        Field(
            description="The median similarity of each generated face to the base model's face at the "
            "same prompt and seed: low where the LoRA turned the faces into someone else."
        ),
    ] = None
    upper_bound: Annotated[float | None, Field(description="The dataset's own leave-one-out similarity.")] = (
        None
    )
    grid_uri: Annotated[str, Field(description="A JPEG: every picture with and without the LoRA.")] = ""
    report_uri: Annotated[str, Field(description="likeness.json: every picture's score.")] = ""
    checkpoints: Annotated[
        list[CheckpointLikeness],
        Field(
            max_length=MAX_SCORED_CHECKPOINTS,
            description="The likeness curve: each scored checkpoint, oldest first (empty where the "
            "provider stores none); the version's own fields above are the chosen one's.",
        ),
    ] = []
    chosen_step: Annotated[
        int | None, Field(description="The checkpoint whose LoRA is the version's model (its step).")
    ] = None
    final_step: Annotated[int | None, Field(description="The training's last step.")] = None
    choice: Annotated[
        str, Field(description="Why that checkpoint is the version's model (docs/likeness.md).")
    ] = ""
    checkpoints_grid_uri: Annotated[
        str,
        Field(
            description="A JPEG of the checkpoints side by side: a row per checkpoint scored and one "
            "without the LoRA, a column per prompt and seed, each picture's similarity under it."
        ),
    ] = ""


# In a cluster, a person chooses a scored checkpoint as a LoRA version's model with an annotation
# on the LoraTraining (docs/likeness.md#choosing-a-checkpoint-yourself): JSON, version → step, or
# version → {"step", "by", "at", "note"} (what the HTTP API writes: who chose, when and why).
PROMOTED_ANNOTATION = "contentgen.io/promoted-checkpoints"


class Promotion(ApiModel):
    """A scored checkpoint a person made the version's model, over the automatic choice."""

    step: Annotated[int, Field(ge=1, description="The checkpoint chosen.")]
    model_uri: Annotated[str, Field(description="Its LoRA: what a loraRef to the version uses.")]
    automatic_step: Annotated[
        int | None, Field(description="The automatic choice (likeness.chosenStep), kept.")
    ] = None
    by: Annotated[
        str | None,
        Field(
            max_length=256,
            description="Who chose it, where the annotation's entry says (the HTTP API's caller); unset "
            "for a plain step.",
        ),
    ] = None
    at: Annotated[str | None, Field(max_length=64, description="When, where the entry says.")] = None
    note: Annotated[str | None, Field(max_length=500, description="Why, where the entry says.")] = None


def promotion_entry(raw: Any) -> tuple[int, dict[str, str]]:
    """One entry of the annotation: a step, or {"step", "by", "at", "note"}; the step and what the
    entry says of who chose, when and why (strings, cut to the status's lengths). ValueError or
    TypeError where it is neither."""
    if isinstance(raw, dict):
        said = {k: str(raw[k])[:n] for k, n in (("by", 256), ("at", 64), ("note", 500)) if raw.get(k)}
        return _step(raw.get("step")), said
    return _step(raw), {}


def _step(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise TypeError(raw)
    return int(raw)


def promotions_of(value: str | None, versions: list[dict[str, Any]]) -> tuple[dict[int, Promotion], str]:
    """The promotions the annotation PROMOTED_ANNOTATION (`value`) asks for, by version, against the
    status's `versions` (wire dicts: each scored checkpoint's LoRA is in its likeness curve), and
    what is wrong with it in one line ("" when nothing is). A version or step that cannot be
    promoted is left out; the others hold."""
    if not value:
        return {}, ""
    try:
        asked = json.loads(value)
        if not isinstance(asked, dict):
            raise ValueError
        wanted = {int(k): promotion_entry(v) for k, v in asked.items()}
    except (ValueError, TypeError):
        return {}, (
            f"annotation {PROMOTED_ANNOTATION}: {value[:80]!r} is not a JSON object of version to step, "
            'as {"2": 500}'
        )
    listed = {int(v.get("version") or 0): v for v in versions}
    found: dict[int, Promotion] = {}
    problems = []
    for number, (step, said) in sorted(wanted.items()):
        likeness = (listed.get(number) or {}).get("likeness") or {}
        curve = {int(p["step"]): str(p.get("modelUri") or "") for p in likeness.get("checkpoints") or []}
        if number not in listed:
            problems.append(f"version {number} is not listed in the status")
        elif not curve.get(step):
            shown = ", ".join(str(s) for s in sorted(curve)) or "none"
            problems.append(f"version {number} has no scored checkpoint {step} (scored: {shown})")
        else:
            found[number] = Promotion(
                step=step, model_uri=curve[step], automatic_step=likeness.get("chosenStep"), **said
            )
    problem = f"annotation {PROMOTED_ANNOTATION}: {'; '.join(problems)}" if problems else ""
    return found, problem


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
    steps: Annotated[int, Field(ge=0)] = 0
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


class DroppedScenes(ApiModel):
    """Why scenes gave no dataset image, scene by scene (each scene is counted once)."""

    too_short: Annotated[int, Field(ge=0, description="Shorter than minSceneSeconds.")] = 0
    no_face: Annotated[int, Field(ge=0, description="No face found (faceFilter).")] = 0
    blurry: Annotated[int, Field(ge=0, description="Every candidate frame was blurred.")] = 0
    dark: Annotated[int, Field(ge=0, description="Every candidate frame was too dark or too bright.")] = 0
    other_person: Annotated[
        int, Field(ge=0, description="Only another person's face was found, not the subject's.")
    ] = 0
    crowded: Annotated[
        int,
        Field(
            ge=0,
            description="The subject's face is too close to other faces for a crop that leaves them out.",
        ),
    ] = 0
    duplicate: Annotated[
        int, Field(ge=0, description="The same shot as a better image already in the dataset.")
    ] = 0
    over_max_frames: Annotated[int, Field(ge=0, description="Beyond maxFrames, the weakest left out.")] = 0

    @property
    def total(self) -> int:
        return (
            self.too_short
            + self.no_face
            + self.blurry
            + self.dark
            + self.other_person
            + self.crowded
            + self.duplicate
            + self.over_max_frames
        )


MAX_LISTED_PEOPLE = 10
# Without reference images the subject is the person with at least this many times the next
# person's prominent screen time; otherwise the run stops with SubjectAmbiguous.
SUBJECT_DOMINANCE = 1.5


class Person(ApiModel):
    """One person told apart in the video by their face."""

    number: Annotated[
        int,
        Field(
            ge=1, description="1 for the most prominent screen time (prominentSeconds), 2 for the next, ..."
        ),
    ]
    screen_seconds: Annotated[
        float,
        Field(ge=0, description="Seconds of the scenes their face is in, whoever else is in them."),
    ]
    prominent_seconds: Annotated[
        float | None,
        Field(
            ge=0,
            description="Screen time weighed by prominence, on which the subject is chosen: each scene's "
            "seconds shared among the faces in it by their height (and the part of them inside the "
            "picture): a face alone gets the whole scene, one of two of the same size half, one of five "
            "in a group shot a fifth. Unset in reports of runs made before it was measured.",
        ),
    ] = None
    scenes: Annotated[int, Field(ge=0, description="Scenes their face is in.")]
    subject: Annotated[bool, Field(description="The person the dataset shows.")] = False
    similarity: Annotated[
        float | None,
        Field(ge=-1, le=1, description="How alike their face is to the reference images (cosine, -1 to 1)."),
    ] = None


class SubjectSummary(ApiModel):
    """Who the dataset shows and how that was decided."""

    person: Annotated[int, Field(ge=1, description="The person's number in people.")]
    chosen_by: Annotated[
        Literal["screenTime", "reference"],
        Field(
            description="screenTime: clearly the most screen time weighed by prominence (people's "
            f"prominentSeconds: at least {SUBJECT_DOMINANCE:g} times the next person's); reference: "
            "dataset.subject.referenceImages."
        ),
    ]
    purity: Annotated[
        float,
        Field(
            ge=0,
            le=1,
            description="The share of dataset images whose face the embedding model takes for the "
            "subject's (compared with the subject's other faces, or the reference images).",
        ),
    ]


class DatasetSummary(ApiModel):
    """What the dataset stage found: status.dataset, also in the run's result. Its counts are
    required, so the CRD gives status.dataset no default: it is absent until a run has counted
    (a defaulted object of zeros would say "no scenes found" while the first run is going)."""

    scenes: Annotated[int, Field(ge=0, description="Scenes (shots) found in the video.")]
    candidates: Annotated[int, Field(ge=0, description="Scenes long enough to judge (minSceneSeconds).")]
    faces: Annotated[int, Field(ge=0, description="Judged scenes in which a face was found.")]
    kept: Annotated[int, Field(ge=0, description="Images in the dataset.")]
    min_frames: Annotated[int, Field(ge=0, description="The least the run accepted.")]
    dropped: Annotated[DroppedScenes, Field(description="Scenes left out, by reason.")]
    people_found: Annotated[
        int, Field(ge=0, description="People told apart by their faces (faceFilter).")
    ] = 0
    people: Annotated[
        list[Person],
        Field(
            max_length=MAX_LISTED_PEOPLE,
            description="The people found, most prominent screen time first (the first "
            f"{MAX_LISTED_PEOPLE}).",
        ),
    ] = []
    subject: Annotated[
        SubjectSummary | None, Field(description="Who the dataset shows; unset without faceFilter.")
    ] = None
    contact_sheet_uri: Annotated[
        str | None,
        Field(
            description="When the run stopped at the subject (SubjectAmbiguous, SubjectNotFound): a "
            "JPEG with one face of each person found, numbered as in people."
        ),
    ] = None


class LoraTrainingStatus(CommonStatus):
    latest_version: Annotated[int, Field(ge=0, description="The newest version; 0 before the first.")] = 0
    promotion_problem: Annotated[
        str,
        Field(
            max_length=1024,
            description="What is wrong with the annotation contentgen.io/promoted-checkpoints (the "
            "versions it names that cannot be promoted are left as they are); empty when nothing is.",
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


class DatasetImage(ApiModel):
    uri: str
    time: Annotated[float, Field(ge=0, description="Seconds into the source.")]
    scene: Annotated[int, Field(ge=0)]
    width: int
    height: int
    sharpness: float
    face: bool
    caption: str = ""


class Scene(ApiModel):
    start: Annotated[float, Field(ge=0, description="Seconds into the source.")]
    end: Annotated[float, Field(ge=0)]


class Captioning(ApiModel):
    """Who wrote the captions."""

    mode: Literal["template", "auto"] = "template"
    provider: str = ""
    model: str = ""
    placeholder: bool = Field(default=False, description="True when the offline provider wrote them.")
    cost_usd: float = Field(default=0.0, ge=0, description="What the provider reported charging (auto).")


class DatasetReport(ApiModel):
    """What the dataset stage found and chose (the run result's `dataset`)."""

    frames: int
    scenes: list[Scene]
    images: list[DatasetImage]
    archive: Artifact | None = None
    contact_sheet: Artifact | None = None
    summary: DatasetSummary | None = None
    captioning: Captioning | None = None


__all__ = [
    "LIKENESS_IMAGE_SIZE",
    "LIKENESS_MODEL",
    "LIKENESS_PROMPT_SETS",
    "Captioning",
    "CheckpointLikeness",
    "DatasetImage",
    "DatasetReport",
    "DatasetSpec",
    "DatasetSummary",
    "DroppedScenes",
    "EvaluationSpec",
    "Likeness",
    "LoraTrainingSpec",
    "LoraTrainingStatus",
    "LoraVersion",
    "Person",
    "Scene",
    "SubjectSpec",
    "SubjectSummary",
    "TrainingSpec",
]
