"""Haiku in the catalog: its season on the record (HaikuRecord); its poem is its versions' primary
output."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from contentgen.catalog.kinds import CatalogKind, JobRecord, VersionInfo


class HaikuRecord(JobRecord):
    kind: Literal["Haiku"] = "Haiku"
    season: str = Field(default="", description="The season of the current spec.")
    versions: list[VersionInfo] = Field(default=[], description="Every usable version, oldest first.")


def summary(
    doc: dict[str, Any], newest: dict[str, Any], versions: list[dict[str, Any]], spec: dict[str, Any]
) -> None:
    doc["season"] = spec.get("season", "")


def primary(version: dict[str, Any]) -> str:
    """haiku.txt."""
    return next(
        (str(a["uri"]) for a in version.get("artifacts") or [] if a["uri"].endswith("/haiku.txt")), ""
    )


def detail(record: HaikuRecord) -> str:
    return f"a haiku of {record.season}"


KIND = CatalogKind("Haiku", summary=summary, primary=primary, record=HaikuRecord, detail=detail)
