"""Parsing what people type (CLI flags, query parameters) into query values, with messages that
say what was wrong. Raises ValueError; callers name the flag or parameter."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta

from .queries import DEFAULT_PRICE_PER_GB_MONTH

PRICE_ENV = "CONTENTGEN_PRICE_PER_GB_MONTH"
MIN_EXPIRES = 1
MAX_EXPIRES = 7 * 24 * 3600  # S3's limit for SigV4 presigned URLs
DEFAULT_EXPIRES = 3600


def parse_time(text: str, *, end: bool = False) -> datetime:
    """An ISO date (2025-01-31) or datetime (2025-01-31T12:00, …Z, …+02:00; naive is UTC).

    With `end`, a date means the end of that day (the next midnight), so `--until 2025-01-31`
    includes the 31st."""
    text = text.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start + timedelta(days=1) if end else start
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO date or datetime (e.g. 2025-01-31 or 2025-01-31T12:00:00Z)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def check_range(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise ValueError(f"the range is empty: {since.isoformat()} is not before {until.isoformat()}")


def check_expires(seconds: int) -> int:
    if not MIN_EXPIRES <= seconds <= MAX_EXPIRES:
        raise ValueError(
            f"must be between {MIN_EXPIRES} second and {MAX_EXPIRES} seconds (7 days), got {seconds}"
        )
    return seconds


def check_price(price: float) -> float:
    if not price >= 0 or price == float("inf"):
        raise ValueError(f"must be a number 0 or more, got {price}")
    return price


def price_from_env() -> float:
    """$CONTENTGEN_PRICE_PER_GB_MONTH, else 0.023 USD (S3 Standard's first tier)."""
    raw = os.environ.get(PRICE_ENV, "").strip()
    if not raw:
        return DEFAULT_PRICE_PER_GB_MONTH
    try:
        price = float(raw)
    except ValueError:
        raise ValueError(f"{PRICE_ENV}: not a number: {raw!r}") from None
    try:
        return check_price(price)
    except ValueError as exc:
        raise ValueError(f"{PRICE_ENV}: {exc}") from None
