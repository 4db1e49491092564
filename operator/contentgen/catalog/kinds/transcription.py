"""Transcription in the catalog: transcript, wordCount, durationSeconds, transcriptText (the
latest version's); each version keeps the start of its text for search, and where in it the
recording's words start."""

from __future__ import annotations

from typing import Any

from contentgen.api import RunResult

from ._base import CatalogKind

# How much of a transcript a version keeps for search (the whole text is in the store).
SEARCH_TEXT_CHARS = 20_000


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


KIND = CatalogKind(
    "Transcription", summary=summary, primary=primary, version=version, record_fields=record_fields
)
