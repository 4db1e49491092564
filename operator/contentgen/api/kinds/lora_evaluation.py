"""LoraEvaluation: its names, models and columns."""

from __future__ import annotations

from ..evaluation import LoraEvaluationSpec, LoraEvaluationStatus
from ._kind import Column, Kind, kind_columns

KIND = Kind(
    kind="LoraEvaluation",
    plural="loraevaluations",
    short_names=("loraeval", "le"),
    catalog_type="lora-evaluation",
    spec=LoraEvaluationSpec,
    status=LoraEvaluationStatus,
    description="Evaluates a trained LoRA version's likeness again, without training it again.",
    columns=kind_columns(
        Column("LoRA", ".spec.loraRef.name", description="The LoraTraining evaluated."),
        Column("Version", ".status.lora.version", "integer", "Its version the latest evaluation scored."),
        Column("Verdict", ".status.likeness.verdict", description="Whether it looks like the person."),
        Column("Median", ".status.likeness.median", "number", "The median face similarity to the person."),
    ),
    latest=("likeness", "lora", "evaluation"),
    stored_under=("evaluations",),
)
