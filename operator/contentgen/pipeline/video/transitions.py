"""Gradual transitions, and one detector for every kind of scene change.

A hard cut changes the picture from one frame to the next (scenes.AdaptiveDetector). Two
edits change it over a second or so, one small step a frame, which no frame-to-frame measure
tells from camera motion:

- A **cross-dissolve** mixes shot A into shot B: every frame is (1 - a)·A + a·B with a going
  from 0 to 1. So the frame half-way between two frames of a dissolve is their average, which
  a camera move does not give (its middle frame is a sharp picture, not a double exposure).
  Over a window of `DISSOLVE_SECONDS`, frames A (start), M (middle) and B (end) form a
  dissolve when B differs a lot from A (`span`), M is close to (A + B) / 2 (`residue` at most
  `MAX_RESIDUE` of the span), and the picture was steady for a window before A and after B
  (so a long, smooth camera move or a slow change of light is no dissolve). The window whose
  residue is smallest marks the dissolve's middle: the cut.
- A **fade through black** darkens shot A to black, then brightens B out of it. A black frame
  is one where at least `BLACK_SHARE` of the pixels are darker than `BLACK_LEVEL` (the rule
  and defaults of FFmpeg's blackdetect filter); a run of black frames between pictures is a
  fade, cut in the middle of the run. Black before the first picture or after the last is
  no cut.

Frames mid-transition show two shots at once, or a dim one: `Cut.guard` is the time span
around a gradual cut whose frames must not go into a dataset.

`SceneDetector` runs the three detectors on the same tiny luma frames and hands out their
cuts in order, merged when two of them report one change (a fade whose picture comes back
with a jump is also a hard cut). Its `settled` time says up to where the scenes are final;
the gradual detectors look about two seconds back, so that is how far behind it runs.

The thresholds were chosen on the development videos of bench/faces.py (their dissolves
have residues of 0.05-0.11 of their span; the halves of fades that pass the other tests,
0.18-0.20), and checked on its held-out videos only afterwards.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import cv2
import numpy as np

from .scenes import AdaptiveDetector

DISSOLVE_SECONDS = 1.0  # the window: dissolves up to about this long are found
MIN_SPAN = 12.0  # mean absolute luma change (0-255) from A to B, their mean brightness set aside
MAX_RESIDUE = 0.15  # |M - (A + B) / 2| at most this share of the span
STEADY = 0.5  # the change in the window before A and after B, at most this share of the span
BLACK_LEVEL = 26  # of 255 (FFmpeg blackdetect's pixel_black_th 0.10)
BLACK_SHARE = 0.98  # (FFmpeg blackdetect's picture_black_ratio_th)
FADE_GUARD = 0.5  # seconds before a black run and after it that are mid-fade
MERGE_SECONDS = 0.5  # cuts closer than this, one of them gradual, are one change
# How far `SceneDetector.settled` stays behind the newest frame, at most (a dissolve's middle
# is known a window and a half later; its guard starts half a window before it).
LAG_SECONDS = 1.5 * DISSOLVE_SECONDS + max(FADE_GUARD, DISSOLVE_SECONDS / 2) + MERGE_SECONDS
_PRIORITY = {"fade": 0, "dissolve": 1, "cut": 2}


@dataclass(frozen=True)
class Cut:
    """Where a new scene starts: its first frame (`index`, as pushed) and time; `guard` is the
    (start, end) time span of a gradual transition's mixed or dark frames."""

    index: int
    time: float
    kind: str  # cut | dissolve | fade
    guard: tuple[float, float] | None = None


def shape_change(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two equally sized uint8 frames, their mean brightness set
    aside (a change of exposure alone is not a change of picture)."""
    offset = cv2.mean(a)[0] - cv2.mean(b)[0]
    shifted = cv2.addWeighted(b, 1.0, b, 0.0, offset)  # b + offset, saturating
    return float(cv2.norm(a, shifted, cv2.NORM_L1)) / a.size


def residue(a: np.ndarray, m: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of `m` from the average of `a` and `b`."""
    average = cv2.addWeighted(a, 0.5, b, 0.5, 0.0)
    return float(cv2.norm(m, average, cv2.NORM_L1)) / m.size


def is_dissolve(span: float, rest: float, before: float, after: float) -> bool:
    """A window's frames A, M, B form a dissolve: A to B changed a lot (`span`), M is their mix
    (`rest`, its residue), and before A and after B the picture stayed (`before`, `after`)."""
    return (
        span >= MIN_SPAN and rest <= MAX_RESIDUE * span and before <= STEADY * span and after <= STEADY * span
    )


def is_black(tiny: np.ndarray, full_range: bool) -> bool:
    """At least BLACK_SHARE of the pixels below BLACK_LEVEL (video-range luma has black at 16)."""
    level = BLACK_LEVEL if full_range else 16 + round(BLACK_LEVEL * 219 / 255)
    bright = int(np.count_nonzero(tiny >= level))
    return bright <= (1.0 - BLACK_SHARE) * tiny.size


class _History:
    """The recent frames by time, for looking up the frame nearest a moment."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.frames: list[np.ndarray] = []
        self.indices: list[int] = []

    def add(self, index: int, time: float, tiny: np.ndarray) -> None:
        self.indices.append(index)
        self.times.append(time)
        self.frames.append(tiny)

    def nearest(self, time: float) -> int:
        """The position of the frame nearest `time`."""
        at = bisect.bisect_left(self.times, time)
        if at == len(self.times) or (at > 0 and time - self.times[at - 1] <= self.times[at] - time):
            return max(at - 1, 0)
        return at

    def forget_before(self, time: float) -> int:
        """Drop frames older than `time`; returns how many went."""
        gone = bisect.bisect_left(self.times, time)
        del self.times[:gone], self.frames[:gone], self.indices[:gone]
        return gone


class DissolveDetector:
    """Windows of `window` seconds: B is evaluated once a frame `window` seconds after it is in
    (the steady check), so a dissolve is reported about twice the window after its middle."""

    def __init__(self, window: float = DISSOLVE_SECONDS) -> None:
        self.window = window
        self.history = _History()
        self._next = 0  # position in history of the next B to evaluate
        self._run: list[tuple[float, int, float]] = []  # (residue share, M's index, M's time)

    def push(self, index: int, time: float, tiny: np.ndarray) -> Cut | None:
        h, w = self.history, self.window
        h.add(index, time, tiny)
        found = None
        while self._next < len(h.times) and h.times[self._next] <= time - w:
            found = self._evaluate(self._next) or found
            self._next += 1
        self._next -= h.forget_before(h.times[self._next - 1] - 2.2 * w) if self._next else 0
        return found

    def flush(self) -> Cut | None:
        return self._end_run()

    @property
    def earliest(self) -> float:
        """The earliest time a cut not yet reported can have."""
        if self._run:
            return self._run[0][2]
        h = self.history
        newest = h.times[-1] if h.times else 0.0
        return newest - 1.5 * self.window

    def _evaluate(self, at: int) -> Cut | None:
        h, w = self.history, self.window
        t = h.times[at]
        if t - 2 * w < h.times[0] - 1e-6:
            return None  # not enough before it (the video's first seconds)
        a, m, p, f = (h.nearest(t - w), h.nearest(t - w / 2), h.nearest(t - 2 * w), h.nearest(t + w))
        frames = h.frames
        span = shape_change(frames[a], frames[at])
        if span >= MIN_SPAN:
            rest = residue(frames[a], frames[m], frames[at])
            before = shape_change(frames[p], frames[a])
            after = shape_change(frames[at], frames[f])
            if is_dissolve(span, rest, before, after):
                self._run.append((rest / span, h.indices[m], h.times[m]))
                return None
        return self._end_run()

    def _end_run(self) -> Cut | None:
        if not self._run:
            return None
        _, index, time = min(self._run)
        self._run = []
        half = self.window / 2
        return Cut(index, time, "dissolve", (time - half, time + half))


class FadeDetector:
    """Runs of black frames between pictures."""

    def __init__(self) -> None:
        self._seen_picture = False
        self._run: list[tuple[int, float]] = []  # the black frames of the current run
        self._newest = 0.0

    def push(self, index: int, time: float, tiny: np.ndarray, full_range: bool) -> Cut | None:
        self._newest = time
        if is_black(tiny, full_range):
            self._run.append((index, time))
            return None
        cut = None
        if self._run and self._seen_picture:
            middle = (self._run[0][1] + self._run[-1][1]) / 2
            first = min(self._run, key=lambda frame: abs(frame[1] - middle))
            cut = Cut(first[0], first[1], "fade", (self._run[0][1] - FADE_GUARD, time + FADE_GUARD))
        self._run = []
        self._seen_picture = True
        return cut

    @property
    def earliest(self) -> float:
        return self._run[0][1] if self._run else self._newest


class SceneDetector:
    """Hard cuts, dissolves and fades from one stream of tiny luma frames (see the module).

    `push` returns the cuts that are final, in order; `settled` is the time before which every
    frame's scene, and whether it is mid-transition, is known.
    """

    def __init__(self, fps: float, *, hard: AdaptiveDetector | None = None) -> None:
        self.hard = hard or AdaptiveDetector(min_scene_frames=max(2, round(fps * 0.25)))
        self.dissolves = DissolveDetector()
        self.fades = FadeDetector()
        self._times: list[float] = []  # of the frames the hard-cut detector may still report
        self._first = 0
        self._buffer: list[Cut] = []
        self._pushed = 0
        self.settled = 0.0

    def push(self, tiny: np.ndarray, time: float, full_range: bool) -> list[Cut]:
        index = self._pushed
        self._pushed += 1
        self._times.append(time)
        hard = self.hard.push(tiny)
        if hard is not None:
            self._add(Cut(hard, self._time_of(hard), "cut"))
        for found in (self.dissolves.push(index, time, tiny), self.fades.push(index, time, tiny, full_range)):
            if found is not None:
                self._add(found)
        keep = max(0, len(self._times) - self.hard.lag - 2)
        self._first += keep
        del self._times[:keep]
        return self._release(final=False)

    def flush(self) -> list[Cut]:
        for index in self.hard.flush():
            self._add(Cut(index, self._time_of(index), "cut"))
        found = self.dissolves.flush()
        if found is not None:
            self._add(found)
        return self._release(final=True)

    def _time_of(self, index: int) -> float:
        return self._times[index - self._first]

    def _add(self, cut: Cut) -> None:
        """Into the buffer, merged with a cut of the same change."""
        for i, other in enumerate(self._buffer):
            if abs(other.time - cut.time) < MERGE_SECONDS and (other.guard or cut.guard):
                self._buffer[i] = _merged(other, cut)
                return
        self._buffer.append(cut)
        self._buffer.sort(key=lambda c: c.time)

    def _release(self, *, final: bool) -> list[Cut]:
        if final:
            out, self._buffer = self._buffer, []
            self.settled = float("inf")
            return out
        horizon = min(self.dissolves.earliest, self.fades.earliest, self._hard_earliest())
        out = []
        while self._buffer and self._buffer[0].time + MERGE_SECONDS < horizon:
            out.append(self._buffer.pop(0))
        starts = [c.guard[0] if c.guard else c.time for c in self._buffer]
        self.settled = max(self.settled, min([horizon - max(FADE_GUARD, DISSOLVE_SECONDS / 2), *starts]))
        return out

    def _hard_earliest(self) -> float:
        pending = self._pushed - self.hard.lag
        return self._time_of(max(pending, self._first)) if self._times else 0.0


def _merged(a: Cut, b: Cut) -> Cut:
    """One cut for two reports of one change: the gradual one's place, both guards."""
    first = min((a, b), key=lambda c: _PRIORITY[c.kind])
    guards = [g for g in (a.guard, b.guard) if g is not None]
    guard = (min(g[0] for g in guards), max(g[1] for g in guards)) if guards else None
    return Cut(first.index, first.time, first.kind, guard)
