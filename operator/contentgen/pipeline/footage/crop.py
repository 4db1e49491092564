"""Square training crops: where to cut (pure geometry) and the resize to the output size.

What comes out: a square of `TARGET` (1024) pixels when the source has enough of them. The
crop may be enlarged by at most `MAX_UPSCALE` (1.5×): a 720p frame gives 1024 × 1024, a 360p
frame 540 × 540, instead of inventing pixels the trainer would learn as blur. Trainers resize
to their own bucket sizes anyway.

With a face the square is about four face-heights wide (head and shoulders, as portrait
training sets are framed), centred on the face with the face a little above the middle, and
never smaller than what reaches the output size without more than 1.5× enlargement. When other
people's faces are near (a group shot, a split screen), the square shrinks (down to
`MIN_CONTEXT` face-heights, a close-up) and slides (the face stays in its middle part) until
no other face is more than marginally inside it (`MARGINAL` of that face's box); when no such
square exists there is no crop (`subject_crop` returns None). Without a
face it is the largest square, slid along the long side to where the picture has the most
detail (edge energy), with a pull towards the centre.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from .faces import Box

TARGET = 1024
MAX_UPSCALE = 1.5
JPEG_QUALITY = 95
# A face's size times this is the side of the crop around it; with other faces near, at least
# MIN_CONTEXT times, and another face may show at most MARGINAL of its box in the crop.
FACE_CONTEXT = 4.0
MIN_CONTEXT = 1.8
MARGINAL = 0.2
# Where the face's centre may sit in a crop that had to slide: these fractions of its side.
_SLIDE_X = (0.3, 0.7)
_SLIDE_Y = (0.25, 0.6)


def output_side(crop_side: int, *, target: int = TARGET, max_upscale: float = MAX_UPSCALE) -> int:
    """The output square's side for a crop of `crop_side` source pixels."""
    return max(1, min(target, math.floor(crop_side * max_upscale)))


def _clamp(start: float, size: int, limit: int) -> int:
    return int(min(max(round(start), 0), max(limit - size, 0)))


def face_crop(
    width: int,
    height: int,
    face: Box,
    *,
    area: Box | None = None,
    target: int = TARGET,
    max_upscale: float = MAX_UPSCALE,
) -> Box:
    """A square around `face` (all in source pixels) that fits in the picture: `area` (the
    frame inside black bars), or the whole frame."""
    area = area or Box(0, 0, width, height)
    short = min(area.w, area.h)
    wanted = max(FACE_CONTEXT * max(face.w, face.h), target / max_upscale)
    side = int(min(short, round(wanted)))
    cx, cy = face.center
    # Head and shoulders: the face's centre at 40 % of the height.
    x = area.x + _clamp(cx - side / 2 - area.x, side, area.w)
    y = area.y + _clamp(cy - 0.4 * side - area.y, side, area.h)
    return Box(x, y, side, side)


def inside_share(box: Box, crop: Box) -> float:
    """The share of `box`'s area inside `crop`."""
    width = min(box.x + box.w, crop.x + crop.w) - max(box.x, crop.x)
    height = min(box.y + box.h, crop.y + crop.h) - max(box.y, crop.y)
    if width <= 0 or height <= 0:
        return 0.0
    return width * height / max(1, box.area)


def subject_crop(
    width: int,
    height: int,
    face: Box,
    others: Sequence[Box],
    *,
    area: Box | None = None,
    target: int = TARGET,
    max_upscale: float = MAX_UPSCALE,
) -> Box | None:
    """`face_crop`, with no face of `others` more than MARGINAL inside (see the module); None
    when every square from FACE_CONTEXT down to MIN_CONTEXT face sizes around the face, slid
    as far as allowed, shows another face."""
    preferred = face_crop(width, height, face, area=area, target=target, max_upscale=max_upscale)
    if not others or all(inside_share(other, preferred) <= MARGINAL for other in others):
        return preferred
    area = area or Box(0, 0, width, height)
    size = max(face.w, face.h)
    cx, cy = face.center
    side = float(preferred.w)
    smallest = min(side, MIN_CONTEXT * size)
    while side >= smallest - 0.5:
        span = int(side)
        positions = []
        for fx in np.linspace(*_SLIDE_X, 9):
            for fy in np.linspace(*_SLIDE_Y, 8):
                x = area.x + _clamp(cx - fx * span - area.x, span, area.w)
                y = area.y + _clamp(cy - fy * span - area.y, span, area.h)
                positions.append((abs(fx - 0.5) + abs(fy - 0.4), x, y))
        for _, x, y in sorted(positions):
            crop = Box(x, y, span, span)
            if inside_share(face, crop) < 0.999:
                continue
            if all(inside_share(other, crop) <= MARGINAL for other in others):
                return crop
        if side <= smallest:
            break
        side = max(smallest, side * 0.92)
    return None


def best_window(profile: np.ndarray, size: int, *, centre_pull: float = 0.25) -> int:
    """Start of the `size`-long window of `profile` with the most energy, pulled to the middle.

    Each window's energy is weighted by 1 - centre_pull × (its distance from the central
    window / the largest possible distance), so a corner wins only with clearly more detail.
    """
    count = len(profile) - size + 1
    if count <= 1:
        return 0
    sums = np.convolve(profile, np.ones(size), mode="valid")
    middle = (count - 1) / 2
    weights = 1.0 - centre_pull * np.abs(np.arange(count) - middle) / middle
    return int(np.argmax((sums + 1e-9) * weights))  # the epsilon: a blank profile gives the centre


def detail_crop(width: int, height: int, gray: np.ndarray, *, area: Box | None = None) -> Box:
    """The largest square in the picture (`area`, the frame inside black bars, or the whole
    frame), placed where the luma `gray` (any scale of the frame) has detail."""
    area = area or Box(0, 0, width, height)
    side = min(area.w, area.h)
    if area.w == area.h:
        return Box(area.x, area.y, side, side)
    landscape = area.w > area.h
    scale = width / gray.shape[1]
    window = gray[
        round(area.y / scale) : round((area.y + area.h) / scale),
        round(area.x / scale) : round((area.x + area.w) / scale),
    ]
    edges = np.abs(cv2.Laplacian(window, cv2.CV_32F, ksize=3))
    profile = edges.sum(axis=0 if landscape else 1)
    start = best_window(profile, max(1, round(side / scale))) * scale
    if landscape:
        return Box(area.x + _clamp(start, side, area.w), area.y, side, side)
    return Box(area.x, area.y + _clamp(start, side, area.h), side, side)


def face_thumbnail(image: np.ndarray, face: Box, side: int = 160) -> np.ndarray:
    """A `side`-pixel square of the face in `image` and a little around it (black beyond the
    picture), for contact sheets."""
    span = max(8, round(1.6 * max(face.w, face.h)))
    cx, cy = face.center
    x0, y0 = round(cx - span / 2), round(cy - span / 2)
    height, width = image.shape[:2]
    crop = np.zeros((span, span, *image.shape[2:]), image.dtype)  # only the square, not the frame
    left, top = max(x0, 0), max(y0, 0)
    right, bottom = min(x0 + span, width), min(y0 + span, height)
    if right > left and bottom > top:
        crop[top - y0 : bottom - y0, left - x0 : right - x0] = image[top:bottom, left:right]
    return cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA if span > side else cv2.INTER_LINEAR)


def render(image: np.ndarray, box: Box, side: int) -> np.ndarray:
    """Cut `box` out of `image` and resize it to side × side."""
    crop = image[box.y : box.y + box.h, box.x : box.x + box.w]
    if crop.shape[0] == side and crop.shape[1] == side:
        return np.ascontiguousarray(crop)
    shrinking = side < crop.shape[0]
    return cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LANCZOS4)


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return bytes(data)
