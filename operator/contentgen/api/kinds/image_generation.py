"""ImageGeneration: its names, models and columns."""

from __future__ import annotations

from .. import image
from ..image import ImageGenerationSpec, ImageGenerationStatus
from ._kind import POOL_COLUMNS, Column, Kind, kind_columns

KIND = Kind(
    kind="ImageGeneration",
    plural="imagegenerations",
    short_names=("imggen", "ig"),
    catalog_type="image-generation",
    spec=ImageGenerationSpec,
    status=ImageGenerationStatus,
    description="Generates images from a prompt, optionally with trained LoRAs.",
    columns=kind_columns(
        Column("Model", ".spec.model", description="The image model."),
        *POOL_COLUMNS,
    ),
    latest=("images", "loras", "provider"),
    legacy=image.legacy_version,
    cluster_only=("memoryPlan", "denoising"),
    stored_under=("generated-images",),
    unversioned_before=True,
)
