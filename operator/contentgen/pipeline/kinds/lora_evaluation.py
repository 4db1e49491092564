"""LoraEvaluation's run: a trained LoRA version's likeness evaluated again (../lora_evaluation.py)."""

from __future__ import annotations

from contentgen.api import RunResult

from ..context import RunContext
from ._base import PipelineKind


def run(ctx: RunContext) -> RunResult:
    from ..lora_evaluation import run_lora_evaluation

    return run_lora_evaluation(ctx)


KIND = PipelineKind("LoraEvaluation", run=run)
