"""VideoGeneration in the controller: a model that cannot load a LoRA (a LoraTraining's, FLUX.1)
refuses the spec before its loraRef is waited for."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contentgen.api import ResolvedLora
from contentgen.api.references import Catalog, url_lora
from contentgen.api.video import DEFAULT_MODEL, unloadable_lora
from contentgen.store.keys import lora_of_uri

from ..job_defaults import GpuJob, KindDefaults, Resources
from ._base import ControllerKind


def lora_problem(spec: Mapping[str, Any]) -> str | None:
    """Why its model cannot load one of its LoRAs, said before its loraRef is waited for:
    admission refuses a loraRef, so this meets resources admitted before it did, and a
    LoraTraining's file given by url."""
    given = [
        url_lora(entry["url"], entry.get("scale", 1.0), Catalog("operator", lineage=lora_of_uri))
        if "url" in entry
        else ResolvedLora(uri="", name=str(entry["loraRef"]["name"]))
        for entry in spec.get("loras") or []
    ]
    return unloadable_lora(str(spec.get("model") or DEFAULT_MODEL), given)


KIND = ControllerKind(
    "VideoGeneration",
    lora_problem=lora_problem,
    job=KindDefaults(
        resources=Resources.sized("500m", ("1Gi", "2Gi"), ("1Gi", "4Gi")),
        active_deadline_seconds=3600,
        work_volume_size="4Gi",
    ),
    # Wan 14B and LTX-Video: weights staged on the node, frames kept in the store as made
    gpu_job=GpuJob(resources=Resources.sized("4", ("48Gi", "96Gi"), ("10Gi", "40Gi"))),
)
