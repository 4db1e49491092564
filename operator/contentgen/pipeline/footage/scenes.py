"""Scene (shot) detection on tiny luma frames, after PySceneDetect's AdaptiveDetector.

Like PySceneDetect, a detector object is fed one frame at a time and reports cuts. Each frame
gets a *content change*: the mean absolute difference of its luma from the previous frame's,
on a frame shrunk to 100-199 pixels on its long side (the shrinking averages away noise and
fine motion). A cut is where that change is both large in absolute terms (`min_change`) and
`threshold` times the average change of the `window` frames on each side, so a steady pan or
a shaky camera (large changes everywhere) does not cut, while a hard cut (one isolated spike)
does. Looking `window` frames ahead means a cut is reported that many frames late (`lag`).
A flash (a few bright frames, then the same picture again) is no cut: the picture after
the window must still differ from each of the frames before the cut. `min_scene_frames` suppresses a second
cut right after one.

The decisions are pure functions over arrays and numbers (`content_change`, `adaptive_ratio`,
`is_cut`), which the tests exercise without video.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import cv2
import numpy as np

# Frames are analysed with a long side of 100-199 pixels (decode.thumbnail).
ANALYSIS_LONG_SIDE = 100


def content_change(previous: np.ndarray, current: np.ndarray) -> float:
    """Mean absolute luma difference of two equally sized uint8 frames (0-255)."""
    return float(cv2.norm(previous, current, cv2.NORM_L1)) / previous.size


def adaptive_ratio(changes: Sequence[float], index: int, window: int) -> float:
    """How many times larger `changes[index]` is than the mean of its neighbours.

    The neighbours are up to `window` values on each side (fewer at the ends). A spike over
    still neighbours (mean below 0.1) counts as a very large ratio.
    """
    neighbours = [
        changes[i] for i in range(index - window, index + window + 1) if i != index and 0 <= i < len(changes)
    ]
    mean = sum(neighbours) / len(neighbours) if neighbours else 0.0
    return changes[index] / max(mean, 0.1)


def is_cut(change: float, ratio: float, lasting: float, *, threshold: float, min_change: float) -> bool:
    """A frame starts a new scene when it changed a lot (`change`), much more than its
    neighbours did (`ratio`), and the picture stays different (`lasting`: the smallest change
    from any of the frames just before it to the newest frame seen, `window` frames on). A
    flash or a glitched frame changes a lot and then changes back: a small `lasting`, going
    into it and coming out of it."""
    return change >= min_change and ratio >= threshold and lasting >= min_change


class AdaptiveDetector:
    """Feed tiny luma frames with `push`; it returns the index of a frame that starts a new scene.

    Frame indices count pushes from 0. A cut at frame i is returned by the push of frame
    i + `lag` (or by `flush` at the end of the video).
    """

    def __init__(
        self,
        *,
        threshold: float = 3.0,
        min_change: float = 6.0,
        window: int = 2,
        min_scene_frames: int = 6,
    ) -> None:
        self.threshold, self.min_change, self.window = threshold, min_change, window
        self.min_scene_frames = min_scene_frames
        self.lag = window
        # The last frames and their changes: the one being decided and `window` on each side,
        # plus the frame before it.
        self._frames: deque[np.ndarray] = deque(maxlen=2 * window + 2)
        self._changes: deque[float] = deque(maxlen=2 * window + 2)
        self._pushed = 0
        self._last_cut = 0

    def push(self, tiny: np.ndarray) -> int | None:
        self._changes.append(content_change(self._frames[-1], tiny) if self._frames else 0.0)
        self._frames.append(tiny)
        self._pushed += 1
        return self._decide(self._pushed - 1 - self.window)

    def flush(self) -> list[int]:
        """Decide the last `lag` frames, with the right-hand neighbours they have."""
        decided = (self._decide(index) for index in range(max(0, self._pushed - self.window), self._pushed))
        return [cut for cut in decided if cut is not None]

    def _decide(self, index: int) -> int | None:
        if index < 1 or index - self._last_cut < self.min_scene_frames:
            return None  # frame 0 starts the first scene; its change means nothing
        position = index - (self._pushed - len(self._changes))
        values = list(self._changes)
        change = values[position]
        if change < self.min_change:  # the common case: decided without the rest
            return None
        ratio = adaptive_ratio(values, position, self.window)
        frames = list(self._frames)
        lasting = min(content_change(before, frames[-1]) for before in frames[:position])
        if is_cut(change, ratio, lasting, threshold=self.threshold, min_change=self.min_change):
            self._last_cut = index
            return index
        return None
