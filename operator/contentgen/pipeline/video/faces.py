"""Frontal faces, found with the Haar cascade that ships inside opencv-python-headless 4.x."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

CASCADE = "haarcascade_frontalface_default.xml"
# Faces smaller than this share of the picture's short side are too small to learn from: a
# 720p frame's face would be under 108 px, blown up ~10× in a 1024 px training image.
MIN_FACE_SHARE = 0.15
SEARCH_LONG_SIDE = 480


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2

    @property
    def area(self) -> int:
        return self.w * self.h

    def scaled(self, factor: float) -> Box:
        return Box(
            round(self.x * factor), round(self.y * factor), round(self.w * factor), round(self.h * factor)
        )


def largest(boxes: Sequence[Box]) -> Box | None:
    return max(boxes, key=lambda box: box.area, default=None)


class FaceFinder:
    """Finds the largest frontal face in a luma image (the cascade loads once, on first use)."""

    def __init__(self, *, min_share: float = MIN_FACE_SHARE) -> None:
        self.min_share = min_share
        self._cascade: cv2.CascadeClassifier | None = None

    def _load(self) -> cv2.CascadeClassifier:
        if self._cascade is None:
            data = getattr(cv2, "data", None)
            path = Path(data.haarcascades if data else "") / CASCADE
            cascade = cv2.CascadeClassifier(str(path)) if hasattr(cv2, "CascadeClassifier") else None
            if cascade is None or cascade.empty():
                raise RuntimeError(
                    f"OpenCV's face cascade {CASCADE} is missing (cv2 {cv2.__version__}); install "
                    "opencv-python-headless 4.x, whose wheels bundle it"
                )
            self._cascade = cascade
        return self._cascade

    def find(self, gray: np.ndarray) -> Box | None:
        """The largest face in `gray`, in its pixels.

        The search runs on a copy whose long side is `SEARCH_LONG_SIDE` (smaller when `gray`
        is), which bounds its cost (~10 ms) whatever the source's resolution.
        """
        factor = min(1.0, SEARCH_LONG_SIDE / max(gray.shape[:2]))
        if factor < 1.0:
            size = (round(gray.shape[1] * factor), round(gray.shape[0] * factor))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        smallest = max(24, round(min(gray.shape[:2]) * self.min_share))
        found = self._load().detectMultiScale(
            gray, scaleFactor=1.2, minNeighbors=5, minSize=(smallest, smallest)
        )
        face = largest([Box(int(x), int(y), int(w), int(h)) for x, y, w, h in found])
        return face.scaled(1 / factor) if face is not None and factor < 1.0 else face
