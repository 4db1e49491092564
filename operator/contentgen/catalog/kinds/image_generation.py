"""ImageGeneration in the catalog: prompt, model, images, loras (the latest version's, else the
spec's prompt and model); models, loraUids, loraVersions over every version. Its pictures are what
videos animate (imageRef); its lineage is the LoRAs it was made with."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from contentgen.api.words import counted

from ..common_record import JobRecord, RecordModel, VersionInfo
from ._base import CatalogKind
from ._prompted import LoraUseInfo, lora_filters, loras_used, prompt_and_model, version_prompt_and_model


class ImageInfo(RecordModel):
    uri: str
    width: int = 0
    height: int = 0
    content_type: str = "image/png"
    size_bytes: int = 0
    seed: int | None = None
    thumbnail_uri: str = Field(default="", description="A small JPEG beside the image (thumbs/).")


class ImageVersionInfo(VersionInfo):
    prompt: str = ""
    model: str = ""
    images: list[ImageInfo] = []
    loras: list[LoraUseInfo] = Field(default=[], description="The LoRAs its images were made with.")
    memory_plan: str = Field(
        default="", description="provider cluster: the memory plan its images were drawn with (memoryPlan)."
    )


class ImageGenerationRecord(JobRecord):
    kind: Literal["ImageGeneration"] = "ImageGeneration"
    prompt: str = Field(default="", description="The latest version's prompt (else the spec's).")
    model: str = ""
    images: list[ImageInfo] = Field(default=[], description="The latest version's images.")
    loras: list[LoraUseInfo] = Field(default=[], description="The LoRAs the latest version was made with.")
    versions: list[ImageVersionInfo] = Field(default=[], description="Every usable version, oldest first.")


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


def legacy_outputs(doc: dict[str, Any]) -> dict[str, Any]:
    """Before versions, the latest images at the document's top."""
    if not doc.get("images"):
        return {}
    return {
        "prompt": doc.get("prompt", ""),
        "model": doc.get("model", ""),
        "images": doc["images"],
        "loras": doc.get("loras") or [],
    }


def detail(record: ImageGenerationRecord) -> str:
    count = sum(len(v.images) for v in record.versions)
    return f"{counted(count, 'image')}: {record.prompt}"


KIND = CatalogKind(
    "ImageGeneration",
    summary=summary,
    primary=primary,
    record=ImageGenerationRecord,
    detail=detail,
    version=version_prompt_and_model,
    loras_used=loras_used,
    without_loras="made without LoRAs",
    legacy_outputs=legacy_outputs,
    makes_pictures=True,
)
