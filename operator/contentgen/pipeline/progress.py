"""Progress: a stage name and a percent, from the pipeline to whoever watches.

The pipeline calls `progress(stage, percent)`; reporters decide how often to pass it on
(a terminal bar, plain lines, the resource's status in the cluster). Providers get a
`SubProgress` (defined in `contentgen.providers.progress`, below them), usually a `Span`.
"""

from __future__ import annotations

from typing import Protocol

from contentgen.providers.progress import Monotonic, SubProgress


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


# The providers' interface, re-exported for the pipeline's own stages.
__all__ = ["Monotonic", "Progress", "Span", "SubProgress"]
