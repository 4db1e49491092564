"""VideoGeneration in the catalog: prompt, model, video, durationSeconds, image (the picture it
animates), loras (the latest version's); models, loraUids, loraVersions, imageUids over every
version. Its lineage is the LoRAs it was made with and the pictures it animates."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ..common_record import JobRecord, RecordModel, VersionInfo
from ._base import CatalogKind, each_once
from ._prompted import LoraUseInfo, lora_filters, loras_used, prompt_and_model, version_prompt_and_model


class VideoInfo(RecordModel):
    uri: str
    content_type: str = "video/mp4"
    size_bytes: int = 0
    duration_seconds: float = 0.0
    frames: int = 0
    fps: float = 0.0
    width: int = 0
    height: int = 0
    codec: str = ""
    audio_codec: str = Field(default="", description="Its sound's codec (aac); empty for a silent video.")
    seed: int | None = None
    poster_uri: str = Field(default="", description="Its first frame (poster.jpg).")
    thumbnail_uri: str = Field(default="", description="A small JPEG of the poster (thumbs/poster.jpg).")
    strip_uri: str = Field(default="", description="Frames across it, side by side (strip.jpg).")
    likeness: dict[str, Any] | None = Field(
        default=None,
        description="Whether the face stays the LoRA's person along it (verdict, median, lowest, drift, "
        "samples of timeSeconds and score, reasons), when measured.",
    )


class PictureUseInfo(RecordModel):
    """The picture a video animates: an ImageGeneration's (imageRef), or a URL."""

    uri: str
    name: str = Field(default="", description="The ImageGeneration (imageRef), when it came from one.")
    uid: str = Field(default="", description="Its id: `contentgen assets lineage` follows it.")
    version: int = 0
    image: int = Field(default=0, description="Which of that version's images (1 for the first).")


class VideoVersionInfo(VersionInfo):
    prompt: str = ""
    model: str = ""
    video: VideoInfo | None = None
    image: PictureUseInfo | None = Field(default=None, description="The picture it animates.")
    loras: list[LoraUseInfo] = Field(default=[], description="The LoRAs it was made with.")


class VideoGenerationRecord(JobRecord):
    kind: Literal["VideoGeneration"] = "VideoGeneration"
    prompt: str = Field(default="", description="The latest version's prompt (else the spec's).")
    model: str = ""
    video: VideoInfo | None = Field(default=None, description="The latest version's video.")
    duration_seconds: float = Field(default=0.0, description="The latest version's video's length.")
    image: PictureUseInfo | None = Field(default=None, description="The picture the latest version animates.")
    loras: list[LoraUseInfo] = Field(default=[], description="The LoRAs the latest version was made with.")
    versions: list[VideoVersionInfo] = Field(default=[], description="Every usable version, oldest first.")


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


def detail(record: VideoGenerationRecord) -> str:
    shape = f"{record.video.width}x{record.video.height} " if record.video is not None else ""
    return f"{record.duration_seconds:.1f} s {shape}video: {record.prompt}"


def _picture(version: dict[str, Any]) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    picture = version.get("image") or {}
    return (
        [((picture.get("uid"), picture.get("version"), picture.get("uri")), picture)]
        if picture.get("uri")
        else []
    )


def pictures_animated(versions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pictures its versions animate, newest version's first, each once."""
    return each_once(versions, _picture)


KIND = CatalogKind(
    "VideoGeneration",
    summary=summary,
    primary=primary,
    record=VideoGenerationRecord,
    detail=detail,
    version=version_prompt_and_model,
    loras_used=loras_used,
    pictures_used=pictures_animated,
    makes_clips=True,
)
