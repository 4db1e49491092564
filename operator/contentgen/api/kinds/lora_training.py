"""LoraTraining: its names, models and columns."""

from __future__ import annotations

from ..lora import CLUSTER_ONLY_TRAINING, LoraTrainingSpec, LoraTrainingStatus
from ._kind import Column, Kind, kind_columns

KIND = Kind(
    kind="LoraTraining",
    plural="loratrainings",
    short_names=("lora", "lt"),
    catalog_type="lora-training",
    spec=LoraTrainingSpec,
    status=LoraTrainingStatus,
    description="Trains a LoRA from the scenes of a video; every spec change trains a new version.",
    columns=kind_columns(
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
