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


class Stages:
    """A flow's stages in order and each one's share of the run's progress, declared once at the
    top of the flow (as diffusers declares a pipeline's steps): `window(name)` is the slice of
    [start, end] the stage's own 0-100 fills.

    `Stages(("fetch", 1), ("train", 3)).window("train")` is (25.0, 100.0).
    """

    def __init__(self, *shares: tuple[str, float], start: float = 0.0, end: float = 100.0) -> None:
        self.shares, self.start, self.end = shares, start, end

    def window(self, name: str) -> tuple[float, float]:
        total, before = sum(share for _, share in self.shares), 0.0
        for stage, share in self.shares:
            if stage == name:
                scale = (self.end - self.start) / total
                return self.start + before * scale, self.start + (before + share) * scale
            before += share
        raise KeyError(f"stage {name!r} is not one of {', '.join(stage for stage, _ in self.shares)}")


# The providers' interface, re-exported for the pipeline's own stages.
__all__ = ["Monotonic", "Progress", "Span", "Stages", "SubProgress"]
