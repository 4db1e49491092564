"""Transcription's run: the speech in an audio or video file (../transcription.py)."""

from __future__ import annotations

from contentgen.api import RunResult

from ..context import RunContext
from ._base import PipelineKind


def run(ctx: RunContext) -> RunResult:
    from ..transcription import run_transcription

    return run_transcription(ctx)


KIND = PipelineKind("Transcription", run=run)
