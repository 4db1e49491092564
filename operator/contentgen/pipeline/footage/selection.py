"""Which frames make the dataset: the best few of each open scene, then the best scenes.

Memory stays bounded by construction: a scene being decoded keeps at most `k` candidate
frames (`CandidatePool`), and the dataset so far keeps at most `max_frames` picks
(`Shortlist`), whose images wait on disk. Ranking is by `quality` (see scoring.py); the
payloads (decoded frames, file paths) are the caller's business.

Two picks are the same shot (`same_shot`) when they are one framing seen twice. With faces:
the faces sit at about the same place at about the same size, and the whole frames, moved
and scaled so that the faces coincide, show the same picture (a camera that went on moving
a little still passes; a mirrored framing or another background does not). Without faces:
the whole frames look alike (perceptual hash). The training crop is not what is compared: a
crop centred on the face makes a zoomed-in and a zoomed-out framing of one person look
alike, and those are exactly the variety a LoRA needs. Light is compared too: the aligned
comparison is a correlation, blind to brightness, so the face's own mean luma tells a framing
lit another way (a dim room, a window, a brighter grade) apart from the same framing in the
same light (`one_light`); a lighting change is a different training image.

The limits were chosen on the face benchmark's development videos (bench/faces.py, sets `dev`
and `seen`), where one shot's two images differ by at most 8 % in face size and 4 % of the
frame in place and correlate at 0.90 or more once aligned, while distinct framings at about
the same place and size (mirrored) correlate at 0.72 at most.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from .scoring import aligned_similarity, is_duplicate

# One framing: faces at most this much larger, this far apart (fractions of the frame), and
# the aligned frames at least this alike (scoring.aligned_similarity).
SAME_SCALE = 1.15
SAME_SHIFT = 0.12
SAME_PICTURE = 0.85
# One light: the faces' mean luma at most this much apart (a ratio). One shot's frames stay within
# a few percent (a hand-held camera, noise, compression); the framings in another look of the
# transitions benchmark are ×0.45-×1.35 of it.
SAME_LIGHT = 1.12

T = TypeVar("T")
F = TypeVar("F")


@dataclass(eq=False)
class Candidate(Generic[T]):
    """A frame worth considering: where it is and how good it looks."""

    index: int
    time: float
    quality: float
    sharpness: float
    payload: T
    exposure: float = 1.0


class CandidatePool(Generic[T]):
    """The `k` best candidates offered since the last `take` (a min-heap on quality)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self._heap: list[tuple[float, int, Candidate[T]]] = []
        self._order = itertools.count()

    def offer(self, candidate: Candidate[T]) -> None:
        item = (candidate.quality, next(self._order), candidate)
        if len(self._heap) < self.k:
            heapq.heappush(self._heap, item)
        elif candidate.quality > self._heap[0][0]:
            heapq.heapreplace(self._heap, item)

    def take(self) -> list[Candidate[T]]:
        """The candidates, best first; the pool is empty afterwards."""
        ranked = [candidate for _, _, candidate in sorted(self._heap, key=lambda item: -item[0])]
        self._heap.clear()
        return ranked

    def __len__(self) -> int:
        return len(self._heap)


def choose(
    ranked: Sequence[Candidate[T]],
    find_face: Callable[[Candidate[T]], F | None] | None,
    *,
    searches: int = 2,
) -> tuple[Candidate[T], F | None] | None:
    """A scene's frame: the best one showing a face when `find_face` is given, else the best.

    A face search costs ~10 ms, so at most `searches` candidates are searched: the best, then
    the one furthest from it in time (the same shot a moment later looks alike; most
    differently, the person may have turned to the camera). `find_face` says what it found
    (faces, a box), None for nothing. Returns the best candidate
    without a face when no face was found (the caller decides whether that will do), and
    None for no candidates.
    """
    if not ranked:
        return None
    if find_face is not None:
        best = ranked[0]
        others = sorted(ranked[1:], key=lambda candidate: -abs(candidate.index - best.index))
        for candidate in [best, *others][:searches]:
            face = find_face(candidate)
            if face is not None:
                return candidate, face
    return ranked[0], None


@dataclass(eq=False)
class Pick(Generic[T]):
    """A scene's chosen frame, a contender for the dataset.

    `phash`: the whole frame's; `face_box`: the face as (x, y, w, h) fractions of the frame;
    `thumb`: the whole frame, small (scoring.thumb), for comparing framings.
    """

    scene: int
    time: float
    quality: float
    phash: int
    payload: T
    face: bool = False
    sharpness: float = 0.0
    face_box: tuple[float, float, float, float] | None = None
    thumb: np.ndarray | None = None
    light: float | None = None  # the face's mean luma (0-255, true levels), where it has a face


def one_framing(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    """Two faces (x, y, w, h fractions) at about the same place and size."""
    scale = max(a[3], b[3]) / min(a[3], b[3])
    dx = abs((a[0] + a[2] / 2) - (b[0] + b[2] / 2))
    dy = abs((a[1] + a[3] / 2) - (b[1] + b[3] / 2))
    return scale <= SAME_SCALE and dx <= SAME_SHIFT and dy <= SAME_SHIFT


def one_light(a: float | None, b: float | None) -> bool:
    """Two faces' mean luma within SAME_LIGHT of each other (unknown: the same)."""
    if a is None or b is None:
        return True
    low, high = sorted((max(a, 1.0), max(b, 1.0)))
    return high / low <= SAME_LIGHT


def same_shot(a: Pick[T], b: Pick[T]) -> bool:
    """Whether two picks show the same shot (see the module)."""
    if a.face_box is None or b.face_box is None:
        return a.face_box is None and b.face_box is None and is_duplicate(a.phash, b.phash)
    if not one_framing(a.face_box, b.face_box) or not one_light(a.light, b.light):
        return False
    if a.thumb is None or b.thumb is None:
        return is_duplicate(a.phash, b.phash)
    return aligned_similarity(a.thumb, a.face_box, b.thumb, b.face_box) >= SAME_PICTURE


@dataclass
class Admission(Generic[T]):
    """What `Shortlist.add` did: whether the pick got in, what it pushed out, and why."""

    admitted: bool
    dropped: list[Pick[T]]
    duplicate: bool  # the conflict was the same shot (else: the list was full)


class Shortlist(Generic[T]):
    """The best `capacity` picks so far, no two of the same shot.

    `add` says whether the pick got in and which picks it pushed out (for the caller to
    forget): a pick of the same shot as kept ones (`same_shot`) replaces them only when it is
    better than all of them; otherwise, when full, the new pick replaces the worst kept one
    if it is better.
    """

    def __init__(self, capacity: int, *, duplicate: Callable[[Pick[T], Pick[T]], bool] = same_shot) -> None:
        self.capacity = capacity
        self.duplicate = duplicate
        self._picks: list[Pick[T]] = []

    def add(self, pick: Pick[T]) -> Admission[T]:
        alike = [kept for kept in self._picks if self.duplicate(kept, pick)]
        if alike:
            if pick.quality <= max(kept.quality for kept in alike):
                return Admission(False, [], duplicate=True)
            dropped = alike
        elif len(self._picks) < self.capacity:
            dropped = []
        else:
            worst = min(self._picks, key=lambda kept: kept.quality)
            if pick.quality <= worst.quality:
                return Admission(False, [], duplicate=False)
            dropped = [worst]
        self._picks = [kept for kept in self._picks if all(kept is not gone for gone in dropped)]
        self._picks.append(pick)
        return Admission(True, dropped, duplicate=bool(alike))

    def chronological(self) -> list[Pick[T]]:
        return sorted(self._picks, key=lambda pick: pick.time)

    def __len__(self) -> int:
        return len(self._picks)
