"""What the kinds made from a prompt (ImageGeneration, VideoGeneration) keep alike: the prompt and
model each version ran, the LoRAs it was made with, and the filters that find every output made
with a model, a LoRA or one of its versions."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ..common_record import RecordModel
from ._base import each_once


class LoraUseInfo(RecordModel):
    """A LoRA the images were made with."""

    uri: str
    scale: float = 1.0
    name: str = Field(default="", description="The LoraTraining (loraRef), when it came from one.")
    uid: str = Field(default="", description="Its id: `contentgen assets lineage` follows it.")
    version: int = 0


def prompt_and_model(doc: dict[str, Any], newest: dict[str, Any], spec: dict[str, Any]) -> None:
    """The newest version's prompt and model, else the spec's."""
    doc["prompt"] = newest.get("prompt") or spec.get("prompt", "")
    doc["model"] = newest.get("model") or spec.get("model", "")


def lora_filters(doc: dict[str, Any], versions: list[dict[str, Any]]) -> None:
    """models, loraUids and loraVersions ("uid/vN") over every version."""
    every = [lora for v in versions for lora in v.get("loras") or []]
    doc["models"] = sorted({str(v.get("model")) for v in versions if v.get("model")} | {doc["model"]})
    doc["loraUids"] = sorted({lora["uid"] for lora in every if lora.get("uid")})
    doc["loraVersions"] = sorted(
        {f"{lora['uid']}/v{lora.get('version', 0)}" for lora in every if lora.get("uid")}
    )


def version_prompt_and_model(entry: dict[str, Any], spec: dict[str, Any] | None, _: object) -> None:
    """A version's prompt (its spec's first) and model (its own first)."""
    entry["prompt"] = str((spec or {}).get("prompt") or entry.get("prompt") or "")
    entry["model"] = str(entry.get("model") or (spec or {}).get("model") or "")


def _loras(version: dict[str, Any]) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    return [
        ((lora.get("uid"), lora.get("version"), lora.get("uri")), lora) for lora in version.get("loras") or []
    ]


def loras_used(versions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The LoRAs its versions were made with (lineage), newest version's first, each once."""
    return each_once(versions, _loras)
