"""The single pass over a video: scenes as they close, each with its best candidate frames.

Frames that no other frame refers to (most B-frames) are not decoded at all: the scenes
and candidates need a few frames a second, not every one (`decode.decode(skip_nonref=True)`).
Per decoded frame the work is tiny: the Y plane is shrunk to 100-199 px (long side) for the
scene detector (`decode.thumbnail`). Every `sample_every` seconds a frame becomes a
candidate: its luma is halved down to 480-959 px and scored for sharpness and exposure; the
`keep` best of each scene stay in memory as decoded frames, the others are let go at once.
Because the detector reports a cut `lag` frames late, the newest candidates wait in
`pending` until it is clear which scene they belong to.

Times are seconds from the first frame (players show a stream that starts at a later
timestamp from 0 too).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from contentgen.errors import InvalidInput
from contentgen.pipeline.progress import SubProgress

from .decode import decode, expand_range, luma, reduce, thumbnail, upright
from .scenes import ANALYSIS_LONG_SIDE, AdaptiveDetector
from .scoring import CANDIDATE_LONG_SIDE, exposure, quality, sharpness
from .selection import Candidate, CandidatePool


@dataclass(eq=False)
class Analysed:
    """A candidate's decoded frame and its upright analysis luma (`scale` source px per px)."""

    frame: av.VideoFrame
    gray: np.ndarray
    scale: float

    @property
    def size(self) -> tuple[int, int]:
        """The upright source frame's (width, height)."""
        return round(self.gray.shape[1] * self.scale), round(self.gray.shape[0] * self.scale)


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
    index: int, time: float, frame: av.VideoFrame, y: np.ndarray, tiny: np.ndarray, full_range: bool
) -> Candidate[Analysed]:
    """Score one frame: sharpness from its luma `y` at analysis size, exposure from `tiny`.

    Sharpness is measured on luma as decoded (video range or not): expanding it to 0-255
    would scale every frame's score of a video alike. Exposure needs true levels, and the
    detector's tiny frame has them after a cheap expansion.
    """
    gray = upright(reduce(y, CANDIDATE_LONG_SIDE), frame.rotation)
    levels = tiny if full_range else expand_range(tiny)
    sharp, exposed = sharpness(gray), exposure(levels)
    turned = frame.rotation % 180 != 0
    return Candidate(
        index=index,
        time=time,
        quality=quality(sharp, exposed),
        sharpness=sharp,
        payload=Analysed(frame, gray, frame.width / gray.shape[0 if turned else 1]),
        exposure=exposed,
    )


class Scanner:
    """Iterate to decode `path` once; yields every scene as it closes.

    After the iteration `scenes` holds every scene's (start, end) in seconds,
    `frames_decoded` the frames decoded and `duration` the seconds covered.
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
        detector: AdaptiveDetector | None = None,
    ) -> None:
        self.path, self.progress, self.max_seconds = path, progress, max_seconds
        self.fps = fps if fps > 0 else 25.0
        self.expected = duration
        self.sample_every = sample_every
        self.keep = keep
        self.detector = detector or AdaptiveDetector(min_scene_frames=max(2, round(self.fps * 0.25)))
        self.scenes: list[tuple[float, float]] = []
        self.frames_decoded = 0
        self.duration = 0.0

    def __iter__(self) -> Iterator[ClosedScene]:
        detector, lag = self.detector, self.detector.lag
        pool: CandidatePool[Analysed] = CandidatePool(self.keep)
        pending: deque[Candidate[Analysed]] = deque()
        times: deque[float] = deque(maxlen=lag + 2)
        start, time = 0.0, 0.0

        def drain(upto: int) -> None:
            while pending and pending[0].index <= upto:
                pool.offer(pending.popleft())

        def close(end: float) -> ClosedScene:
            nonlocal start
            scene = ClosedScene(len(self.scenes), start, end, pool.take())
            self.scenes.append((start, end))
            start = end
            return scene

        limit = self.max_seconds if self.max_seconds is not None else math.inf
        # Progress goes out once per percent: at these times into the video.
        percent_seconds = self.expected / 100 if self.expected > 0 else math.inf
        next_report, next_sample = 0.0, 0.0
        index, origin = -1, None
        for index, frame in enumerate(decode(self.path, skip_nonref=True)):
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
            tiny = thumbnail(y, ANALYSIS_LONG_SIDE)
            times.append(time)
            cut = detector.push(tiny)
            if cut is not None:
                drain(cut - 1)
                yield close(times[cut - (index + 1 - len(times))])
            if time >= next_sample:
                pending.append(analyse(index, time, frame, y, tiny, full_range))
                next_sample = time + self.sample_every
            if pending and pending[0].index <= index - lag:
                drain(index - lag)
            if time >= next_report:
                percent = min(99, int(time / percent_seconds))
                self.progress(float(percent))
                next_report = (percent + 1) * percent_seconds

        self.frames_decoded = index + 1
        if self.frames_decoded == 0:
            raise InvalidInput(f"{self.path.name} has no video frames; point the source at a video file")
        for cut in detector.flush():
            drain(cut - 1)
            yield close(times[cut - (index + 1 - len(times))])
        drain(index)
        self.duration = time + 1 / self.fps
        yield close(self.duration)
