"""VideoGeneration's run: a video from a prompt, optionally animating a picture (videos.py)."""

from __future__ import annotations

from contentgen.api import RunResult, SpecSnapshot

from ..context import RunContext
from ._base import PipelineKind


def run(ctx: RunContext) -> RunResult:
    from ..videos import run_videos

    return run_videos(ctx)


def lineage(result: RunResult, snap: SpecSnapshot) -> RunResult:
    """The LoRAs it used and the picture it animates (an ImageGeneration's: name, uid, version,
    image)."""
    return result.model_copy(update={"loras": list(snap.loras), "image": snap.image})


KIND = PipelineKind("VideoGeneration", run=run, lineage=lineage)
