"""ImageGeneration's run: images from a prompt, optionally with LoRAs (images.py)."""

from __future__ import annotations

from contentgen.api import RunResult, SpecSnapshot

from ..context import RunContext
from ._base import PipelineKind


def run(ctx: RunContext) -> RunResult:
    from ..images import run_images

    return run_images(ctx)


def lineage(result: RunResult, snap: SpecSnapshot) -> RunResult:
    """The LoRAs it used (name, uid, version)."""
    return result.model_copy(update={"loras": list(snap.loras)})


KIND = PipelineKind("ImageGeneration", run=run, lineage=lineage)
