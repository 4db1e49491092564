"""Haiku in the catalog: its season on the record; its poem is its versions' primary output."""

from __future__ import annotations

from typing import Any

from contentgen.catalog.kinds import CatalogKind


def summary(
    doc: dict[str, Any], newest: dict[str, Any], versions: list[dict[str, Any]], spec: dict[str, Any]
) -> None:
    doc["season"] = spec.get("season", "")


def primary(version: dict[str, Any]) -> str:
    """haiku.txt."""
    return next(
        (str(a["uri"]) for a in version.get("artifacts") or [] if a["uri"].endswith("/haiku.txt")), ""
    )


KIND = CatalogKind("Haiku", summary=summary, primary=primary)
