"""Parsing user input: dates, expiry, prices."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contentgen.catalog.params import check_expires, check_range, parse_time, price_from_env


@pytest.mark.parametrize(
    ("text", "end", "expected"),
    [
        ("2025-01-31", False, datetime(2025, 1, 31, tzinfo=UTC)),
        ("2025-01-31", True, datetime(2025, 2, 1, tzinfo=UTC)),
        ("2025-01-31T12:30", False, datetime(2025, 1, 31, 12, 30, tzinfo=UTC)),
        ("2025-01-31T12:30:00Z", True, datetime(2025, 1, 31, 12, 30, tzinfo=UTC)),
        ("2025-01-31T14:30:00+02:00", False, datetime(2025, 1, 31, 12, 30, tzinfo=UTC)),
    ],
)
def test_parse_time(text: str, end: bool, expected: datetime) -> None:
    parsed = parse_time(text, end=end)
    assert parsed == expected and parsed.tzinfo is UTC


@pytest.mark.parametrize("text", ["yesterday", "2025-13-01", "31/01/2025", ""])
def test_parse_time_refuses_what_is_not_iso(text: str) -> None:
    with pytest.raises(ValueError, match="not an ISO date or datetime"):
        parse_time(text)


def test_an_empty_range_is_refused() -> None:
    day = datetime(2025, 1, 1, tzinfo=UTC)
    check_range(day, None)
    with pytest.raises(ValueError, match="range is empty"):
        check_range(day, day)


@pytest.mark.parametrize("seconds", [0, -5, 7 * 24 * 3600 + 1])
def test_expiry_is_bounded(seconds: int) -> None:
    with pytest.raises(ValueError, match="between 1 second and 604800 seconds"):
        check_expires(seconds)
    assert check_expires(1) == 1 and check_expires(604800) == 604800


def test_price_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONTENTGEN_PRICE_PER_GB_MONTH", raising=False)
    assert price_from_env() == 0.023
    monkeypatch.setenv("CONTENTGEN_PRICE_PER_GB_MONTH", "0.0125")
    assert price_from_env() == 0.0125
    for bad in ("cheap", "-1", "nan"):
        monkeypatch.setenv("CONTENTGEN_PRICE_PER_GB_MONTH", bad)
        with pytest.raises(ValueError, match="CONTENTGEN_PRICE_PER_GB_MONTH"):
            price_from_env()
