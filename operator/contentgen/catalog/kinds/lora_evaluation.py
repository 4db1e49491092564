"""LoraEvaluation in the catalog: lora, evaluation (its number k), likeness (the latest
version's); its evaluations are in the LoRA version's history too (evaluations.py). Its lineage is
the LoRA versions it evaluated."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ..common_record import JobRecord, RecordModel, VersionInfo
from ._base import CatalogKind, each_once


class EvaluatedLoraInfo(RecordModel):
    """The LoRA version a LoraEvaluation evaluated."""

    name: str = Field(default="", description="The LoraTraining.")
    uid: str = Field(default="", description="Its record's id.")
    version: int = 0
    model_uri: str = ""
    provider: str = Field(default="", description="The provider that trained it.")
    trigger_word: str = ""
    dataset_uri: str = ""


class EvaluationVersionInfo(VersionInfo):
    lora: EvaluatedLoraInfo = Field(default_factory=EvaluatedLoraInfo)
    evaluation: int = Field(default=0, description="Its number among the LoRA version's re-evaluations.")
    likeness: dict[str, Any] | None = Field(default=None, description="Its report, as a version's likeness.")
    record_uri: str = Field(default="", description="Its evaluation.json.")


class LoraEvaluationRecord(JobRecord):
    kind: Literal["LoraEvaluation"] = "LoraEvaluation"
    lora: EvaluatedLoraInfo | None = Field(
        default=None, description="The LoRA version the latest version evaluated (its history has it too)."
    )
    evaluation: int = Field(default=0, description="The latest version's evaluation number.")
    likeness: dict[str, Any] | None = Field(default=None, description="The latest version's report.")
    versions: list[EvaluationVersionInfo] = Field(
        default=[], description="Every evaluation it made, oldest first."
    )


def summary(
    doc: dict[str, Any], newest: dict[str, Any], versions: list[dict[str, Any]], spec: dict[str, Any]
) -> None:
    doc["provider"] = doc.get("provider") or newest.get("provider", "")  # unset: the version's
    doc["lora"] = newest.get("lora") or None
    doc["evaluation"] = int(newest.get("evaluation") or 0)
    doc["likeness"] = newest.get("likeness") or None


def primary(version: dict[str, Any]) -> str:
    """None: its files are the LoRA version's."""
    return ""


def detail(record: LoraEvaluationRecord) -> str:
    if record.lora is None:
        return ""
    verdict = (record.likeness or {}).get("verdict", "")
    return f"{record.lora.name} v{record.lora.version} e{record.evaluation}: {verdict}"


def _evaluated(version: dict[str, Any]) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    lora = version.get("lora") or {}
    use = {k: lora.get(k) for k in ("name", "uid", "version") if lora.get(k)}
    return [((lora.get("uid"), lora.get("version")), {"uri": lora.get("modelUri", ""), **use})]


def loras_evaluated(versions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The LoRA versions it evaluated, as uses of them (uri: the model evaluated), newest
    version's first, each once."""
    return each_once(versions, _evaluated)


KIND = CatalogKind(
    "LoraEvaluation",
    summary=summary,
    primary=primary,
    record=LoraEvaluationRecord,
    detail=detail,
    loras_used=loras_evaluated,
)
