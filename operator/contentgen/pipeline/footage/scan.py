"""The single pass over a video: scenes as they close, each with its best candidate frames.

Frames that no other frame refers to (most B-frames) are not decoded at all: the scenes
and candidates need a few frames a second, not every one (`decode.decode(skip_nonref=True)`).
The decoding runs on a thread of its own, a few frames ahead (`decode.DecodeAhead`), so that
it goes on while a frame is analysed here.
Per decoded frame the work is tiny: the Y plane is shrunk to 100-199 px (long side) for the
scene detector (`decode.thumbnail`; hard cuts, dissolves and fades, see transitions.py).
Every `sample_every` seconds a frame becomes a candidate: its luma is halved down to
480-959 px and scored for sharpness and exposure; the `keep` best of each scene stay in
memory as decoded frames, the others are let go at once. Because the detector reports
changes late (about two seconds for dissolves), the newest candidates wait in `pending`
until it is clear which scene they belong to; those that fall mid-transition (two shots
mixed, or a dim picture on its way to or from black) are let go.

Times are seconds from the first frame (players show a stream that starts at a later
timestamp from 0 too).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from contextlib import AbstractContextManager, closing
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import av
import numpy as np

from contentgen.errors import InvalidInput
from contentgen.pipeline.progress import SubProgress

from .decode import AHEAD, DecodeAhead, decode, expand_range, luma, reduce, thumbnail, upright
from .scenes import ANALYSIS_LONG_SIDE
from .scoring import CANDIDATE_LONG_SIDE, exposure, picture_area, quality, sharpness
from .selection import Candidate, CandidatePool
from .transitions import Cut, SceneDetector


@dataclass(eq=False)
class Analysed:
    """A candidate's decoded frame and its upright analysis luma (`scale` source px per px);
    `area` is the picture inside any black bars, (x, y, width, height) in `gray`'s pixels;
    `full_range`: whether `gray` is full-range luma (else video range, 16-235)."""

    frame: av.VideoFrame
    gray: np.ndarray
    scale: float
    area: tuple[int, int, int, int] = (0, 0, 0, 0)
    full_range: bool = True

    @property
    def size(self) -> tuple[int, int]:
        """The upright source frame's (width, height)."""
        return round(self.gray.shape[1] * self.scale), round(self.gray.shape[0] * self.scale)


# A scene whose every candidate lies in a transition's guard (a guard can reach past the mix: a
# long window's estimate of a dissolve beside a fade into a dim shot) is judged on the guarded
# candidates farthest from the middles of the transitions beside it, at least this far from each
# (a 2 s dissolve has ended there; the longest, 3 s, is down to a sixth of the other shot). At
# most SPARE guarded candidates are kept meanwhile.
CLEAR_SECONDS = 1.0
SPARE = 48
T = TypeVar("T")


def spared(
    guarded: Iterable[Candidate[T]], start: float, end: float, middles: list[float], keep: int
) -> list[Candidate[T]]:
    """The scene's guarded candidates to judge it on when it has no other: the `keep` farthest from
    every transition's middle in `middles`, each at least CLEAR_SECONDS from all of them."""

    def distance(candidate: Candidate[T]) -> float:
        return min((abs(candidate.time - middle) for middle in middles), default=math.inf)

    inside = [c for c in guarded if start <= c.time < end and distance(c) >= CLEAR_SECONDS]
    return sorted(inside, key=distance, reverse=True)[:keep]


@dataclass
class ClosedScene:
    index: int
    start: float
    end: float
    candidates: list[Candidate[Analysed]]  # best first

    @property
    def seconds(self) -> float:
        return self.end - self.start


def analyse(
    index: int, time: float, frame: av.VideoFrame, y: np.ndarray, full_range: bool
) -> Candidate[Analysed]:
    """Score one frame's picture (inside any black bars) at analysis size: sharpness and
    exposure from its luma `y`.

    Sharpness is measured on luma as decoded (video range or not): expanding it to 0-255
    would scale every frame's score of a video alike. Exposure needs true levels: video-range
    luma is expanded first. Bars would count as blur and as crushed blacks.
    """
    gray = upright(reduce(y, CANDIDATE_LONG_SIDE), frame.rotation)
    x, y0, w, h = area = picture_area(gray, full_range)
    picture = gray[y0 : y0 + h, x : x + w]
    levels = picture if full_range else expand_range(picture)
    sharp, exposed = sharpness(picture), exposure(levels)
    turned = frame.rotation % 180 != 0
    return Candidate(
        index=index,
        time=time,
        quality=quality(sharp, exposed),
        sharpness=sharp,
        payload=Analysed(frame, gray, frame.width / gray.shape[0 if turned else 1], area, full_range),
        exposure=exposed,
    )


class Scanner:
    """Iterate to decode `path` once; yields every scene as it closes.

    After the iteration `scenes` holds every scene's (start, end) in seconds,
    `frames_decoded` the frames decoded and `duration` the seconds covered. `ahead`: how many
    frames the decoder thread may decode ahead of the analysis (`DecodeAhead`); 0 decodes on
    the iterating thread, between analyses (the same scenes and candidates, more slowly).
    """

    def __init__(
        self,
        path: Path,
        *,
        fps: float,
        duration: float,
        progress: SubProgress,
        sample_every: float = 0.25,
        keep: int = 3,
        max_seconds: float | None = None,
        ahead: int = AHEAD,
    ) -> None:
        self.path, self.progress, self.max_seconds = path, progress, max_seconds
        self.ahead = ahead
        self.fps = fps if fps > 0 else 25.0
        self.expected = duration
        self.sample_every = sample_every
        self.keep = keep
        self.detector = SceneDetector(self.fps)
        self.scenes: list[tuple[float, float]] = []
        self.cuts: list[Cut] = []
        self.frames_decoded = 0
        self.duration = 0.0

    def __iter__(self) -> Generator[ClosedScene, None, None]:
        frames: AbstractContextManager[Iterable[av.VideoFrame]]
        if self.ahead:
            frames = DecodeAhead(self.path, depth=self.ahead, skip_nonref=True)
        else:
            frames = closing(decode(self.path, skip_nonref=True))  # closes the container
        with frames as decoded:
            yield from self._scan(decoded)

    def _scan(self, frames: Iterable[av.VideoFrame]) -> Iterator[ClosedScene]:
        detector, scene = self.detector, _Scene(self)
        limit = self.max_seconds if self.max_seconds is not None else math.inf
        # Progress goes out once per percent: at these times into the video.
        percent_seconds = self.expected / 100 if self.expected > 0 else math.inf
        next_report, next_sample, time = 0.0, 0.0, 0.0
        index, origin = -1, None
        for index, frame in enumerate(frames):
            stamp = frame.time
            if origin is None:
                origin = stamp or 0.0
            time = stamp - origin if stamp is not None else index / self.fps
            if time > limit:
                raise InvalidInput(
                    f"{self.path.name} is longer than the limit of {limit:g} s; "
                    "trim the video or split it into parts"
                )
            y, full_range = luma(frame, CANDIDATE_LONG_SIDE)
            for cut in detector.push(thumbnail(y, ANALYSIS_LONG_SIDE), time, full_range):
                yield scene.close(cut, cut.time)
            if time >= next_sample:
                # A frame too dark or too bright as a whole stays a candidate (ranked low by its
                # quality): with faceFilter its face's exposure decides (a dim room, a window
                # behind the person; dataset._Curator.take).
                scene.pending.append(analyse(index, time, frame, y, full_range))
                next_sample = time + self.sample_every
            scene.settled(detector.settled)
            if time >= next_report:
                percent = min(99, int(time / percent_seconds))
                self.progress(float(percent))
                next_report = (percent + 1) * percent_seconds
        self.frames_decoded = index + 1
        if self.frames_decoded == 0:
            raise InvalidInput(f"{self.path.name} has no video frames; point the source at a video file")
        for cut in detector.flush():
            yield scene.close(cut, cut.time)
        scene.drain(math.inf, math.inf)
        self.duration = time + 1 / self.fps
        yield scene.close(None, self.duration)


class _Scene:
    """The scene being read: its sampled candidates waiting until the detector has settled past
    them, the best of those kept, the spans of transitions they must stay out of, and the
    guarded ones kept spare for a scene that has no other (`spared`)."""

    def __init__(self, scanner: Scanner) -> None:
        self.scanner = scanner
        self.pool: CandidatePool[Analysed] = CandidatePool(scanner.keep)
        self.pending: deque[Candidate[Analysed]] = deque()
        self.guards: list[tuple[float, float]] = []  # mid-transition time spans
        self.spare: deque[Candidate[Analysed]] = deque(maxlen=SPARE)
        self.start = 0.0

    def drain(self, before_index: float, before_time: float) -> None:
        """The pending candidates before both marks into the pool, or spare where guarded."""
        pending = self.pending
        while pending and pending[0].index < before_index and pending[0].time < before_time:
            candidate = pending.popleft()
            if not any(a <= candidate.time <= b for a, b in self.guards):
                self.pool.offer(candidate)
            else:
                self.spare.append(candidate)

    def settled(self, at: float) -> None:
        """The detector will cut nothing before `at`: what came before is judged now."""
        self.drain(math.inf, at)
        self.guards[:] = [g for g in self.guards if g[1] >= at - 60]

    def close(self, cut: Cut | None, end: float) -> ClosedScene:
        """The scene ends at `end` (at `cut`, or the video's end); the next begins there."""
        scanner = self.scanner
        if cut is not None:
            scanner.cuts.append(cut)
            if cut.guard is not None:
                self.guards.append(cut.guard)
            self.drain(cut.index, math.inf)
        if not len(self.pool):
            middles = [c.time for c in scanner.cuts[-2:]]
            for candidate in spared(self.spare, self.start, end, middles, scanner.keep):
                self.pool.offer(candidate)
        self.spare.clear()
        scene = ClosedScene(len(scanner.scenes), self.start, end, self.pool.take())
        scanner.scenes.append((self.start, end))
        self.start = end
        return scene
