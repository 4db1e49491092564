"""LoraTraining in the catalog: triggerWord, latestModelUri (the model its users get: a person's
promotion, else the run's choice), dataset (the latest run's counts)."""

from __future__ import annotations

from typing import Any

from ._base import CatalogKind


def promoted(version: dict[str, Any]) -> dict[str, Any] | None:
    """A LoRA version's newest promotion (promotions.py: a laptop's, numbered; in a cluster the
    status's, from the LoraTraining's annotation), or None where its model is the automatic choice."""
    promotions = version.get("promotions") or []
    if promotions:
        return dict(promotions[-1])
    chosen = version.get("promotion")
    return dict(chosen) if isinstance(chosen, dict) else None


def model_of(version: dict[str, Any]) -> str:
    """The LoRA a version's users get: its newest promotion's, else its own model."""
    chosen = promoted(version)
    return str(chosen["modelUri"]) if chosen else str(version.get("modelUri") or "")


def summary(
    doc: dict[str, Any], newest: dict[str, Any], versions: list[dict[str, Any]], spec: dict[str, Any]
) -> None:
    doc["triggerWord"] = spec.get("triggerWord", "")
    doc["latestModelUri"] = model_of(newest)


def from_status(doc: dict[str, Any], status: dict[str, Any], before: dict[str, Any]) -> None:
    doc["dataset"] = status.get("dataset") or before.get("dataset")


def primary(version: dict[str, Any]) -> str:
    """The LoRA's model."""
    return str(version.get("modelUri") or "")


KIND = CatalogKind(
    "LoraTraining", summary=summary, primary=primary, from_status=from_status, makes_loras=True
)
