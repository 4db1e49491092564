"""Frames that move, made the same every time, for tests of video encoding and training (numpy
alone: no model library is imported with them)."""

from __future__ import annotations

import numpy as np


def moving(frames: int, size: int = 64, colour: tuple[int, int, int] = (40, 160, 220)) -> list[np.ndarray]:
    """BGR frames of a disc crossing a gradient: something that moves, the same every time."""
    y, x = np.mgrid[0:size, 0:size]
    out = []
    for n in range(frames):
        frame = np.zeros((size, size, 3), np.uint8)
        frame[..., 0] = (x * 255 // size).astype(np.uint8)
        frame[..., 1] = (y * 255 // size).astype(np.uint8)
        cx, cy = 12 + n * (size - 24) // max(1, frames - 1), size // 2
        frame[(x - cx) ** 2 + (y - cy) ** 2 < (size // 6) ** 2] = colour
        out.append(frame)
    return out
