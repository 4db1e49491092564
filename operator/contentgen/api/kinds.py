"""The kinds: names, models and how kubectl shows them."""

from __future__ import annotations

from dataclasses import dataclass

from .common import CommonSpec, CommonStatus
from .evaluation import LoraEvaluationSpec, LoraEvaluationStatus
from .image import ImageGenerationSpec, ImageGenerationStatus
from .lora import LoraTrainingSpec, LoraTrainingStatus
from .transcription import TranscriptionSpec, TranscriptionStatus
from .video import VideoGenerationSpec, VideoGenerationStatus

GROUP = "contentgen.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "contentgen"


@dataclass(frozen=True)
class Column:
    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short_names: tuple[str, ...]
    catalog_type: str  # the type name in the catalog and in `contentgen assets --type`
    spec: type[CommonSpec]
    status: type[CommonStatus]
    description: str
    columns: tuple[Column, ...]

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


def _columns(*specific: Column) -> tuple[Column, ...]:
    return (
        Column("Owner", ".spec.owner", description="The user the assets belong to."),
        *specific,
        Column("Phase", ".status.phase", description="Pending, Running, Succeeded or Failed."),
        Column("Progress", ".status.progress", "integer", "Percent done."),
        Column("Stage", ".status.stage", description="The stage now running.", priority=1),
        Column("Message", ".status.message", description="What is happening.", priority=1),
        Column("Age", ".metadata.creationTimestamp", "date"),
    )


LORA_TRAINING = Kind(
    kind="LoraTraining",
    plural="loratrainings",
    short_names=("lora", "lt"),
    catalog_type="lora-training",
    spec=LoraTrainingSpec,
    status=LoraTrainingStatus,
    description="Trains a LoRA from the scenes of a video; every spec change trains a new version.",
    columns=_columns(
        Column("Trigger", ".spec.triggerWord", description="The trigger word."),
        Column("Version", ".status.latestVersion", "integer", "The newest trained version."),
        Column(
            "Likeness",
            ".status.likeness.verdict",
            description="Whether the newest version looks like the person.",
        ),
        Column(
            "Similarity",
            ".status.likeness.median",
            "number",
            "The newest version's median face similarity to the person.",
            priority=1,
        ),
    ),
)
IMAGE_GENERATION = Kind(
    kind="ImageGeneration",
    plural="imagegenerations",
    short_names=("imggen", "ig"),
    catalog_type="image-generation",
    spec=ImageGenerationSpec,
    status=ImageGenerationStatus,
    description="Generates images from a prompt, optionally with trained LoRAs.",
    columns=_columns(
        Column("Model", ".spec.model", description="The image model."),
        Column(
            "Pool",
            ".status.pool.state",
            description="In the warm pool: starting, loading, queued or drawing.",
            priority=1,
        ),
        Column("Place", ".status.pool.position", "integer", "Its place in the pool's queue.", priority=1),
    ),
)
TRANSCRIPTION = Kind(
    kind="Transcription",
    plural="transcriptions",
    short_names=("transcript", "tr"),
    catalog_type="transcription",
    spec=TranscriptionSpec,
    status=TranscriptionStatus,
    description="Transcribes the speech in an audio or video file.",
    columns=_columns(
        Column("Words", ".status.transcript.wordCount", "integer", "Words in the transcript."),
    ),
)

LORA_EVALUATION = Kind(
    kind="LoraEvaluation",
    plural="loraevaluations",
    short_names=("loraeval", "le"),
    catalog_type="lora-evaluation",
    spec=LoraEvaluationSpec,
    status=LoraEvaluationStatus,
    description="Evaluates a trained LoRA version's likeness again, without training it again.",
    columns=_columns(
        Column("LoRA", ".spec.loraRef.name", description="The LoraTraining evaluated."),
        Column("Version", ".status.lora.version", "integer", "Its version the latest evaluation scored."),
        Column("Verdict", ".status.likeness.verdict", description="Whether it looks like the person."),
        Column("Median", ".status.likeness.median", "number", "The median face similarity to the person."),
    ),
)

VIDEO_GENERATION = Kind(
    kind="VideoGeneration",
    plural="videogenerations",
    short_names=("vidgen", "vg"),
    catalog_type="video-generation",
    spec=VideoGenerationSpec,
    status=VideoGenerationStatus,
    description="Generates a video from a prompt, optionally animating a picture (a URL or an "
    "ImageGeneration's output).",
    columns=_columns(
        Column("Model", ".spec.model", description="The video model."),
        Column(
            "Duration", ".status.video.durationSeconds", "number", "The latest video's length in seconds."
        ),
        Column(
            "Likeness",
            ".status.video.likeness.verdict",
            description="Whether the face stays the LoRA's person along the latest video.",
        ),
        Column("Version", ".status.latestVersion", "integer", "The newest version.", priority=1),
    ),
)

KINDS: dict[str, Kind] = {
    k.kind: k for k in (LORA_TRAINING, IMAGE_GENERATION, TRANSCRIPTION, LORA_EVALUATION, VIDEO_GENERATION)
}
CATALOG_TYPES: dict[str, Kind] = {k.catalog_type: k for k in KINDS.values()}
