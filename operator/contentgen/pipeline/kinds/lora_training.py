"""LoraTraining's run: a LoRA trained from the scenes of a video (lora.py)."""

from __future__ import annotations

from contentgen.api import RunResult, SpecSnapshot

from ..context import RunContext
from ._base import PipelineKind


def run(ctx: RunContext) -> RunResult:
    from ..lora import run_lora

    return run_lora(ctx)


def lineage(result: RunResult, snap: SpecSnapshot) -> RunResult:
    """The LoRA version's source video, where its run did not name it (its dataset is named)."""
    if result.lora is not None and not result.lora.source_url:
        source = str((snap.spec.get("source") or {}).get("url") or "")
        return result.model_copy(update={"lora": result.lora.model_copy(update={"source_url": source})})
    return result


KIND = PipelineKind("LoraTraining", run=run, lineage=lineage)
