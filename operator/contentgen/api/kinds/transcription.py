"""Transcription: its names, models and columns."""

from __future__ import annotations

from .. import transcription
from ..transcription import TranscriptionSpec, TranscriptionStatus
from ._kind import Column, Kind, kind_columns

KIND = Kind(
    kind="Transcription",
    plural="transcriptions",
    short_names=("transcript", "tr"),
    catalog_type="transcription",
    spec=TranscriptionSpec,
    status=TranscriptionStatus,
    description="Transcribes the speech in an audio or video file.",
    columns=kind_columns(
        Column("Words", ".status.transcript.wordCount", "integer", "Words in the transcript."),
    ),
    latest=("transcript",),
    legacy=transcription.legacy_version,
    stored_under=("transcripts",),
    unversioned_before=True,
)
