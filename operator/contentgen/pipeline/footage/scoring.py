"""How good a frame is for training, and whether two frames are near-duplicates.

Pure functions over 2-D uint8 luma arrays. Scores are comparable only between frames of the
size, so a video's candidates are all scored at one analysis size (long side 480-959 px,
halved from the source: `CANDIDATE_LONG_SIDE`).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# Candidates are scored (and searched for faces) at a long side of 480-959 px.
CANDIDATE_LONG_SIDE = 480
# Two frames whose 64-bit pHashes differ in at most this many bits look the same.
DUPLICATE_BITS = 10
# A frame below either is not used at all: too blurred (variance of the Laplacian at the
# analysis size) or too badly exposed (`exposure`).
MIN_SHARPNESS = 20.0
MIN_EXPOSURE = 0.25
# Black bars (of 255): edge rows and columns no brighter than this anywhere are not picture.
BAR_LEVEL = 32


def picture_area(gray: np.ndarray, full_range: bool) -> tuple[int, int, int, int]:
    """(x, y, width, height) of the picture inside black bars (letterbox, pillarbox: whole rows or
    columns at the edges no brighter than BAR_LEVEL). The whole frame when what is left would
    be under a quarter of it (a dark picture, not bars)."""
    height, width = gray.shape[:2]
    level = BAR_LEVEL if full_range else 16 + round(BAR_LEVEL * 219 / 255)
    cols = np.flatnonzero(gray.max(axis=0) > level)
    rows = np.flatnonzero(gray.max(axis=1) > level)
    if not len(cols) or not len(rows):
        return 0, 0, width, height
    x0, x1, y0, y1 = int(cols[0]), int(cols[-1]) + 1, int(rows[0]), int(rows[-1]) + 1
    if (x1 - x0) * (y1 - y0) < 0.25 * width * height:
        return 0, 0, width, height
    return x0, y0, x1 - x0, y1 - y0


def sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian: high for crisp detail, low for blur (motion or focus)."""
    laplacian = cv2.Laplacian(gray, cv2.CV_16S, ksize=3)
    _, std = cv2.meanStdDev(laplacian)
    return float(std[0, 0]) ** 2


def exposure(gray: np.ndarray) -> float:
    """1.0 for a well exposed frame, towards 0 for a dark, bright or clipped one.

    Penalises a mean luma outside 60-190 (of 255), blown highlights (> 251) beyond 5 % of the
    picture and crushed blacks (< 4) beyond 25 % (dark clothes and hair are black too).
    """
    mean = float(cv2.mean(gray)[0])
    level = 1.0
    if mean < 60:
        level = max(mean - 15, 0.0) / 45
    elif mean > 190:
        level = max(240 - mean, 0.0) / 50
    histogram = cv2.calcHist([gray], [0], None, [256], [0, 256]).ravel()
    black = float(histogram[:4].sum()) / gray.size
    white = float(histogram[252:].sum()) / gray.size
    clipping = 2.0 * max(black - 0.25, 0.0) + 3.0 * max(white - 0.05, 0.0)
    return max(level * (1.0 - min(clipping, 1.0)), 0.0)


def face_exposure(levels: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """`exposure` of the face at `box` (x, y, width, height in `levels`' pixels; `levels`: luma at
    true levels, 0-255), 0.0 for a box outside the picture.

    A face lit well in a dim room, or before a window that blows out the wall behind, is a good
    training image though the whole frame is badly exposed: with faces, the better of the two
    counts (dataset._Curator)."""
    x, y, w, h = box
    height, width = levels.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return 0.0
    return exposure(np.ascontiguousarray(levels[y0:y1, x0:x1]))


def quality(sharp: float, exposed: float) -> float:
    """One number to rank frames by: exposure times log-sharpness (doubling detail adds a step)."""
    return exposed * math.log2(1.0 + sharp)


def phash(gray: np.ndarray) -> int:
    """A 64-bit perceptual hash: the signs of the lowest 8×8 DCT frequencies of a 32×32 thumbnail
    against their median (the DC term left out of the median), as in pHash."""
    thumb = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(thumb)[:8, :8].ravel()
    median = float(np.median(low[1:]))
    return int.from_bytes(np.packbits(low > median).tobytes(), "big")


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def is_duplicate(a: int, b: int, max_bits: int = DUPLICATE_BITS) -> bool:
    return hamming(a, b) <= max_bits


# The small picture two frames are compared by when a face aligns them (`aligned_similarity`).
THUMB_WIDTH = 96


def thumb(gray: np.ndarray, width: int = THUMB_WIDTH) -> np.ndarray:
    """`gray` shrunk to `width` pixels across, as float32."""
    height = max(1, round(width * gray.shape[0] / gray.shape[1]))
    return cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)


def aligned_similarity(
    a: np.ndarray,
    face_a: tuple[float, float, float, float],
    b: np.ndarray,
    face_b: tuple[float, float, float, float],
) -> float:
    """How alike two frames' thumbnails are once `b` is moved and scaled so that its face
    (x, y, w, h as fractions of the frame) lies on `a`'s: the correlation of their pixels where
    both have picture, -1 to 1 (0 when they share less than a third of the frame). A camera
    that moved a little finds the same picture again; a mirrored or other picture does not."""
    height, width = a.shape
    scale = face_a[3] / face_b[3]
    ax, ay = (face_a[0] + face_a[2] / 2) * width, (face_a[1] + face_a[3] / 2) * height
    bx, by = (face_b[0] + face_b[2] / 2) * width, (face_b[1] + face_b[3] / 2) * height
    move = np.array([[scale, 0, ax - scale * bx], [0, scale, ay - scale * by]], np.float32)
    moved = cv2.warpAffine(cv2.resize(b, (width, height)), move, (width, height), flags=cv2.INTER_LINEAR)
    inside = cv2.warpAffine(np.ones((height, width), np.uint8), move, (width, height)) > 0
    if inside.mean() < 1 / 3:
        return 0.0
    x, y = a[inside], moved[inside]
    x, y = x - x.mean(), y - y.mean()
    spread = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum()) / spread if spread > 0 else 0.0
