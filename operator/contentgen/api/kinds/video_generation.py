"""VideoGeneration: its names, models and columns."""

from __future__ import annotations

from ..video import VideoGenerationSpec, VideoGenerationStatus
from ._kind import POOL_COLUMNS, Column, Kind, kind_columns

KIND = Kind(
    kind="VideoGeneration",
    plural="videogenerations",
    short_names=("vidgen", "vg"),
    catalog_type="video-generation",
    spec=VideoGenerationSpec,
    status=VideoGenerationStatus,
    description="Generates a video from a prompt, optionally animating a picture (a URL or an "
    "ImageGeneration's output).",
    columns=kind_columns(
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
