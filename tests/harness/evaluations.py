"""A LoRA's evaluations and scorings as the catalog records them (tests/catalog)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.catalog.factory import T0, lora_doc

LATER = T0 + timedelta(days=1)


def evaluation(
    number: int, *, version: int = 1, cost: float = 0.42, seeds: list[int] | None = None
) -> dict[str, Any]:
    folder = f"s3://bucket/loras/alice/lora-1/v{version}/likeness/e{number}/"
    return {
        "evaluation": number,
        "version": version,
        "at": "2025-03-02T12:00:00Z",
        "by": "cli",
        "provider": "fal",
        "promptSet": "likeness-v1",
        "seeds": seeds or [number],
        "costUsd": cost,
        "likeness": {
            "verdict": "good",
            "median": 0.5 + number / 100,
            "gridUri": folder + "likeness-grid.jpg",
        },
        "artifacts": [{"uri": folder + "likeness-grid.jpg", "sizeBytes": 10, "contentType": "image/jpeg"}],
    }


def trained() -> dict[str, Any]:
    doc = lora_doc("lora-1", versions=2)
    doc["versions"][0]["likeness"] = {"verdict": "poor", "median": 0.2}  # what its run reported
    return doc


def scoring(number: int, verdict: str = "alike", median: float | None = 0.69) -> dict[str, Any]:
    """`contentgen assets evaluate --pictures`: outside pictures scored (one coffee photograph: no face)."""
    entry = evaluation(number, cost=0.0)
    entry |= {"source": "pictures", "pictures": [{"name": "coffee.jpg"}]}
    entry["likeness"] = {"verdict": verdict, "median": median}
    return entry


def unmeasured(number: int) -> dict[str, Any]:
    """An offline "Evaluate again": placeholders, no face, nothing measured."""
    entry = evaluation(number, cost=0.0)
    entry["provider"] = "offline"
    entry["likeness"] = {"verdict": "no-faces", "median": None}
    return entry
