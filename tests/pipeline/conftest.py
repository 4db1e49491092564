"""Small generated videos with known cuts and faces, made once per test session."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import pytest

from scripts.synthetic_video import (
    SyntheticVideo,
    face_scene,
    other_scene,
    random_plan,
    write_audio,
    write_video,
)

TOLERANCE = 0.5  # seconds: a detected cut this close to a true one counts as found

# Six shots, three with the face (one starting out of focus), one too short for the default
# minSceneSeconds of 1.0.
PLAN = [
    face_scene(2.5, variant=0, blurred_until=0.5),
    other_scene(2.0, "coffee", variant=1),
    face_scene(2.0, variant=1),
    other_scene(0.5, "rocket", variant=2),
    other_scene(2.0, "chelsea", variant=3),
    face_scene(2.0, variant=2),
]


@pytest.fixture(scope="session", autouse=True)
def _tflite_reader_available() -> None:
    if not hasattr(cv2.dnn, "readNetFromTFLite"):
        pytest.fail(
            f"cv2 {cv2.__version__} cannot read TFLite models (the face detector's): another OpenCV "
            "shadows opencv-python-headless in this environment; reinstall from requirements/dev.txt"
        )


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def shots(media_dir: Path) -> SyntheticVideo:
    """11 s, 320×180, 24 fps, with an audio track: PLAN's six shots."""
    return write_video(media_dir / "shots.mp4", PLAN, width=320, height=180, fps=24, audio=True)


@pytest.fixture(scope="session")
def random_shots(media_dir: Path) -> SyntheticVideo:
    """20 s, 256×144, 30 fps, random shots of 1.5-4 s, without audio."""
    plan = random_plan(20.0, seed=5, min_seconds=1.5, max_seconds=4.0, face_share=0.3)
    return write_video(media_dir / "random.mp4", plan, width=256, height=144, fps=30, seed=5)


@pytest.fixture(scope="session")
def no_faces(media_dir: Path) -> SyntheticVideo:
    plan = [other_scene(2.0, "coffee"), other_scene(2.0, "rocket"), other_scene(2.0, "moon")]
    return write_video(media_dir / "no-faces.mp4", plan, width=320, height=180, fps=24)


@pytest.fixture(scope="session")
def audio_only(media_dir: Path) -> Path:
    return write_audio(media_dir / "voice.m4a", 2.0)


def match_cuts(
    found: Sequence[float], truth: Sequence[float], tolerance: float = TOLERANCE
) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives); each true cut matches at most once."""
    unmatched = list(truth)
    hits = 0
    for cut in found:
        near = [t for t in unmatched if abs(t - cut) <= tolerance]
        if near:
            unmatched.remove(min(near, key=lambda t: abs(t - cut)))
            hits += 1
    return hits, len(found) - hits, len(unmatched)


def cut_f1(found: Sequence[float], truth: Sequence[float], tolerance: float = TOLERANCE) -> float:
    tp, fp, fn = match_cuts(found, truth, tolerance)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def scene_of(video: SyntheticVideo, time: float) -> int:
    """The true scene index at `time` seconds."""
    return next(i for i, (start, end) in enumerate(video.scenes) if start <= time < end)
