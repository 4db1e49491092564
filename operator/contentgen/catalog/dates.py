"""Datetimes in and out of the catalog.

BSON dates are UTC with millisecond precision and no zone. pymongo accepts aware datetimes, but
montydb cannot compare aware with the naive ones it returns, and the three backends differ in
what they hand back (aware, FixedOffset-aware, naive). So every value crosses the boundary the
same way: written (and queried) as naive UTC truncated to milliseconds, read as UTC-aware.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def to_storage(value: Any) -> Any:
    """`value` with every datetime as naive UTC, whole milliseconds (dicts and lists walked)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    if isinstance(value, dict):
        return {k: to_storage(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_storage(v) for v in value]
    return value


def from_storage(value: Any) -> Any:
    """`value` with every datetime UTC-aware (naive ones are UTC, as BSON dates are)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, dict):
        return {k: from_storage(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_storage(v) for v in value]
    return value


def iso_z(when: datetime) -> str:
    """`when` (aware, UTC) as the ISO 8601 text the catalog's own timestamps are: ...Z."""
    return when.isoformat().replace("+00:00", "Z")
