"""Where a video LoRA's clips are cut: pure decisions over the shots the scene stage found.

A clip is `frames` frames at the model's rate (Wan: 4k+1 frames at 16 fps, api/base_models.py's
`FrameRule`), taken from the source at those times (the source frame nearest each), so it plays
at the rate the model learns at whatever the source's own. It lies inside one shot: clear of the
shot's cuts by `MARGIN` seconds and of any transition's frames (a dissolve's or a fade's span,
transitions.Cut.guard), so no clip shows two shots. At most `PER_SHOT` clips a shot, spread over
it; where the subject leaves some frame of a clip, the next window of the same shot is tried
(`windows` lists them, best first).

Each clip is cropped to one box for all its frames: a resolution bucket's shape (about 480p's
pixels in 16:9, 4:3, 1:1, 3:4 or 9:16, sides on multiples of 16, as Wan's latents want them) that
holds the subject's face in every frame with head-and-shoulders room (with others near, a close-up
of the face), and leaves every other face out but marginally (crop.MARGINAL); where none does the
shot's clip is `crowded`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .crop import MARGINAL, inside_share
from .faces import Box

MARGIN = 0.25  # seconds kept clear of a shot's cut, each side
PER_SHOT = 2
WINDOWS_PER_SHOT = 6  # at most this many windows of a shot are tried
# (width, height): about 832 × 480's pixels, in each shape a clip may have
BUCKETS: tuple[tuple[int, int], ...] = ((832, 480), (704, 528), (624, 624), (528, 704), (480, 832))
# The crop around the subject's faces: this many face heights of room above, beside and below
# their union (head and shoulders), at least.
ROOM_ABOVE, ROOM_SIDE, ROOM_BELOW = 0.6, 1.0, 1.6
# ... or, where other faces are near, this share of that room (a close-up, as crop.MIN_CONTEXT's)
TIGHT = 0.15


@dataclass(frozen=True)
class Window:
    """A clip's place: `frames` frames at `fps` from `start` (seconds into the source), in `shot`."""

    shot: int
    start: float
    frames: int
    fps: int

    @property
    def end(self) -> float:
        """When its last frame ends."""
        return self.start + self.frames / self.fps

    def times(self) -> list[float]:
        """Each frame's time in the source."""
        return [self.start + i / self.fps for i in range(self.frames)]


def clear_spans(
    shot: tuple[float, float], guards: Sequence[tuple[float, float]], margin: float = MARGIN
) -> list[tuple[float, float]]:
    """The stretches of `shot` (start, end) clear of its cuts by `margin` and of every transition
    span in `guards` (each widened by `margin` too), in order."""
    start, end = shot[0] + margin, shot[1] - margin
    spans = [(start, end)] if end > start else []
    for low, high in sorted(guards):
        low, high = low - margin, high + margin
        cut: list[tuple[float, float]] = []
        for a, b in spans:
            if high <= a or low >= b:
                cut.append((a, b))
                continue
            if low > a:
                cut.append((a, low))
            if high < b:
                cut.append((high, b))
        spans = cut
    return spans


def windows(
    shot: int,
    spans: Sequence[tuple[float, float]],
    frames: int,
    fps: int,
    *,
    per_shot: int = PER_SHOT,
    tries: int = WINDOWS_PER_SHOT,
) -> list[Window]:
    """The windows of a clip of `frames` frames at `fps` that fit in `spans`, best first: the
    first `per_shot` spread evenly over the shot's clear time (the longest stretch first), then
    those between them, at most `tries` in all and none overlapping another."""
    length = frames / fps
    places: list[float] = []
    for a, b in sorted(spans, key=lambda s: s[0] - s[1]):
        count = min(tries, math.floor((b - a) / length))
        slot = (b - a) / max(1, count)  # each window centred in a slot of its own
        places += [a + slot * i + (slot - length) / 2 for i in range(count)]
    spread = _spread(places, per_shot)
    ordered = spread + [p for p in places if p not in spread]
    return [Window(shot, round(p, 6), frames, fps) for p in ordered[:tries]]


def _spread(places: list[float], count: int) -> list[float]:
    """`count` of `places` as far apart as they go: the ends of the run first, then its middle."""
    if len(places) <= count:
        return list(places)
    ordered = sorted(places)
    picks = [ordered[round(i * (len(ordered) - 1) / max(1, count - 1))] for i in range(count)]
    return list(dict.fromkeys(picks))


def overlaps(a: Window, b: Window) -> bool:
    return a.shot == b.shot and a.start < b.end and b.start < a.end


def chosen(per_shot: Sequence[Sequence[Window]], most: int) -> tuple[list[Window], int]:
    """At most `most` clips from the shots' kept windows (each shot's in order of preference): one
    from every shot first, in the shots' order, then seconds; and how many were left out."""
    picked: list[Window] = []
    rounds = max((len(w) for w in per_shot), default=0)
    for depth in range(rounds):
        for found in per_shot:
            if depth < len(found):
                picked.append(found[depth])
    kept = sorted(picked[:most], key=lambda w: w.start)
    return kept, max(0, len(picked) - most)


def bucket(aspect: float) -> tuple[int, int]:
    """The bucket whose shape is nearest `aspect` (width / height)."""
    return min(BUCKETS, key=lambda size: abs(math.log(size[0] / size[1]) - math.log(aspect)))


def clip_crop(
    width: int, height: int, subject: Sequence[Box], others: Sequence[Box], *, area: Box | None = None
) -> Box | None:
    """One box for a clip (source pixels): the largest of a bucket's shape inside the picture
    (`area`, the frame inside black bars) that holds every box of the subject's face in
    `subject` (one a frame) with head-and-shoulders room, and no face of `others` (any frame's)
    more than MARGINAL inside. The buckets are tried nearest the picture's own shape first.
    None where no box does."""
    if not subject:
        return None
    area = area or Box(0, 0, width, height)
    shapes = sorted(BUCKETS, key=lambda s: abs(math.log(s[0] / s[1]) - math.log(area.w / area.h)))
    for room in (1.0, TIGHT):  # head and shoulders, else (others near) the face close up
        need = _needed(subject, area, room)
        for bw, bh in shapes:
            found = _fitted(area, need, bw / bh, others)
            if found is not None:
                return found
    return None


def _needed(subject: Sequence[Box], area: Box, room: float) -> Box:
    """What a crop must hold: the union of the subject's faces with `room` times the
    head-and-shoulders margins, cut by the picture's edge (the margins may be; the faces not)."""
    face = max(max(b.h, b.w) for b in subject)
    x0 = min(b.x for b in subject) - room * ROOM_SIDE * face
    y0 = min(b.y for b in subject) - room * ROOM_ABOVE * face
    x1 = max(b.x + b.w for b in subject) + room * ROOM_SIDE * face
    y1 = max(b.y + b.h for b in subject) + room * ROOM_BELOW * face
    left, top = max(x0, area.x), max(y0, area.y)
    return Box(
        round(left), round(top), round(min(x1, area.x + area.w) - left), round(min(y1, area.y + area.h) - top)
    )


def _fitted(area: Box, need: Box, aspect: float, others: Sequence[Box]) -> Box | None:
    """The largest box of `aspect` inside `area` that holds `need` and leaves `others` out, slid
    and shrunk in steps; None where none does."""
    full_w = min(area.w, area.h * aspect)
    least_w = max(need.w, need.h * aspect)
    if least_w > full_w + 0.5:
        return None
    w = full_w
    while w >= least_w - 0.5:
        h = w / aspect
        for box in _placements(area, need, round(w), round(h)):
            if all(inside_share(other, box) <= MARGINAL for other in others):
                return box
        if w <= least_w:
            break
        w = max(least_w, w * 0.9)
    return None


def _placements(area: Box, need: Box, w: int, h: int) -> list[Box]:
    """Boxes of w × h inside `area` holding `need`, centred on it first, then slid."""
    lo_x, hi_x = max(area.x, need.x + need.w - w), min(need.x, area.x + area.w - w)
    lo_y, hi_y = max(area.y, need.y + need.h - h), min(need.y, area.y + area.h - h)
    if lo_x > hi_x or lo_y > hi_y:
        return []
    cx, cy = need.x + need.w / 2 - w / 2, need.y + need.h / 2 - h / 2
    xs = sorted({round(min(max(cx, lo_x), hi_x)), lo_x, hi_x, round((lo_x + hi_x) / 2)})
    ys = sorted({round(min(max(cy, lo_y), hi_y)), lo_y, hi_y, round((lo_y + hi_y) / 2)})
    boxes = [Box(int(x), int(y), w, h) for x in xs for y in ys]
    return sorted(boxes, key=lambda b: abs(b.x - cx) + abs(b.y - cy))
