"""A video LoRA's clips (pipeline/footage/clips.py's decisions, pipeline/clip_dataset.py's cutting):
the windows a shot gives between its cuts and transitions, the crop that holds the subject and
leaves others out, and, on a generated video of real photographs with other people, cuts and a
dissolve, clips checked against the video's own ground truth: each inside one shot, the subject
in every frame and inside the crop."""

from __future__ import annotations

import zipfile
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from contentgen.api import DatasetSpec
from contentgen.api.base_models import WAN_FRAMES
from contentgen.api.lora import ClipsSpec
from contentgen.pipeline.clip_dataset import cut_clips
from contentgen.pipeline.dataset import build_dataset
from contentgen.pipeline.footage.clips import (
    BUCKETS,
    MARGIN,
    Window,
    bucket,
    chosen,
    clear_spans,
    clip_crop,
    windows,
)
from contentgen.pipeline.footage.crop import MARGINAL, inside_share
from contentgen.pipeline.footage.faces import Box
from scripts.synthetic_video import (
    PEOPLE_IN,
    SceneSpec,
    SyntheticVideo,
    faces_in_frame,
    other_scene,
    write_video,
)

SUBJECT = "grace_hopper"


def shot(image: str, person: str, seconds: float, share: float, **changes: object) -> SceneSpec:
    _, fx, fy, fh = next(p for p in PEOPLE_IN[image] if p[0] == person)
    return SceneSpec(image, seconds, center=(fx, fy), view=min(1.0, fh / share), face=True, **changes)  # type: ignore[arg-type]


# --- the decisions ------------------------------------------------------------------------------


def test_a_shot_is_clear_of_its_cuts_and_of_every_transition() -> None:
    assert clear_spans((2.0, 6.0), []) == [(2.0 + MARGIN, 6.0 - MARGIN)]
    # a dissolve's frames in the middle of the shot split it; one at its start shortens it
    assert clear_spans((0.0, 10.0), [(4.0, 5.0)]) == [(MARGIN, 4.0 - MARGIN), (5.0 + MARGIN, 10.0 - MARGIN)]
    assert clear_spans((0.0, 4.0), [(-0.5, 0.5)]) == [(0.5 + MARGIN, 4.0 - MARGIN)]
    assert clear_spans((0.0, 0.4), []) == []


def test_windows_fit_the_clear_time_spread_over_it_and_never_overlap() -> None:
    frames, fps = 33, 16  # 2.06 s
    found = windows(3, [(0.0, 10.0)], frames, fps)
    assert 2 <= len(found) <= 6
    assert all(w.start >= 0.0 and w.end <= 10.0 for w in found)
    first, second = found[:2]  # the preferred two: far apart
    assert abs(first.start - second.start) > 4.0
    assert all(not (a.start < b.end and b.start < a.end) for i, a in enumerate(found) for b in found[i + 1 :])
    assert windows(3, [(0.0, 2.0)], frames, fps) == []  # too short for one
    [only] = windows(3, [(0.0, 2.5)], frames, fps)
    assert only.times()[0] == only.start and len(only.times()) == 33
    assert only.times()[-1] == pytest.approx(only.start + 2.0)


def test_one_clip_from_every_shot_first_then_seconds() -> None:
    a = [Window(0, 1.0, 17, 16), Window(0, 5.0, 17, 16)]
    b = [Window(1, 9.0, 17, 16)]
    c = [Window(2, 12.0, 17, 16), Window(2, 15.0, 17, 16)]
    picked, left = chosen([a, b, c], 3)
    assert [w.shot for w in picked] == [0, 1, 2] and left == 2
    picked, left = chosen([a, b, c], 10)
    assert [w.start for w in picked] == [1.0, 5.0, 9.0, 12.0, 15.0] and left == 0


def test_buckets_are_480p_shapes_on_multiples_of_16() -> None:
    assert all(w % 16 == 0 and h % 16 == 0 for w, h in BUCKETS)
    assert all(0.85 < w * h / (832 * 480) < 1.05 for w, h in BUCKETS)
    assert bucket(16 / 9) == (832, 480) and bucket(1.0) == (624, 624) and bucket(9 / 16) == (480, 832)


def test_the_crop_holds_the_subject_in_every_frame_and_leaves_others_out() -> None:
    moving = [Box(900 + 10 * i, 300, 120, 140) for i in range(17)]  # the face drifts right
    crop = clip_crop(1920, 1080, moving, [])
    assert crop is not None and abs(crop.w / crop.h - 832 / 480) < 0.01  # the 16:9 bucket
    assert all(inside_share(face, crop) == 1.0 for face in moving)
    neighbour = Box(1500, 320, 120, 140)  # someone to the right, in every frame
    crop = clip_crop(1920, 1080, moving, [neighbour])
    assert crop is not None and inside_share(neighbour, crop) <= MARGINAL
    assert all(inside_share(face, crop) == 1.0 for face in moving)
    # a face touching the subject's leaves no crop: the shot is crowded
    assert clip_crop(1920, 1080, moving, [Box(1075, 300, 120, 140)]) is None


def test_the_frame_rule_is_wans() -> None:
    assert (WAN_FRAMES.fps, WAN_FRAMES.step, WAN_FRAMES.max_frames) == (16, 4, 81)
    assert ClipsSpec().frames == 33 and (ClipsSpec().frames - 1) % 4 == 0


# --- on a video of real photographs -------------------------------------------------------------


@pytest.fixture(scope="session")
def interview(media_dir: Path) -> SyntheticVideo:
    """Grace Hopper in six shots (one too short for a clip, one entered by a dissolve, one the camera
    pans off her, one beside Lenna), with other people between: Lenna alone, Jesse and Walter
    together, and a cup of coffee."""
    plan = [
        shot(SUBJECT, SUBJECT, 3.0, 0.4),
        shot("lenna", "lenna", 2.0, 0.5),
        shot(SUBJECT, SUBJECT, 3.0, 0.5, mirror=True, transition="dissolve", transition_seconds=1.0),
        other_scene(1.5, "coffee"),
        SceneSpec("breakingbad", 2.5, center=(0.55, 0.35), view=0.7, face=True),
        shot(SUBJECT, SUBJECT, 1.5, 0.45, mirror=True),  # judged for a still, too short for a clip
        shot(SUBJECT, SUBJECT, 2.5, 0.35),
        # the camera pans off her: only the first part of the shot shows her whole face
        shot(SUBJECT, SUBJECT, 4.0, 0.45, drift=(0.12, 0.0)),
        # side by side with Lenna, as a video call shows two people
        replace(shot(SUBJECT, SUBJECT, 3.0, 0.6, mirror=True), right=shot("lenna", "lenna", 3.0, 0.6)),
    ]
    return write_video(media_dir / "clips-interview.mp4", plan, width=640, height=360, fps=24)


def _shot_of(video: SyntheticVideo, start: float, end: float) -> int | None:
    """The shot [start, end) lies in, clear of any transition's frames; None where none."""
    for k, (a, b) in enumerate(video.scenes):
        spec = video.specs[k]
        lead = spec.transition_seconds / 2 if spec.transition != "cut" else 0.0
        follow = video.specs[k + 1] if k + 1 < len(video.specs) else None
        trail = follow.transition_seconds / 2 if follow is not None and follow.transition != "cut" else 0.0
        if a + lead <= start and end <= b - trail:
            return k
    return None


def test_clips_lie_in_one_shot_show_the_subject_throughout_and_are_archived(
    interview: SyntheticVideo, tmp_path: Path
) -> None:
    spec = DatasetSpec(min_frames=4, media="clips", clips=ClipsSpec(frames=17))
    out = tmp_path / "dataset"
    dataset = build_dataset(interview.path, spec, "dmavatar", out, lambda _: None, least=1)
    assert dataset.subject_shots, "the stills stage found the subject's shots"
    cut = cut_clips(
        interview.path,
        dataset.subject_shots,
        dataset.scenes,
        dataset.guards,
        dataset.subject_centres,
        spec,
        WAN_FRAMES,
        "dmavatar",
        out,
        lambda _: None,
    )
    assert cut.summary is not None and cut.summary.kept == len(cut.clips) > 0
    width, height = interview.width, interview.height
    for clip in cut.clips:
        seconds = clip.frames / clip.fps
        shot_index = _shot_of(interview, clip.start, clip.start + seconds)
        assert shot_index is not None, f"clip at {clip.start:.2f} s crosses a cut or a transition"
        spec_k = interview.specs[shot_index]
        assert spec_k.image == SUBJECT
        x, y, w, h = clip.box
        for i in range(clip.frames):
            t = clip.start + i / clip.fps - interview.scenes[shot_index][0]
            people = faces_in_frame(spec_k, t, width, height)
            [(_, fx, fy, fh)] = [p for p in people if p[0] == SUBJECT]
            # her whole face in the picture and in the crop; no one else's face in the crop
            assert (fy - fh / 2) >= 0 and (fy + fh / 2) <= 1 and fx - fh / 3 >= 0 and fx + fh / 3 <= 1
            assert x <= fx * width <= x + w and y <= fy * height <= y + h
            for other, ox, oy, _ in people:
                if other != SUBJECT:
                    assert not (x <= ox * width <= x + w and y <= oy * height <= y + h)
        with av.open(str(clip.path)) as container:
            stream = container.streams.video[0]
            decoded = list(container.decode(stream))
            assert len(decoded) == clip.frames and (stream.width, stream.height) == (clip.width, clip.height)
            assert stream.average_rate == 16 and stream.codec_context.name == "h264"
        assert clip.caption == "a video of dmavatar" and clip.caption_path.read_text() == clip.caption
    # recall: every shot of her long enough gives a clip, the one the camera pans off included
    long_enough = [k for k, s in enumerate(interview.specs) if s.image == SUBJECT and s.seconds >= 2.0]
    assert {_shot_of(interview, c.start, c.start + c.frames / c.fps) for c in cut.clips} == set(long_enough)
    assert cut.summary.dropped.too_short == 1  # the 1.5 s shot: 17 frames and the margins are 1.56 s


def test_a_video_without_a_long_enough_shot_says_so_in_one_line(
    interview: SyntheticVideo, tmp_path: Path
) -> None:
    spec = DatasetSpec(min_frames=4, media="clips", clips=ClipsSpec(frames=81))  # 5 s: no shot is
    dataset = build_dataset(interview.path, spec, "dmavatar", tmp_path, lambda _: None, least=1)
    cut = cut_clips(
        interview.path,
        dataset.subject_shots,
        dataset.scenes,
        dataset.guards,
        dataset.subject_centres,
        spec,
        WAN_FRAMES,
        "dmavatar",
        tmp_path,
        lambda _: None,
    )
    assert cut.clips == [] and cut.summary is not None
    reason = cut.summary.reason
    assert "\n" not in reason and "gives no clip of 81 frames at 16 fps" in reason
    assert "lower dataset.clips.frames" in reason


def test_a_flat_archive_holds_each_medium_beside_its_caption(
    interview: SyntheticVideo, tmp_path: Path
) -> None:
    from contentgen.api import LoraTrainingSpec
    from contentgen.api.lora.plan import plan_of
    from contentgen.pipeline.video_lora import add_clips

    spec = LoraTrainingSpec.model_validate(
        {
            "owner": "u",
            "source": {"url": "https://e/v.mp4"},
            "triggerWord": "dmavatar",
            "provider": "fal",
            "training": {"baseModel": "wan-2.2-t2v-a14b"},
            "dataset": {"minFrames": 4, "clips": {"frames": 17}},
        }
    )
    plan = plan_of(spec, "fal")
    assert (plan.app, plan.route.stills, plan.route.clips) == ("fal-ai/wan-22-trainer/t2v-a14b", True, True)
    dataset = build_dataset(interview.path, spec.dataset, "dmavatar", tmp_path, lambda _: None, least=1)
    sheet_before = dataset.contact_sheet.read_bytes() if dataset.contact_sheet else b""
    add_clips(dataset, interview.path, spec, plan, lambda _: None)
    with zipfile.ZipFile(dataset.archive) as archive:
        names = archive.namelist()
    assert all("/" not in n for n in names)
    media = [n for n in names if not n.endswith(".txt")]
    assert {n.rsplit(".", 1)[0] for n in media} == {n.rsplit(".", 1)[0] for n in names if n.endswith(".txt")}
    assert sum(n.endswith(".mp4") for n in media) == len(dataset.clips) > 0
    assert sum(n.endswith(".jpg") for n in media) == len(dataset.images)
    # the contact sheet shows the clips under the stills
    assert dataset.contact_sheet is not None and len(dataset.contact_sheet.read_bytes()) > len(sheet_before)
    assert dataset.summary is not None and dataset.summary.clips is not None
    assert np.isfinite(dataset.summary.clips.kept)
