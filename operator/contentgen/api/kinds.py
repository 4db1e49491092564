"""The kinds: names, models and how kubectl shows them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from . import image, transcription
from .common import CommonSpec, CommonStatus
from .evaluation import LoraEvaluationSpec, LoraEvaluationStatus
from .image import ImageGenerationSpec, ImageGenerationStatus
from .lora import CLUSTER_ONLY_TRAINING, LoraTrainingSpec, LoraTrainingStatus
from .transcription import TranscriptionSpec, TranscriptionStatus
from .video import VideoGenerationSpec, VideoGenerationStatus

GROUP = "contentgen.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "contentgen"


def crd_name(plural: str) -> str:
    """The name of the CustomResourceDefinition of the resources called `plural` in this group."""
    return f"{plural}.{GROUP}"


@dataclass(frozen=True)
class Column:
    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0


# legacy(status): the outputs a status written before versions (0.1) holds, as version 1's fields
# (wire form); None when it holds none
Legacy = Callable[[Mapping[str, Any]], dict[str, Any] | None]


def _no_legacy(_: Mapping[str, Any]) -> dict[str, Any] | None:
    return None


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
    # the latest version's fields, repeated at the top of its status (as before versions)
    latest: tuple[str, ...] = ()
    # what a version older than the status's detailed ones leaves out (dotted: a field of a field)
    bulky: tuple[str, ...] = ()
    # its outputs in a status from before versions (versions.adopt_legacy)
    legacy: Legacy = _no_legacy
    # the spec's fields (wire form, dotted) that only provider cluster reads: the offline provider
    # runs the spec without them (run.offline_spec)
    cluster_only: tuple[str, ...] = ()
    # the store's top folders of its outputs, the first holding each version's result.json
    # (store/keys.py: {folder}/{owner}/{uid}/v{n}/); none: its catalog type
    stored_under: tuple[str, ...] = ()
    # its outputs were once stored straight under {folder}/{owner}/{uid}/, before versions (read
    # as version 1)
    unversioned_before: bool = False

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def likeness_plan(self) -> type[BaseModel] | None:
        """The model of the likeness evaluation its runs make (its spec's `evaluation`: a
        LoraTraining's, a LoraEvaluation's); None for a kind that makes none."""
        field = self.spec.model_fields.get("evaluation")
        plan = field.annotation if field is not None else None
        return plan if isinstance(plan, type) and issubclass(plan, BaseModel) else None

    @property
    def crd_name(self) -> str:
        return crd_name(self.plural)


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
    latest=("likeness",),
    bulky=("likeness", "trainingLoss"),
    cluster_only=(
        *(f"training.{field}" for field, *_ in CLUSTER_ONLY_TRAINING),
        "training.batchSize",
        "resources",  # its GPUs, nodes and backend: CLUSTER_RESOURCES_RULES
    ),
    stored_under=("loras", "datasets"),
)
# Where a request a warm pool draws is in it (status.pool), where the kind has one
POOL_COLUMNS = (
    Column(
        "Pool",
        ".status.pool.state",
        description="In the warm pool: starting, loading, queued or drawing.",
        priority=1,
    ),
    Column("Place", ".status.pool.position", "integer", "Its place in the pool's queue.", priority=1),
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
        *POOL_COLUMNS,
    ),
    latest=("images", "loras", "provider"),
    legacy=image.legacy_version,
    cluster_only=("memoryPlan", "denoising"),
    stored_under=("generated-images",),
    unversioned_before=True,
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
    latest=("transcript",),
    legacy=transcription.legacy_version,
    stored_under=("transcripts",),
    unversioned_before=True,
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
    latest=("likeness", "lora", "evaluation"),
    stored_under=("evaluations",),
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
        *POOL_COLUMNS,
    ),
    latest=("video", "image", "loras", "provider"),
    bulky=("video.likeness.samples", "video.likeness.reasons", "image.loras"),
    cluster_only=("denoising",),
    stored_under=("generated-videos",),
)

KINDS: dict[str, Kind] = {
    k.kind: k for k in (LORA_TRAINING, IMAGE_GENERATION, TRANSCRIPTION, LORA_EVALUATION, VIDEO_GENERATION)
}
CATALOG_TYPES: dict[str, Kind] = {k.catalog_type: k for k in KINDS.values()}
