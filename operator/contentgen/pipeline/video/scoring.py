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
