"""VideoGeneration in the catalog: prompt, model, video, durationSeconds, image (the picture it
animates), loras (the latest version's); models, loraUids, loraVersions, imageUids over every
version."""

from __future__ import annotations

from typing import Any

from ._base import CatalogKind
from ._prompted import lora_filters, prompt_and_model, version_prompt_and_model


def summary(
    doc: dict[str, Any], newest: dict[str, Any], versions: list[dict[str, Any]], spec: dict[str, Any]
) -> None:
    prompt_and_model(doc, newest, spec)
    doc["video"] = newest.get("video") or None
    doc["durationSeconds"] = float((newest.get("video") or {}).get("durationSeconds") or 0.0)
    doc["image"] = newest.get("image") or None
    doc["loras"] = newest.get("loras") or []
    lora_filters(doc, versions)
    # the pictures its versions animate (lineage: an image's videos)
    pictures = [v.get("image") or {} for v in versions]
    doc["imageUids"] = sorted({p["uid"] for p in pictures if p.get("uid")})


def primary(version: dict[str, Any]) -> str:
    """The video."""
    return str((version.get("video") or {}).get("uri") or "")


KIND = CatalogKind("VideoGeneration", summary=summary, primary=primary, version=version_prompt_and_model)
