"""The likeness evaluation of a LoRA version (docs/likeness.md): what a spec asks for and the
report it makes, with the scale's calibrated reference points."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ..base import ApiModel

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


Verdict = Literal["good", "poor", "no-faces", "unmeasured", "skipped"]
ClipFrames = Annotated[
    int,
    Field(
        ge=0,
        description="A video LoRA's: each picture is this many frames sampled across one clip, first to "
        "last, scored as its median frame (docs/likeness.md#a-video-loras-likeness); 0: pictures.",
    ),
]


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
    clip_frames: ClipFrames = 0
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
    clip_frames: ClipFrames = 0
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
