"""Transcription in the catalog: transcript, wordCount, durationSeconds, transcriptText (the
latest version's); each version keeps the start of its text for search, and where in it the
recording's words start. Its versions hold the transcript (transcript.json)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from contentgen.api import RunResult

from ..common_record import JobRecord, RecordModel, VersionInfo
from ._base import CatalogKind

# How much of a transcript a version keeps for search (the whole text is in the store).
SEARCH_TEXT_CHARS = 20_000


class TranscriptInfo(RecordModel):
    json_uri: str = ""
    text_uri: str = ""
    word_count: int = 0
    duration_seconds: float = 0.0
    speakers: int = 0
    language_code: str = ""


class TranscriptVersionInfo(VersionInfo):
    transcript: TranscriptInfo = Field(default_factory=TranscriptInfo)
    source_url: str = Field(default="", description="What was transcribed.")


class TranscriptionRecord(JobRecord):
    kind: Literal["Transcription"] = "Transcription"
    word_count: int = 0
    duration_seconds: float = 0.0
    speakers: int = 0
    language_code: str = ""
    text_uri: str = Field(default="", description="The latest version's transcript.txt")
    json_uri: str = Field(default="", description="The provider's full response (transcript.json).")
    source_url: str = Field(default="", description="What the current spec transcribes.")
    versions: list[TranscriptVersionInfo] = Field(
        default=[], description="Every usable version, oldest first."
    )


def summary(
    doc: dict[str, Any], newest: dict[str, Any], versions: list[dict[str, Any]], spec: dict[str, Any]
) -> None:
    transcript = newest.get("transcript") or {}
    doc["transcript"] = transcript
    doc["wordCount"] = transcript.get("wordCount", 0)
    doc["durationSeconds"] = transcript.get("durationSeconds", 0.0)
    doc["transcriptText"] = newest.get("transcriptText", "")


def version(entry: dict[str, Any], spec: dict[str, Any] | None, result: RunResult | None) -> None:
    text = result.transcript_text if result is not None else None
    entry["transcriptText"] = (text if text is not None else entry.get("transcriptText") or "")[
        :SEARCH_TEXT_CHARS
    ]
    # where in that text the recording's words start (search hits' times), when the run said;
    # two flat lists, as FerretDB 1.x stores no arrays in arrays
    times = result.transcript_times if result is not None and text is not None else None
    if times is not None:
        chars = len(entry["transcriptText"])
        kept = [mark for mark in times if mark[0] < chars]
        entry["transcriptTimes"] = {"chars": [int(m[0]) for m in kept], "seconds": [m[1] for m in kept]}


def primary(version: dict[str, Any]) -> str:
    """transcript.txt."""
    return str((version.get("transcript") or {}).get("textUri") or "")


def record_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """The transcript's speakers, language and files, at the record's top."""
    transcript = doc.get("transcript") or {}
    return {
        "speakers": transcript.get("speakers", 0),
        "languageCode": transcript.get("languageCode", ""),
        "textUri": transcript.get("textUri", ""),
        "jsonUri": transcript.get("jsonUri", ""),
    }


def detail(record: TranscriptionRecord) -> str:
    return f"{record.word_count} words, {record.duration_seconds:.0f} s"


def legacy_outputs(doc: dict[str, Any]) -> dict[str, Any]:
    """Before versions, the latest transcript at the document's top."""
    transcript = doc.get("transcript") or {}
    if not transcript.get("textUri"):
        return {}
    return {
        "transcript": transcript,
        "sourceUrl": doc.get("sourceUrl", ""),
        "transcriptText": doc.get("transcriptText", ""),
    }


KIND = CatalogKind(
    "Transcription",
    summary=summary,
    primary=primary,
    record=TranscriptionRecord,
    detail=detail,
    version=version,
    record_fields=record_fields,
    legacy_outputs=legacy_outputs,
    transcript=True,
)
