"""Transcription: audio or video in, a transcript out."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .base import ApiModel
from .common import CommonSpec, CommonStatus, SourceSpec, VersionBase


class TranscriptionSpec(CommonSpec):
    source: Annotated[SourceSpec, Field(description="The audio or video to transcribe.")]
    language_code: (
        Annotated[
            str,
            Field(
                pattern=r"^[a-z]{2}(_[a-z]{2})?$",
                max_length=5,
                description="The spoken language (e.g. en, en_us); detected when unset.",
            ),
        ]
        | None
    ) = None
    speaker_labels: Annotated[bool, Field(description="Label who speaks when.")] = False
    provider: Annotated[
        Literal["assemblyai", "offline"],
        Field(description="assemblyai transcribes on AssemblyAI; offline writes a labelled placeholder."),
    ] = "assemblyai"


class TranscriptOutput(ApiModel):
    json_uri: Annotated[str, Field(description="The provider's full response (transcript.json).")]
    text_uri: Annotated[str, Field(description="Plain text, speaker turns when labelled (transcript.txt).")]
    word_count: Annotated[int, Field(ge=0)]
    duration_seconds: Annotated[float, Field(ge=0)]
    speakers: Annotated[int, Field(ge=0, description="Distinct speakers; 0 unless speakerLabels.")] = 0
    language_code: str = ""
    provider: str = ""


class TranscriptVersion(VersionBase):
    """The transcript one run made (transcripts/{owner}/{uid}/v{n}/)."""

    transcript: TranscriptOutput
    source_url: Annotated[str, Field(description="What was transcribed.")] = ""


class TranscriptionStatus(CommonStatus):
    transcript: Annotated[TranscriptOutput, Field(description="The latest version's transcript.")] | None = (
        None
    )
    latest_version: Annotated[int, Field(ge=0, description="The newest version; 0 before the first.")] = 0
    versions: Annotated[
        list[TranscriptVersion],
        Field(description="Every version, oldest first: a run for a new spec generation adds one."),
    ] = []
