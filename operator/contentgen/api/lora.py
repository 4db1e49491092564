"""LoraTraining: a video in, a versioned LoRA out."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .base import ApiModel, CelRule, Timestamp
from .common import Artifact, CommonSpec, CommonStatus, SourceSpec

DEFAULT_TRAINING_MODEL = "fal-ai/flux-lora-fast-training"

CaptionTemplate = Annotated[
    str,
    Field(
        min_length=1,
        max_length=300,
        description="Caption written next to every dataset image; {trigger} becomes the trigger word.",
    ),
    CelRule(
        rule="self.contains('{trigger}')",
        message="must contain {trigger}, where the trigger word goes",
        check=lambda value: "{trigger}" in value,
    ),
]


class DatasetSpec(ApiModel):
    max_frames: Annotated[
        int, Field(ge=4, le=200, description="At most this many images in the dataset (one per scene).")
    ] = 40
    min_scene_seconds: Annotated[
        float, Field(ge=0.2, le=60, description="Scenes shorter than this many seconds are skipped.")
    ] = 1.0
    face_filter: Annotated[
        bool,
        Field(
            description="Use only scenes that show a frontal face (at least 15 % of the picture's height) "
            "and crop around it; turn off for subjects without a face."
        ),
    ] = True
    caption_template: CaptionTemplate = "a photo of {trigger}"


class TrainingSpec(ApiModel):
    model: Annotated[
        str, Field(min_length=1, max_length=200, description="The provider's training model.")
    ] = DEFAULT_TRAINING_MODEL
    steps: Annotated[int, Field(ge=100, le=10000, description="Training steps.")] = 1000
    learning_rate: (
        Annotated[float, Field(gt=0, le=0.01, description="Learning rate; the model's default when unset.")]
        | None
    ) = None


class LoraTrainingSpec(CommonSpec):
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
        Literal["fal", "offline"],
        Field(description="fal trains on fal.ai; offline makes a labelled placeholder, for demos and CI."),
    ] = "fal"
    dataset: Annotated[DatasetSpec, Field(default_factory=DatasetSpec, description="How frames are chosen.")]
    training: Annotated[
        TrainingSpec, Field(default_factory=TrainingSpec, description="How the LoRA is trained.")
    ]


class LoraVersion(ApiModel):
    """One trained model. Editing the spec of a succeeded LoraTraining adds a version."""

    version: Annotated[int, Field(ge=1)]
    model_uri: Annotated[str, Field(description="The weights (model.safetensors).")]
    config_uri: Annotated[str, Field(description="The training config (config.json).")] = ""
    size_bytes: Annotated[int, Field(ge=0)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    dataset_uri: Annotated[str, Field(description="The dataset archive it was trained on.")] = ""
    source_url: Annotated[str, Field(description="The video the dataset was made from.")] = ""
    contact_sheet_uri: Annotated[str, Field(description="A picture of the dataset (JPEG grid).")] = ""
    contact_sheet_thumbnail_uri: Annotated[str, Field(description="A small JPEG of the contact sheet.")] = ""
    frames: Annotated[int, Field(ge=0, description="Images in the dataset.")] = 0
    provider: str
    trigger_word: str
    training_model: str = ""
    steps: Annotated[int, Field(ge=0)] = 0
    generation: Annotated[int, Field(ge=0, description="The spec generation it was trained from.")] = 0
    created_at: Timestamp


class LoraTrainingStatus(CommonStatus):
    latest_version: Annotated[int, Field(ge=0, description="The newest version; 0 before the first.")] = 0
    versions: Annotated[list[LoraVersion], Field(description="Every trained version, oldest first.")] = []


class DatasetImage(ApiModel):
    uri: str
    time: Annotated[float, Field(ge=0, description="Seconds into the source.")]
    scene: Annotated[int, Field(ge=0)]
    width: int
    height: int
    sharpness: float
    face: bool


class Scene(ApiModel):
    start: Annotated[float, Field(ge=0, description="Seconds into the source.")]
    end: Annotated[float, Field(ge=0)]


class DatasetReport(ApiModel):
    """What the dataset stage found and chose (the run result's `dataset`)."""

    frames: int
    scenes: list[Scene]
    images: list[DatasetImage]
    archive: Artifact | None = None


__all__ = [
    "DatasetImage",
    "DatasetReport",
    "DatasetSpec",
    "LoraTrainingSpec",
    "LoraTrainingStatus",
    "LoraVersion",
    "Scene",
    "TrainingSpec",
]
