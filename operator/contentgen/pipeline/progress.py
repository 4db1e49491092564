"""Progress: a stage name and a percent, from the pipeline to whoever watches.

The pipeline calls `progress(stage, percent)`; reporters decide how often to pass it on
(a terminal bar, plain lines, the resource's status in the cluster).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Progress(Protocol):
    def __call__(self, stage: str, percent: float, message: str = "") -> None: ...


class Span:
    """Maps a sub-task's 0-100 onto a slice [start, end] of the overall percent.

    `Span(progress, "train", 40, 90)(50)` reports stage "train" at 65 %.
    """

    def __init__(self, progress: Progress, stage: str, start: float, end: float) -> None:
        self.progress, self.stage, self.start, self.end = progress, stage, start, end

    def __call__(self, percent: float, message: str = "") -> None:
        percent = min(max(percent, 0.0), 100.0)
        self.progress(self.stage, self.start + (self.end - self.start) * percent / 100.0, message)


SubProgress = Callable[[float], None]


class Monotonic:
    """A SubProgress that never goes back (providers' estimates can wobble)."""

    def __init__(self, progress: SubProgress) -> None:
        self._progress = progress
        self._last = -1.0

    def __call__(self, percent: float) -> None:
        percent = min(max(percent, 0.0), 100.0)
        if percent > self._last:
            self._last = percent
            self._progress(percent)
