"""How a provider reports how far its work is: the interface the pipeline hands in.

Providers sit below the pipeline and never import it. They receive a `SubProgress`, a callable
taking a percent (0-100) of their own share of the work; the pipeline decides where that share
lands in the run's overall progress (`contentgen.pipeline.progress.Span`) and who sees it.
"""

from __future__ import annotations

from typing import Protocol


class SubProgress(Protocol):
    """Called with how far a piece of work is, in percent of that piece (0-100)."""

    def __call__(self, percent: float, /) -> None: ...


class Monotonic:
    """A SubProgress that never goes back (providers' estimates can wobble)."""

    def __init__(self, progress: SubProgress) -> None:
        self._progress = progress
        self._last = -1.0

    def __call__(self, percent: float, /) -> None:
        percent = min(max(percent, 0.0), 100.0)
        if percent > self._last:
            self._last = percent
            self._progress(percent)
