"""fal's queue states and logs as progress."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..progress import Monotonic

_PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)\s*%")
_FRACTION = re.compile(r"(\d+)\s*/\s*(\d+)")


def log_fraction(logs: list[dict[str, Any]] | None, keyword: str | None) -> float | None:
    """How far the newest progress line in fal's logs is, 0-1: "45%|..." or "450/1000".

    With a keyword, only lines that mention it count (training logs also show 100 % bars for
    loading models and preprocessing, long before the training steps)."""
    for entry in reversed(logs or []):
        message = str(entry.get("message", "")) if isinstance(entry, dict) else ""
        if keyword and keyword not in message.lower():
            continue
        if (match := _PERCENT.search(message)) and float(match[1]) <= 100:
            return float(match[1]) / 100
        if (match := _FRACTION.search(message)) and int(match[2]) > 0 and int(match[1]) <= int(match[2]):
            return int(match[1]) / int(match[2])
    return None


class Meter(Monotonic):
    """Progress that never goes back, with the mappings of fal's queue states onto a slice."""

    def at(self, percent: float) -> None:
        self(percent)

    def span(self, start: float, end: float) -> Callable[[float], None]:
        return lambda percent: self.at(start + (end - start) * min(max(percent, 0.0), 100.0) / 100.0)

    def queue(self, start: float, end: float) -> Callable[[int], None]:
        # position 0 is next in line: the slice fills as the request moves up
        return lambda position: self.at(start + (end - start) / (1 + max(position, 0)))

    def running(
        self, start: float, end: float, keyword: str | None = None
    ) -> Callable[[list[dict[str, Any]] | None], None]:
        polls = 0

        def update(logs: list[dict[str, Any]] | None) -> None:
            nonlocal polls
            polls += 1
            fraction = log_fraction(logs, keyword)
            if fraction is None:  # no progress line: creep towards the end, never reaching it
                fraction = 1 - 0.9**polls
            self.at(start + (end - start) * min(fraction, 0.99))

        return update
