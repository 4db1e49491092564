"""Dissolves and fades: the pure measures on arrays, the detectors on made-up frame sequences,
and the scanner on a generated video with both."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from contentgen.pipeline.footage.scan import Scanner
from contentgen.pipeline.footage.transitions import (
    Cut,
    DissolveDetector,
    FadeDetector,
    SceneDetector,
    fade_reach,
    is_black,
    is_dissolve,
    residue,
    shape_change,
)
from scripts.synthetic_video import SyntheticVideo, face_scene, other_scene, write_video
from tests.pipeline.conftest import cut_f1

FPS = 25
SHAPE = (90, 160)


def texture(seed: int) -> np.ndarray:
    """A smooth random picture (blobs), as a shot's tiny luma frame looks."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(30, 220, (9, 16)).astype(np.uint8)
    return cv2.resize(small, SHAPE[::-1], interpolation=cv2.INTER_CUBIC)


def noisy(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(frame + rng.normal(0, 1.0, frame.shape), 0, 255).astype(np.uint8)


def dissolve(a: np.ndarray, b: np.ndarray, seconds: float, fps: int = FPS) -> list[np.ndarray]:
    n = round(seconds * fps)
    return [((1 - (i + 0.5) / n) * a + (i + 0.5) / n * b).astype(np.uint8) for i in range(n)]


def fade(a: np.ndarray, b: np.ndarray, seconds: float, fps: int = FPS) -> list[np.ndarray]:
    n = round(seconds * fps)
    out = []
    for i in range(n):
        w = abs(1 - 2 * (i + 0.5) / n)  # 1 -> 0 -> 1
        out.append(((a if i < n / 2 else b) * w).astype(np.uint8))
    return out


def detect(frames: list[np.ndarray], fps: int = FPS, full_range: bool = True) -> list[Cut]:
    detector = SceneDetector(fps)
    cuts = []
    for i, frame in enumerate(frames):
        cuts += detector.push(frame, i / fps, full_range)
        assert detector.settled <= i / fps
    return cuts + detector.flush()


def run(frames: list[np.ndarray], fps: int = FPS, full_range: bool = True) -> list[tuple[float, str]]:
    return [(round(c.time, 2), c.kind) for c in detect(frames, fps, full_range)]


def test_shape_change_sets_brightness_aside() -> None:
    a = texture(1) // 2 + 40
    assert shape_change(a, a + 20) == pytest.approx(0.0, abs=0.01)
    assert shape_change(a, texture(2)) > 20


def test_residue_of_a_mix_is_nearly_zero() -> None:
    a, b = texture(1).astype(np.float32), texture(2).astype(np.float32)
    middle = ((a + b) / 2).astype(np.uint8)
    assert residue(a.astype(np.uint8), middle, b.astype(np.uint8)) < 1.0
    assert residue(a.astype(np.uint8), a.astype(np.uint8), b.astype(np.uint8)) > 10  # a hard cut


def test_a_mix_of_two_moving_shots_is_still_a_mix_once_blurred() -> None:
    """Issue 30 (bench/transitions.py's dev set): in a dissolve between two shots filmed by hand,
    both pictures move while they mix, so the middle frame is the average of its ends only up to
    a pixel or so. Compared blurred (RESIDUE_BLUR) it is; a sharp other picture is not."""
    import cv2

    from contentgen.pipeline.footage.transitions import MAX_RESIDUE, RESIDUE_BLUR

    def photo(seed: int) -> np.ndarray:  # detail down to 3 px, as a tiny frame of a photograph
        rng = np.random.default_rng(seed)
        return cv2.resize(rng.integers(0, 255, (30, 52)).astype(np.uint8), SHAPE[::-1])

    def moved(frame: np.ndarray, by: float) -> np.ndarray:
        shift = np.float32([[1, 0, by], [0, 1, by / 2]])
        return cv2.warpAffine(frame, shift, SHAPE[::-1], borderMode=cv2.BORDER_REFLECT)

    a, b = photo(1), photo(2)
    limit = MAX_RESIDUE * float(cv2.norm(a, b, cv2.NORM_L1)) / a.size
    middle = cv2.addWeighted(moved(a, 1.0), 0.5, moved(b, -1.0), 0.5, 0.0)
    assert residue(a, middle, b) > limit  # sharp, the camera's pixel of movement hides the mix
    assert residue(a, middle, b, RESIDUE_BLUR) <= limit
    assert residue(a, photo(3), b, RESIDUE_BLUR) > 2 * limit


def test_is_dissolve() -> None:
    assert is_dissolve(40.0, 3.0, 2.0, 2.0)
    assert not is_dissolve(40.0, 15.0, 2.0, 2.0)  # the middle frame is no mix: motion or a cut
    assert not is_dissolve(40.0, 3.0, 30.0, 2.0)  # it was changing before: a long camera move
    assert not is_dissolve(40.0, 3.0, 2.0, 30.0)  # and after
    assert not is_dissolve(5.0, 0.1, 0.0, 0.0)  # too small a change


def test_a_dissolve_from_a_dim_shot_is_judged_against_its_whole_change() -> None:
    """Issue 30 (bench/transitions.py's dev set): a 0.5 s dissolve from a close-up in a dim room
    (brightness ×0.55) to a bright textured shot filmed by hand. Their shapes differ by 18.7 (of
    255), their pictures by 72.6 with the brightness; the hand-held camera changes the picture by
    10 in the second after. Beside the shapes' difference that is no steady picture, beside the
    whole change it is: the dissolve is found (it was missed, and the close-up merged into the
    next shot and lost)."""
    assert is_dissolve(18.7, 4.0, 0.8, 10.0, whole=72.6)
    assert not is_dissolve(18.7, 4.0, 0.8, 10.0)  # the same shapes at one brightness: a camera move
    assert not is_dissolve(18.7, 12.0, 0.8, 10.0, whole=72.6)  # the middle frame no mix of the ends


def test_is_black_in_both_ranges() -> None:
    black = np.full(SHAPE, 16, np.uint8)  # video-range black
    assert is_black(black, full_range=False) and is_black(np.zeros(SHAPE, np.uint8), full_range=True)
    night = np.full(SHAPE, 16, np.uint8)
    night[:, :8] = 120  # stars and a lit window: 5 % of the picture
    assert not is_black(night, full_range=False)
    assert not is_black(np.full(SHAPE, 40, np.uint8), full_range=True)


def test_a_dissolve_is_cut_in_its_middle_with_a_guard() -> None:
    rng = np.random.default_rng(0)
    a, b = texture(1), texture(2)
    frames = [noisy(a, rng) for _ in range(75)] + dissolve(a, b, 0.8) + [noisy(b, rng) for _ in range(75)]
    detector = DissolveDetector()
    found = [c for i, f in enumerate(frames) if (c := detector.push(i, i / FPS, f)) is not None]
    (cut,) = found
    middle = (75 + 10) / FPS
    assert cut.kind == "dissolve" and abs(cut.time - middle) <= 2 / FPS
    # every mixed frame (75-94) is inside the guard, and little else
    assert cut.guard is not None and cut.guard[0] <= 75 / FPS and cut.guard[1] >= 94 / FPS
    assert cut.guard[0] >= 73 / FPS and cut.guard[1] <= 96 / FPS


def test_a_fade_through_black_is_cut_in_the_black() -> None:
    rng = np.random.default_rng(0)
    a, b = texture(1), texture(2)
    frames = [noisy(a, rng) for _ in range(50)] + fade(a, b, 0.6) + [noisy(b, rng) for _ in range(50)]
    (cut,) = run(frames)
    assert cut[1] == "fade" and abs(cut[0] - (50 + 7.5) / FPS) <= 2 / FPS


@pytest.mark.parametrize("seconds", [1.0, 2.0, 3.0])
def test_long_dissolves_are_found_with_their_whole_extent(seconds: float) -> None:
    rng = np.random.default_rng(3)
    a, b = texture(4), texture(5)
    mixed = dissolve(a, b, seconds)
    frames = [noisy(a, rng) for _ in range(60)] + mixed + [noisy(b, rng) for _ in range(60)]
    (cut,) = detect(frames)
    assert cut.kind == "dissolve" and abs(cut.time - (60 + len(mixed) / 2) / FPS) <= 2 / FPS
    # every frame more than 3 % mixed is guarded, and at most a frame more each side
    n = len(mixed)
    assert cut.guard is not None
    assert (58 / FPS) <= cut.guard[0] <= (60 + 0.03 * n) / FPS
    assert (60 + 0.97 * n - 1) / FPS <= cut.guard[1] <= (62 + n) / FPS


@pytest.mark.parametrize("level", [255, 128, 200])
def test_a_fade_through_white_or_grey_is_cut_with_its_extent(level: int) -> None:
    rng = np.random.default_rng(4)
    a, b = texture(6), texture(7)
    n = round(1.6 * FPS)  # 0.8 s to the flat picture, 0.8 s out of it
    flat = np.full(SHAPE, level, np.float32)
    ramp = [abs(1 - 2 * (i + 0.5) / n) for i in range(n)]
    mixed = [((a if i < n / 2 else b) * w + flat * (1 - w)).astype(np.uint8) for i, w in enumerate(ramp)]
    frames = [noisy(a, rng) for _ in range(50)] + mixed + [noisy(b, rng) for _ in range(60)]
    (cut,) = detect(frames)
    assert cut.kind in ("fade", "dissolve") and abs(cut.time - (50 + n / 2) / FPS) <= 3 / FPS
    assert cut.guard is not None and cut.guard[0] <= 51 / FPS and cut.guard[1] >= (49 + n) / FPS


def curved(a: np.ndarray, b: np.ndarray, seconds: float, curve: str) -> tuple[list[np.ndarray], list[float]]:
    """A dissolve of `curve` (scripts/synthetic_video.dissolve_share: `ease` in and out, or a
    `dip` through black) and each frame's share of b."""
    n = round(seconds * FPS)
    frames, shares = [], []
    for i in range(n):
        w = (i + 0.5) / n
        share = w * w * (3 - 2 * w) if curve == "ease" else w
        light = abs(2 * w - 1) if curve == "dip" else 1.0
        frames.append((((1 - share) * a + share * b) * light).astype(np.uint8))
        shares.append(share)
    return frames, shares


@pytest.mark.parametrize("seconds", [1.0, 2.0])
@pytest.mark.parametrize("curve", ["ease", "dip"])
def test_eased_and_dipped_dissolves_of_one_and_two_seconds_are_found_and_guarded(
    curve: str, seconds: float
) -> None:
    """Issue 30: dissolves of 1 s and 2 s of other curves than linear, and no frame from their
    middle used (every frame more than 3 % mixed, or dimmed, is inside the guard)."""
    rng = np.random.default_rng(5)
    a, b = texture(8), texture(9)
    mixed, shares = curved(a, b, seconds, curve)
    frames = [noisy(a, rng) for _ in range(60)] + mixed + [noisy(b, rng) for _ in range(60)]
    (cut,) = detect(frames)
    assert cut.kind in ("dissolve", "fade") and abs(cut.time - (60 + len(mixed) / 2) / FPS) <= 3 / FPS
    assert cut.guard is not None
    inside = [
        (60 + i) / FPS
        for i, share in enumerate(shares)
        if 0.03 < share < 0.97 or (curve == "dip" and abs(2 * (i + 0.5) / len(mixed) - 1) < 0.97)
    ]
    assert cut.guard[0] <= min(inside) and cut.guard[1] >= max(inside), (cut.guard, inside[0], inside[-1])


def test_fade_reach_stops_where_the_contrast_stops_rising() -> None:
    # beside the flat run, nearest first: the fade's ramp, the shot before it (contrast 40),
    # then, over a cut, an earlier shot with more contrast (80)
    ramp = [(10.0 - 0.04 * k, 4.0 * k) for k in range(1, 11)]
    shot = [(9.56 - 0.04 * k, 40.0 + (k % 2)) for k in range(20)]
    earlier = [(8.76 - 0.04 * k, 80.0) for k in range(10)]
    assert fade_reach(ramp + shot + earlier, 10.0) == pytest.approx(ramp[-1][0])
    assert fade_reach([], 10.0) == 10.0
    assert fade_reach(ramp, 10.0) == pytest.approx(ramp[-1][0])  # the ramp's last frame at most


def test_a_fade_does_not_reach_back_over_a_cut_into_the_shot_before() -> None:
    """A short shot with little contrast between a hard cut and a fade: the fade's extent stops
    where the short shot is steady (before, it reached back to the contrast of the shot before
    the cut and took the whole short shot for mid-transition)."""
    rng = np.random.default_rng(6)
    a, b = texture(10), texture(11)
    short = (texture(12) // 4 + 100).astype(np.uint8)  # little contrast
    frames = [noisy(a, rng) for _ in range(60)] + [noisy(short, rng) for _ in range(22)]
    frames += fade(short, b, 1.0) + [noisy(b, rng) for _ in range(60)]
    detector = FadeDetector()
    found = [c for i, f in enumerate(frames) if (c := detector.push(i, i / FPS, f, True)) is not None]
    (cut,) = [*found, *filter(None, [detector.flush()])]
    fading = cut.guard
    assert fading is not None and fading[0] > (60 + 11) / FPS, cut  # the short shot's middle is clear
    assert fading[0] <= (60 + 22 + 1) / FPS  # and the fade's first dimmed frames are not


def test_black_before_the_first_picture_and_after_the_last_is_no_cut() -> None:
    a = texture(1)
    frames = [np.zeros(SHAPE, np.uint8)] * 20 + fade(np.zeros(SHAPE, np.uint8), a, 0.4)[5:] + [a] * 60
    frames += fade(a, np.zeros(SHAPE, np.uint8), 0.4)[:5] + [np.zeros(SHAPE, np.uint8)] * 20
    assert run(frames) == []
    detector = FadeDetector()
    assert all(detector.push(i, i / FPS, f, True) is None for i, f in enumerate(frames))


def test_hard_cuts_dissolves_and_fades_together_in_order() -> None:
    rng = np.random.default_rng(1)
    shots = [texture(seed) for seed in range(5)]
    frames = [noisy(shots[0], rng) for _ in range(60)]
    frames += [noisy(shots[1], rng) for _ in range(60)]  # a hard cut at 60
    frames += dissolve(shots[1], shots[2], 1.0) + [noisy(shots[2], rng) for _ in range(60)]
    frames += fade(shots[2], shots[3], 0.8) + [noisy(shots[3], rng) for _ in range(60)]
    frames += [noisy(shots[4], rng) for _ in range(60)]
    found = run(frames)
    assert [kind for _, kind in found] == ["cut", "dissolve", "fade", "cut"]
    expected = [60 / FPS, (120 + 12.5) / FPS, (205 + 10) / FPS, 285 / FPS]
    assert all(abs(t - e) <= 0.1 for (t, _), e in zip(found, expected, strict=True)), found


def test_a_slow_camera_move_and_a_change_of_light_are_no_dissolve() -> None:
    import cv2

    rng = np.random.default_rng(2)
    wide = cv2.resize(rng.integers(0, 255, (18, 64)).astype(np.uint8), (640, 90))
    pan = [noisy(wide[:, i * 2 : i * 2 + 160], rng) for i in range(200)]  # 4 px a frame, 8 s
    light = [
        noisy(np.clip(texture(3).astype(int) + i // 2, 0, 255).astype(np.uint8), rng) for i in range(150)
    ]
    assert run(pan) == [] and run(light) == []


@pytest.fixture(scope="module")
def soft(tmp_path_factory: pytest.TempPathFactory) -> SyntheticVideo:
    """16 s, 320×180 at 24 fps: faces and objects joined by hard cuts, dissolves and fades."""
    plan = [
        face_scene(2.5, variant=0),
        other_scene(2.5, "coffee", transition="dissolve", transition_seconds=0.8),
        face_scene(2.5, variant=1, transition="fade", transition_seconds=0.7),
        other_scene(2.5, "rocket"),
        face_scene(2.5, variant=2, transition="dissolve", transition_seconds=1.0),
        other_scene(3.0, "chelsea", transition="fade", transition_seconds=0.9),
    ]
    return write_video(
        Path(tmp_path_factory.mktemp("soft")) / "soft.mp4", plan, width=320, height=180, fps=24
    )


def test_scanner_finds_dissolves_and_fades_and_uses_no_frame_mid_transition(soft: SyntheticVideo) -> None:
    scanner = Scanner(soft.path, fps=soft.fps, duration=soft.duration, progress=lambda _: None)
    candidates = [c.time for scene in scanner for c in scene.candidates]
    found = [start for start, _ in scanner.scenes[1:]]
    assert cut_f1(found, soft.cuts) == 1.0, (found, soft.cuts)
    assert [c.kind for c in scanner.cuts] == ["dissolve", "fade", "cut", "dissolve", "fade"]
    windows = [
        (soft.scenes[i][0] - spec.transition_seconds / 2, soft.scenes[i][0] + spec.transition_seconds / 2)
        for i, spec in enumerate(soft.specs)
        if spec.transition != "cut"
    ]
    assert candidates and not [t for t in candidates if any(a <= t <= b for a, b in windows)]


def test_two_changes_whose_guards_only_touch_stay_two() -> None:
    """Issue 45's held-out medium shot at ×0.68: a fade into it (18.88 s, guard 18.32-19.4), then a
    dissolve out of it that a long window saw from the fade's end (21.8 s, guard 19.24-22.8). Merged,
    they were one change whose guard covered the whole shot; the same change seen twice still is."""
    from contentgen.pipeline.footage.transitions import Cut, one_change

    fade = Cut(246, 18.88, "fade", (18.32, 19.4))
    dissolve = Cut(284, 21.8, "dissolve", (19.24, 22.8))
    assert not one_change(fade, dissolve) and not one_change(dissolve, fade)
    shorter = Cut(280, 21.36, "dissolve", (20.4, 22.32))  # the same dissolve, a shorter window's
    assert one_change(dissolve, shorter) and one_change(shorter, dissolve)
    back = Cut(250, 19.3, "cut", None)  # a fade whose picture comes back with a jump
    assert one_change(fade, back)
    assert not one_change(Cut(1, 5.0, "cut", None), Cut(2, 5.2, "cut", None))  # two hard cuts


def test_a_scene_inside_guards_is_judged_on_its_frames_farthest_from_the_transitions() -> None:
    """A scene whose every candidate lies in a guard gets the guarded candidates farthest from the
    transitions' middles beside it, none nearer than CLEAR_SECONDS; none where it is too short."""
    from contentgen.pipeline.footage.scan import CLEAR_SECONDS, spared
    from contentgen.pipeline.footage.selection import Candidate

    def at(time: float) -> Candidate[object]:
        return Candidate(index=int(time * 25), time=time, quality=1.0, sharpness=50.0, payload=object())

    frames = [at(18.9 + 0.25 * k) for k in range(12)]  # 18.9-21.65 s
    chosen = spared(frames, 18.88, 21.8, [18.88, 21.8], keep=2)
    assert [c.time for c in chosen] == [20.4, 20.15]
    assert all(min(abs(c.time - m) for m in (18.88, 21.8)) >= CLEAR_SECONDS for c in chosen)
    assert spared(frames, 18.88, 20.5, [18.88, 20.5], keep=2) == []  # a 1.6 s scene: all mid-transition
    assert spared(frames, 10.0, 12.0, [10.0, 12.0], keep=2) == []  # another scene's candidates
