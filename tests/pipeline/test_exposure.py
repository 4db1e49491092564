"""Framings at another brightness (issue 36): a face lit well in a frame too dark or too bright as
a whole is kept, judged by the face's exposure; a frame whose face is badly exposed too is not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from contentgen.api import DatasetSpec
from contentgen.pipeline.dataset import DatasetTooSmall, build_dataset
from contentgen.pipeline.footage.scoring import MIN_EXPOSURE, exposure, face_exposure
from scripts.synthetic_video import SceneSpec, SyntheticVideo, other_scene, write_video
from tests.pipeline.conftest import scene_of

# (photograph of the person, its medium shot's photograph, the look of each framing): Grace
# Hopper's dark photograph at ×0.68 is a dim room (the whole frame's mean luma about 25 of 255);
# the man filmed at home before a white wall at ×1.22 is a window behind the camera (40 % of the
# frame blown out); their faces stay between 50 and 200.
PEOPLE = {
    "dim medium shot": ("grace_hopper", "grace_hopper:wide", {"close": 1.0, "medium": 0.68}),
    "bright close-up": ("home_man", "home_man_later:wide", {"close": 1.22, "medium": 1.0}),
    "both": ("grace_hopper", "grace_hopper:wide", {"close": 1.22, "medium": 0.68}),
}


def _plan(close: str, medium: str, looks: dict[str, float]) -> list[SceneSpec]:
    return [
        SceneSpec(close, 3.0, center=(0.5, 0.5), view=0.8, brightness=looks["close"], face=True),
        other_scene(2.5, "coffee"),
        SceneSpec(medium, 3.0, center=(0.5, 0.47), view=0.55, brightness=looks["medium"], face=True),
        other_scene(2.5, "brick"),
    ]


@pytest.fixture(scope="module", params=list(PEOPLE))
def looks(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SyntheticVideo:
    close, medium, brightness = PEOPLE[request.param]
    folder = tmp_path_factory.mktemp("looks")
    return write_video(folder / "looks.mp4", _plan(close, medium, brightness), width=480, height=270, fps=24)


def test_a_face_lit_well_in_a_badly_exposed_frame_is_kept(looks: SyntheticVideo, tmp_path: Path) -> None:
    spec = DatasetSpec(max_frames=12, min_frames=4, face_filter=True).model_copy(update={"min_frames": 1})
    dataset = build_dataset(looks.path, spec, "person", tmp_path, lambda _: None)

    kept = sorted(scene_of(looks, image.time) for image in dataset.images)
    assert kept == [0, 2]  # the close-up and the medium shot, whatever their brightness
    assert dataset.summary is not None and dataset.summary.dropped.dark == 0


def test_a_black_scene_is_still_dark(tmp_path: Path) -> None:
    plan = [SceneSpec("grace_hopper", 3.0, view=0.8, brightness=0.05, face=True), other_scene(2.5, "coffee")]
    video = write_video(tmp_path / "black.mp4", plan, width=480, height=270, fps=24)
    spec = DatasetSpec(max_frames=12, min_frames=4, face_filter=True).model_copy(update={"min_frames": 1})

    with pytest.raises(DatasetTooSmall) as caught:
        build_dataset(video.path, spec, "person", tmp_path / "out", lambda _: None)
    assert caught.value.summary.dropped.dark == 1


def test_face_exposure() -> None:
    frame = np.full((100, 160), 250, np.uint8)  # a blown-out wall
    frame[30:70, 60:100] = 120  # a face lit well
    assert exposure(frame) < MIN_EXPOSURE
    assert face_exposure(frame, (60, 30, 40, 40)) > 0.9
    assert face_exposure(frame, (0, 0, 40, 20)) < MIN_EXPOSURE  # the wall
    assert face_exposure(frame, (200, 200, 10, 10)) == 0.0  # outside the picture
