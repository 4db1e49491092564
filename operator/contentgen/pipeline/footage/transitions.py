"""Gradual transitions, and one detector for every kind of scene change.

A hard cut changes the picture from one frame to the next (scenes.AdaptiveDetector). Two
edits change it over half a second to three, one small step a frame, which no frame-to-frame
measure tells from camera motion:

- A **cross-dissolve** mixes shot A into shot B: every frame is (1 - a)·A + a·B with a going
  from 0 to 1. So the frame half-way between two frames of a dissolve is their average, which
  a camera move does not give (its middle frame is a sharp picture, not a double exposure).
  Over a window of w seconds, frames A (start), M (middle) and B (end) form a dissolve when B
  differs a lot from A (`span`, their mean brightness set aside), M is close to (A + B) / 2
  (`residue` at most `MAX_RESIDUE` of A's whole difference from B; in the shortest window the
  three are compared blurred by `RESIDUE_BLUR`, as a hand-held camera moves both shots a pixel
  or so while they mix; blurred, the longer windows took a short shot between a dissolve and a
  fade for one dissolve), and the
  picture was steady for `STEADY_SECONDS` before A and after B (so a long, smooth camera move or
  a slow change of light is no dissolve): it changed there at most `STEADY` of A's whole
  difference from B, scaled to the time.
  Windows of 1, 2 and 3 seconds (`DISSOLVE_WINDOWS`) find dissolves of 0.5 to 3 s; the window
  whose residue is smallest marks the dissolve, and the mix weight a of each frame in it (its
  projection on B - A) its extent (`Cut.guard`: the frames with 0.03 < a < 0.97) and its cut
  (where a passes 0.5).
- A **fade** takes shot A to a flat picture (black, white, grey or a colour: at least
  `FLAT_SHARE` of the pixels within `FLAT_SPREAD` of their median, after FFmpeg blackdetect's
  rule for black), then brings B out of it. A run of flat frames between pictures is a fade,
  cut in the middle of the run; its extent reaches back and forth to where the picture's
  contrast has stopped rising: `FADE_CONTRAST` of the most over the next `PLATEAU_SECONDS`
  (`FADE_SECONDS` at most each side). Flat frames before the first picture or after the last are no cut.

Frames mid-transition show two shots at once, or a dim one: `Cut.guard` is the time span
of a gradual cut whose frames must not go into a dataset.

`SceneDetector` runs the detectors on the same tiny luma frames and hands out their cuts in
order, merged when two of them report one change (a fade whose picture comes back with a jump
is also a hard cut; two windows see one dissolve). Its `settled` time says up to where the
scenes are final; the gradual detectors look a few seconds back, so that is how far behind it
runs (`LAG_SECONDS`).

The thresholds were chosen on the development videos of bench/faces.py and bench/people.py,
and checked on their held-out videos only afterwards; `RESIDUE_BLUR` and the steady test against
the whole change on bench/transitions.py's development videos (hand-held shots, other looks).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import cv2
import numpy as np

from .scenes import AdaptiveDetector

DISSOLVE_SECONDS = 1.0  # the shortest window
DISSOLVE_WINDOWS = (1.0, 2.0, 3.0)  # dissolves up to about the longest are found
STEADY_SECONDS = 1.0  # before A and after B, at most this long (the window when shorter)
MIN_SPAN = 12.0  # mean absolute luma change (0-255) from A to B, their mean brightness set aside
MAX_RESIDUE = 0.15  # |M - (A + B) / 2| at most this share of |B - A|
RESIDUE_BLUR = 1.5  # px of the tiny frames
BLURRED_WINDOW = 1.0  # windows up to this long compare blurred frames (longer ones merged shots)
STEADY = 0.5  # the change before A and after B, at most this share of A to B (per window)
MIX_EDGE = 0.03  # a frame whose mix weight lies within this of 0 or 1 is no longer mid-dissolve
BLACK_LEVEL = 26  # of 255 (FFmpeg blackdetect's pixel_black_th 0.10)
BLACK_SHARE = 0.98  # (FFmpeg blackdetect's picture_black_ratio_th)
FLAT_SPREAD = BLACK_LEVEL / 2  # a flat frame: BLACK_SHARE of its pixels this close to their median
FADE_SECONDS = 1.6  # a fade's half (to the flat picture, or from it) is at most this long
FADE_CONTRAST = 0.95  # outside a fade, the picture has this share of the contrast next to it
PLATEAU_SECONDS = 0.3  # ... over this long beyond the fade's end
MERGE_SECONDS = 0.5  # cuts closer than this, one of them gradual, are one change
# How far `SceneDetector.settled` stays behind the newest frame, at most: a dissolve is known a
# steady time after its window ends, and its guard starts half a window before its middle.
LAG_SECONDS = 1.5 * max(DISSOLVE_WINDOWS) + STEADY_SECONDS + MERGE_SECONDS
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


def residue(a: np.ndarray, m: np.ndarray, b: np.ndarray, blur: float = 0.0) -> float:
    """Mean absolute difference of `m` from the average of `a` and `b`; with `blur`, of the three
    blurred that much (a Gaussian's sigma in pixels)."""
    if blur > 0:
        a, m, b = (cv2.GaussianBlur(x, (0, 0), blur) for x in (a, m, b))
    average = cv2.addWeighted(a, 0.5, b, 0.5, 0.0)
    return float(cv2.norm(m, average, cv2.NORM_L1)) / m.size


def is_dissolve(
    span: float, rest: float, before: float, after: float, *, whole: float | None = None, steady: float = 1.0
) -> bool:
    """A window's frames A, M, B form a dissolve: A to B changed a lot (`span`, brightness set
    aside; `whole`, with it), M is their mix (`rest`, its residue), and before A and after B the
    picture stayed (`before`, `after`, over `steady` of the window's time) compared with the
    whole change: between a dim shot and a bright one, the dissolve changes the brightness too,
    and a hand-held camera moving as much as their shapes differ is still steady beside that."""
    whole = span if whole is None else whole
    calm = STEADY * whole * steady
    return span >= MIN_SPAN and rest <= MAX_RESIDUE * whole and before <= calm and after <= calm


def is_black(tiny: np.ndarray, full_range: bool) -> bool:
    """At least BLACK_SHARE of the pixels below BLACK_LEVEL (video-range luma has black at 16)."""
    level = BLACK_LEVEL if full_range else 16 + round(BLACK_LEVEL * 219 / 255)
    bright = int(np.count_nonzero(tiny >= level))
    return bright <= (1.0 - BLACK_SHARE) * tiny.size


def is_flat(tiny: np.ndarray) -> bool:
    """At least BLACK_SHARE of the pixels within FLAT_SPREAD of their median: a black, white,
    grey or coloured picture without detail (black by FFmpeg blackdetect's rule is flat too)."""
    counts = cv2.calcHist([tiny], [0], None, [256], [0, 256]).ravel().cumsum()
    tail = (1 - BLACK_SHARE) / 2 * tiny.size
    low = int(np.searchsorted(counts, tail, side="right"))
    high = int(np.searchsorted(counts, tiny.size - tail, side="left"))
    return high - low <= 2 * FLAT_SPREAD


def contrast(tiny: np.ndarray) -> float:
    """The standard deviation of the luma: how much picture there is (0 for a flat frame)."""
    return float(cv2.meanStdDev(tiny)[1][0, 0])


def fade_reach(outward: list[tuple[float, float]], edge: float) -> float:
    """Where a fade's half ends, from the (time, contrast) of the frames beside its flat run,
    nearest the run (`edge`) first: the first frame whose contrast has stopped rising, at least
    FADE_CONTRAST of the most in the PLATEAU_SECONDS beyond it. Not the most within FADE_SECONDS:
    a shorter shot before the fade may have less contrast than the shot before it, and the fade
    would then reach back over a cut into that shot."""
    for k, (t, c) in enumerate(outward):
        beyond = [other for u, other in outward[k:] if abs(u - t) <= PLATEAU_SECONDS]
        if c >= FADE_CONTRAST * max(beyond):
            return t
    return outward[-1][0] if outward else edge


def mix_weights(a: np.ndarray, frames: list[np.ndarray], b: np.ndarray) -> list[float]:
    """How far each frame is from `a` towards `b` (0 at a, 1 at b): its projection on b - a."""
    first = a.astype(np.float32)
    towards = b.astype(np.float32) - first
    length = float((towards * towards).sum())
    if length <= 0:
        return [0.0 for _ in frames]
    return [float(((frame.astype(np.float32) - first) * towards).sum()) / length for frame in frames]


class _History:
    """The recent frames by time, for looking up the frame nearest a moment."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.frames: list[np.ndarray] = []
        self.indices: list[int] = []
        self._blurred: list[np.ndarray | None] = []  # each frame blurred by RESIDUE_BLUR, once

    def add(self, index: int, time: float, tiny: np.ndarray) -> None:
        self.indices.append(index)
        self.times.append(time)
        self.frames.append(tiny)
        self._blurred.append(None)

    def blurred(self, at: int) -> np.ndarray:
        """The frame at position `at` blurred by RESIDUE_BLUR (made on first use: a frame is A, M
        and B of many windows)."""
        done = self._blurred[at]
        if done is None:
            done = self._blurred[at] = cv2.GaussianBlur(self.frames[at], (0, 0), RESIDUE_BLUR)
        return done

    def nearest(self, time: float) -> int:
        """The position of the frame nearest `time`."""
        at = bisect.bisect_left(self.times, time)
        if at == len(self.times) or (at > 0 and time - self.times[at - 1] <= self.times[at] - time):
            return max(at - 1, 0)
        return at

    def forget_before(self, time: float) -> int:
        """Drop frames older than `time`; returns how many went."""
        gone = bisect.bisect_left(self.times, time)
        del self.times[:gone], self.frames[:gone], self.indices[:gone], self._blurred[:gone]
        return gone


class DissolveDetector:
    """Windows of `window` seconds: B is evaluated once a frame `steady` seconds after it is in,
    so a dissolve is reported about half a window and the steady time after it ends.

    Every window inside a linear dissolve passes (any frame half-way between two of it is their
    average), so a run of passing windows is one dissolve; its extent and cut come from the mix
    weights of the frames between the steady picture before the run's first window and after
    its last."""

    def __init__(self, window: float = DISSOLVE_SECONDS, steady: float | None = None) -> None:
        self.window = window
        self.steady = min(window, STEADY_SECONDS) if steady is None else steady
        self.history = _History()
        self._next = 0  # position in history of the next B to evaluate
        self._run: tuple[float, float] | None = None  # the run's (steady frame before, after)

    def push(self, index: int, time: float, tiny: np.ndarray) -> Cut | None:
        h = self.history
        h.add(index, time, tiny)
        found = None
        while self._next < len(h.times) and h.times[self._next] <= time - self.steady:
            found = self._evaluate(self._next) or found
            self._next += 1
        keep = 1.2 * (self.window + self.steady) + max(DISSOLVE_WINDOWS) + 0.2
        self._next -= h.forget_before(h.times[self._next - 1] - keep) if self._next else 0
        return found

    def flush(self) -> Cut | None:
        return self._end_run()

    @property
    def earliest(self) -> float:
        """The earliest time a cut (or its guard) not yet reported can have."""
        if self._run is not None:
            return self._run[0]
        h = self.history
        newest = h.times[-1] if h.times else 0.0
        return newest - 2 * self.steady - self.window

    def _evaluate(self, at: int) -> Cut | None:
        h, w, s = self.history, self.window, self.steady
        t = h.times[at]
        if t - w - s < h.times[0] - 1e-6:
            return None  # not enough before it (the video's first seconds)
        a, m, p, f = (h.nearest(t - w), h.nearest(t - w / 2), h.nearest(t - w - s), h.nearest(t + s))
        frames = h.frames
        span = shape_change(frames[a], frames[at])
        if span >= MIN_SPAN:
            whole = float(cv2.norm(frames[a], frames[at], cv2.NORM_L1)) / frames[a].size
            if w <= BLURRED_WINDOW:  # residue(..., RESIDUE_BLUR), each frame blurred once
                rest = residue(h.blurred(a), h.blurred(m), h.blurred(at))
            else:
                rest = residue(frames[a], frames[m], frames[at])
            before = shape_change(frames[p], frames[a])
            after = shape_change(frames[at], frames[f])
            if is_dissolve(span, rest, before, after, whole=whole, steady=s / w):
                first = self._run[0] if self._run is not None else h.times[p]
                self._run = (first, h.times[f])
                return None
        return self._end_run()

    def _end_run(self) -> Cut | None:
        run, self._run = self._run, None
        if run is None:
            return None
        h = self.history
        lo, hi = h.nearest(run[0]), h.nearest(run[1])
        if hi - lo < 2:
            return None
        frames, times, indices = h.frames[lo : hi + 1], h.times[lo : hi + 1], h.indices[lo : hi + 1]
        weights = mix_weights(frames[0], frames, frames[-1])
        inside = [k for k, weight in enumerate(weights) if MIX_EDGE < weight < 1 - MIX_EDGE]
        if not inside:
            return None
        middle = min(inside, key=lambda k: abs(weights[k] - 0.5))
        first, last = inside[0], inside[-1]
        return Cut(
            indices[middle],
            times[middle],
            "dissolve",
            (times[first - 1], times[min(last + 1, len(times) - 1)]),
        )


class FadeDetector:
    """Runs of flat frames between pictures (see the module)."""

    def __init__(self) -> None:
        self._seen_picture = False
        self._run: list[tuple[int, float]] = []  # the flat frames of the current run
        self._contrast: list[tuple[float, float]] = []  # (time, contrast) of recent frames
        self._newest = 0.0
        self._pending: tuple[Cut, float] | None = None  # a fade waiting for its far end (its run's end)

    def push(self, index: int, time: float, tiny: np.ndarray, full_range: bool) -> Cut | None:
        self._newest = time
        self._contrast.append((time, contrast(tiny)))
        while self._contrast and self._contrast[0][0] < time - 3 * FADE_SECONDS:
            self._contrast.pop(0)
        flat = is_black(tiny, full_range) or is_flat(tiny)
        done = self._finish(time) if self._pending is not None and not flat else None
        if flat:
            if self._pending is not None:  # flat again before the picture came back: one fade
                cut, _ = self._pending
                self._pending = None
                self._run = [(cut.index, cut.guard[0] if cut.guard else cut.time)]
            self._run.append((index, time))
            return done
        if self._run and self._seen_picture:
            middle = (self._run[0][1] + self._run[-1][1]) / 2
            first = min(self._run, key=lambda frame: abs(frame[1] - middle))
            start = self._reach(self._run[0][1], backwards=True)
            self._pending = (Cut(first[0], first[1], "fade", (start, time)), self._run[-1][1])
        self._run = []
        self._seen_picture = True
        return done

    def flush(self) -> Cut | None:
        return self._finish(float("inf"), final=True) if self._pending is not None else None

    def _finish(self, time: float, final: bool = False) -> Cut | None:
        """The pending fade, once FADE_SECONDS of picture after its flat run are in."""
        assert self._pending is not None
        cut, run_end = self._pending
        if not final and time < run_end + FADE_SECONDS:
            return None
        self._pending = None
        end = self._reach(run_end, backwards=False)
        assert cut.guard is not None
        return Cut(cut.index, cut.time, cut.kind, (cut.guard[0], max(end, cut.guard[1])))

    def _reach(self, edge: float, *, backwards: bool) -> float:
        """Where the fade on this side of a flat run (ending or starting at `edge`) begins."""
        if backwards:
            side = [(t, c) for t, c in reversed(self._contrast) if edge - FADE_SECONDS <= t < edge]
        else:
            side = [(t, c) for t, c in self._contrast if edge < t <= edge + FADE_SECONDS]
        return fade_reach(side, edge)

    @property
    def earliest(self) -> float:
        if self._pending is not None:
            return self._pending[0].guard[0] if self._pending[0].guard else self._pending[0].time
        if self._run:
            return self._run[0][1] - FADE_SECONDS
        return self._newest - FADE_SECONDS


class SceneDetector:
    """Hard cuts, dissolves and fades from one stream of tiny luma frames (see the module).

    `push` returns the cuts that are final, in order; `settled` is the time before which every
    frame's scene, and whether it is mid-transition, is known.
    """

    def __init__(self, fps: float, *, hard: AdaptiveDetector | None = None) -> None:
        self.hard = hard or AdaptiveDetector(min_scene_frames=max(2, round(fps * 0.25)))
        self.dissolves = [DissolveDetector(window) for window in DISSOLVE_WINDOWS]
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
        found = [d.push(index, time, tiny) for d in self.dissolves]
        for cut in [*found, self.fades.push(index, time, tiny, full_range)]:
            if cut is not None:
                self._add(cut)
        keep = max(0, len(self._times) - self.hard.lag - 2)
        self._first += keep
        del self._times[:keep]
        return self._release(final=False)

    def flush(self) -> list[Cut]:
        for index in self.hard.flush():
            self._add(Cut(index, self._time_of(index), "cut"))
        for cut in [*(d.flush() for d in self.dissolves), self.fades.flush()]:
            if cut is not None:
                self._add(cut)
        return self._release(final=True)

    def _time_of(self, index: int) -> float:
        return self._times[index - self._first]

    def _add(self, cut: Cut) -> None:
        """Into the buffer, merged with a cut of the same change."""
        for i, other in enumerate(self._buffer):
            if one_change(other, cut):
                self._buffer[i] = _merged(other, cut)
                return
        self._buffer.append(cut)
        self._buffer.sort(key=lambda c: c.time)

    def _release(self, *, final: bool) -> list[Cut]:
        if final:
            out, self._buffer = self._buffer, []
            self.settled = float("inf")
            return out
        horizon = min(*(d.earliest for d in self.dissolves), self.fades.earliest, self._hard_earliest())
        out = []
        while (
            self._buffer
            and self._buffer[0].time + MERGE_SECONDS < horizon
            and self._clear(self._buffer[0], horizon)
        ):
            out.append(self._buffer.pop(0))
        starts = [c.guard[0] if c.guard else c.time for c in self._buffer]
        self.settled = max(self.settled, min([horizon - MERGE_SECONDS, *starts]))
        return out

    @staticmethod
    def _clear(cut: Cut, horizon: float) -> bool:
        """No cut still to come can overlap this one's guard (and so merge with it)."""
        return cut.guard is None or cut.guard[1] + MERGE_SECONDS < horizon

    def _hard_earliest(self) -> float:
        pending = self._pushed - self.hard.lag
        return self._time_of(max(pending, self._first)) if self._times else 0.0


def one_change(a: Cut, b: Cut) -> bool:
    """Whether two reported cuts are one change: closer than MERGE_SECONDS, one of them gradual;
    or gradual both, one's middle in the other's guard. Two changes seconds apart whose guards
    only touch (a fade into a dim shot, then a dissolve that a long window saw from the fade's
    end) stay two, or the shot between them is lost."""
    if abs(a.time - b.time) < MERGE_SECONDS and (a.guard or b.guard):
        return True
    if a.guard is None or b.guard is None:
        return False
    return a.guard[0] <= b.time <= a.guard[1] or b.guard[0] <= a.time <= b.guard[1]


def _merged(a: Cut, b: Cut) -> Cut:
    """One cut for two reports of one change: the gradual one's place, both guards."""
    first = min((a, b), key=lambda c: _PRIORITY[c.kind])
    guards = [g for g in (a.guard, b.guard) if g is not None]
    guard = (min(g[0] for g in guards), max(g[1] for g in guards)) if guards else None
    return Cut(first.index, first.time, first.kind, guard)
