"""Helpers the route modules share."""

from __future__ import annotations

from typing import Any

from contentgen.catalog import ResultPage, to_record


def page_of(result: ResultPage) -> dict[str, Any]:
    return {
        "total": result.total,
        "limit": result.limit,
        "offset": result.offset,
        "items": [to_record(doc).wire() for doc in result.docs],
    }
