"""Transcription in the HTTP API: named transcript-…, run by the transcribers (its records'
transcripts export as JSON, SRT, VTT or text: the catalog's declaration says they have one)."""

from __future__ import annotations

from ._base import HttpKind


def runs_here() -> tuple[str, ...]:
    from contentgen.providers import TRANSCRIBERS

    return TRANSCRIBERS


KIND = HttpKind("Transcription", prefix="transcript", runs_here=runs_here)
