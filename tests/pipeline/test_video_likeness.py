"""Likeness over time (pipeline/likeness/clip.py) on real faces: clips encoded as a provider
delivers them (H.264), sampled and decoded as pipeline/videos.py does, judged against the subject's
dataset faces: the person throughout is good, a face that turns into someone else after two thirds
is poor for drifting (and says from when), another person throughout is poor, no face says so."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np

from contentgen.api import ResolvedLora, VideoLikeness
from contentgen.pipeline.clips import describe, frames_at
from contentgen.pipeline.likeness.clip import SAMPLES, Sampled, judge, sample_indices
from contentgen.pipeline.likeness.score import THRESHOLD
from contentgen.providers.offline_video import encode
from tests.pipeline.likeness_faces import LATER_SECONDS, moments, photo, reader, subject

FPS = 8
SIZE = (640, 480)
LORA = ResolvedLora(uri="file:///s/loras/u/uid-1/v2/model.safetensors", name="avatar", uid="uid-1", version=2)


def _framed(image: np.ndarray) -> np.ndarray:
    """`image` fitted into the clip's frame (letterboxed), as a video model's frame would hold it."""
    width, height = SIZE
    scale = min(width / image.shape[1], height / image.shape[0])
    fitted = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)))
    frame = np.zeros((height, width, 3), np.uint8)
    top, left = (height - fitted.shape[0]) // 2, (width - fitted.shape[1]) // 2
    frame[top : top + fitted.shape[0], left : left + fitted.shape[1]] = fitted
    return frame


def _clip(tmp_path: Path, pictures: list[np.ndarray], each: int = 6) -> Path:
    frames = [_framed(p) for p in pictures for _ in range(each)]
    return encode(tmp_path / "clip.mp4", iter(frames), fps=FPS, width=SIZE[0], height=SIZE[1])


def _judged(video: Path) -> VideoLikeness:
    info = describe(video)
    wanted = sample_indices(info.frames)
    frames = frames_at(video, wanted)
    sampled = [Sampled(round(n / info.fps, 3), reader().faces(frames[n])) for n in wanted]
    names, rows = subject()
    return judge(sampled, rows, names, LORA)


def test_samples_spread_evenly_over_any_length() -> None:
    assert sample_indices(0) == []
    assert sample_indices(5) == [0, 1, 2, 3, 4]
    many = sample_indices(161)
    assert len(many) == SAMPLES and many[0] < 161 / SAMPLES and many[-1] > 161 - 161 / SAMPLES
    assert all(b - a in (10, 11) for a, b in itertools.pairwise(many))


def test_the_person_throughout_is_good(tmp_path: Path) -> None:
    person = [moments()[s] for s in LATER_SECONDS]  # moments the "dataset" never saw
    report = _judged(_clip(tmp_path, person))
    assert report.verdict == "good", report.reasons
    assert report.median is not None and report.median >= THRESHOLD
    assert report.lowest is not None and report.lowest >= THRESHOLD
    assert report.drift is not None and abs(report.drift) < 0.2
    assert len(report.samples) == SAMPLES and all(s.faces >= 1 for s in report.samples)
    assert report.upper_bound is not None and report.percent is not None and report.lora == LORA
    assert report.reasons[0].startswith("the face is the person: median")


def test_a_face_that_becomes_someone_else_is_poor_for_drifting(tmp_path: Path) -> None:
    person = [moments()[s] for s in LATER_SECONDS]
    stranger = [photo("grace_hopper")] * 2
    report = _judged(_clip(tmp_path, person + person + stranger))  # the last third another person
    assert report.verdict == "poor", report.reasons
    assert report.drift is not None and report.drift > THRESHOLD
    assert "drifts from the person" in report.reasons[0]
    assert report.lowest is not None and report.lowest < THRESHOLD
    length = 8 * 6 / FPS
    assert report.lowest_at_seconds is not None and report.lowest_at_seconds > length * 2 / 3 - 1
    at = float(report.reasons[0].rsplit("from ", 1)[1].removesuffix(" s"))
    assert length * 2 / 3 - 1 <= at <= length * 2 / 3 + 1  # where the stranger's frames begin


def test_another_person_throughout_is_poor(tmp_path: Path) -> None:
    report = _judged(_clip(tmp_path, [photo("grace_hopper"), photo("feat_man")]))
    assert report.verdict == "poor" and report.median is not None and report.median < THRESHOLD
    assert report.reasons[0].startswith("the face is not the person")


def test_a_clip_without_faces_says_so(tmp_path: Path) -> None:
    gradient = np.tile(np.linspace(0, 255, SIZE[0], dtype=np.uint8), (SIZE[1], 1))
    report = _judged(_clip(tmp_path, [cv2.cvtColor(gradient, cv2.COLOR_GRAY2BGR)]))
    assert report.verdict == "no-faces" and report.median is None
    assert "no face in any of the 6 frames sampled" in report.reasons[0]
