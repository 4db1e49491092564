"""LoraEvaluation in the catalog: lora, evaluation (its number k), likeness (the latest
version's); its evaluations are in the LoRA version's history too (evaluations.py)."""

from __future__ import annotations

from typing import Any

from ._base import CatalogKind


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


KIND = CatalogKind("LoraEvaluation", summary=summary, primary=primary)
