"""bench/clips.py's judge, on a video's ground truth alone (no video is written or decoded): a clip
across a dissolve, a clip whose frames lose the subject, a crop that holds someone else, and a
clip in a clean stretch of a shot of the subject; which shots a clip fits."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from bench.clips import MAN, clip_problem, fits, shot, subject_shots
from scripts.synthetic_video import SyntheticVideo, faces_in_frame, other_scene


@dataclass
class Clip:
    start: float
    frames: int
    box: tuple[int, int, int, int]


PLAN = [
    shot("feat_man", MAN, 3.5, 0.4),
    shot("feat_su", "feat_su", 2.5, 0.45, transition="dissolve", transition_seconds=1.0),
    other_scene(1.5, "chelsea"),
    replace(shot("feat_man", MAN, 3.5, 0.55), right=shot("feat_su", "feat_su", 3.5, 0.55)),
    shot("feat_man", MAN, 1.2, 0.45),
]
W, H, FPS = 640, 360, 25


def made() -> SyntheticVideo:
    scenes, start = [], 0
    for spec in PLAN:
        count = round(spec.seconds * FPS)
        scenes.append((start / FPS, (start + count) / FPS))
        start += count
    return SyntheticVideo(Path("none.mp4"), W, H, FPS, start, scenes, [True] * len(PLAN), False, PLAN)


def around_subject(video: SyntheticVideo, k: int, t: float, half: int) -> tuple[int, int, int, int]:
    [(_, x, y, _)] = [p for p in faces_in_frame(video.specs[k], t, W, H) if p[0] == MAN]
    return (round(x * W) - half, round(y * H) - half, 2 * half, 2 * half)


def test_a_clean_clip_passes_and_each_fault_is_named() -> None:
    video = made()
    box = around_subject(video, 0, 1.0, 120)
    assert clip_problem(video, MAN, Clip(0.5, 33, box)) == ""
    assert "not 4k+1" in clip_problem(video, MAN, Clip(0.5, 32, box))
    # into the dissolve's span (it is centred on the cut at 3.52 s, a second long)
    assert "crosses a cut or lies in a transition" in clip_problem(video, MAN, Clip(1.0, 33, box))
    assert "does not show the subject" in clip_problem(video, MAN, Clip(6.2, 17, box))
    # the split screen: a crop around the whole frame holds the other person too
    split = video.scenes[3][0]
    assert "feat_su's face is in the crop" in clip_problem(video, MAN, Clip(split + 0.5, 17, (0, 0, W, H)))
    assert "outside the crop" in clip_problem(video, MAN, Clip(split + 0.5, 17, (W - 10, 0, 10, 10)))


def test_the_shots_a_clip_fits() -> None:
    video = made()
    assert subject_shots(video, MAN) == [0, 3, 4]
    # the first shot is 3.5 s less the dissolve's half and the margins: 2.5 s, a 33-frame clip's 2.06
    assert fits(video, 0, MAN, 33) and not fits(video, 0, MAN, 49)
    assert not fits(video, 4, MAN, 17)  # 1.2 s less the margins: 0.7 s
