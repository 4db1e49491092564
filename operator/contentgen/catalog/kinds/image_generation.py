"""ImageGeneration in the catalog: prompt, model, images, loras (the latest version's, else the
spec's prompt and model); models, loraUids, loraVersions over every version."""

from __future__ import annotations

from typing import Any

from ._base import CatalogKind
from ._prompted import lora_filters, prompt_and_model, version_prompt_and_model


def summary(
    doc: dict[str, Any], newest: dict[str, Any], versions: list[dict[str, Any]], spec: dict[str, Any]
) -> None:
    prompt_and_model(doc, newest, spec)
    doc["images"] = newest.get("images") or []
    doc["loras"] = newest.get("loras") or []
    lora_filters(doc, versions)


def primary(version: dict[str, Any]) -> str:
    """The first image."""
    images = version.get("images") or []
    return str(images[0]["uri"]) if images else ""


KIND = CatalogKind("ImageGeneration", summary=summary, primary=primary, version=version_prompt_and_model)
