"""Scene detection: the pure decisions on numbers and arrays, then on videos with known cuts."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from contentgen.pipeline.footage.scan import Scanner
from contentgen.pipeline.footage.scenes import AdaptiveDetector, adaptive_ratio, content_change, is_cut
from contentgen.pipeline.footage.transitions import LAG_SECONDS
from scripts.synthetic_video import SyntheticVideo
from tests.pipeline.conftest import cut_f1, match_cuts

RNG = np.random.default_rng(0)


def picture(level: int, *, seed: int = 0, size: tuple[int, int] = (90, 160)) -> np.ndarray:
    """A textured tiny frame around `level`; the same seed gives the same texture."""
    texture = np.random.default_rng(seed).integers(-20, 21, size)
    return np.clip(level + texture, 0, 255).astype(np.uint8)


def jitter(frame: np.ndarray, amount: int = 2) -> np.ndarray:
    """The same picture with a little noise, as consecutive frames of one shot look."""
    return np.clip(frame.astype(np.int16) + RNG.integers(-amount, amount + 1, frame.shape), 0, 255).astype(
        np.uint8
    )


def feed(detector: AdaptiveDetector, frames: list[np.ndarray]) -> list[int]:
    cuts = [cut for cut in (detector.push(frame) for frame in frames) if cut is not None]
    return cuts + detector.flush()


def test_content_change() -> None:
    a = picture(100)
    assert content_change(a, a) == 0
    assert content_change(a, np.full_like(a, 255) - a) > 50
    assert content_change(np.zeros((2, 2), np.uint8), np.full((2, 2), 10, np.uint8)) == pytest.approx(10)


def test_adaptive_ratio() -> None:
    assert adaptive_ratio([2, 2, 2, 2, 2], 2, window=2) == pytest.approx(1)
    assert adaptive_ratio([1, 1, 40, 1, 1], 2, window=2) == pytest.approx(40)
    assert adaptive_ratio([0, 0, 30, 0, 0], 2, window=2) == pytest.approx(300)  # still neighbours
    assert adaptive_ratio([1, 40, 1], 1, window=2) == pytest.approx(40)  # fewer neighbours at the ends


def test_is_cut() -> None:
    assert is_cut(40, 20, 40, threshold=3, min_change=6)
    assert not is_cut(5, 20, 5, threshold=3, min_change=6)  # too small a change
    assert not is_cut(40, 1.5, 40, threshold=3, min_change=6)  # the neighbours change as much
    assert not is_cut(40, 20, 1, threshold=3, min_change=6)  # and back: a flash


def test_hard_cut_found_at_its_frame() -> None:
    a, b = picture(90, seed=1), picture(160, seed=2)
    frames = [jitter(a) for _ in range(20)] + [jitter(b) for _ in range(20)]

    assert feed(AdaptiveDetector(), frames) == [20]


def test_cut_reported_lag_frames_late() -> None:
    a, b = picture(90, seed=1), picture(160, seed=2)
    detector = AdaptiveDetector(window=2)
    reported = {i: detector.push(jitter(frame)) for i, frame in enumerate([a] * 20 + [b] * 10)}

    assert reported[22] == 20
    assert [i for i, cut in reported.items() if cut is not None] == [22]


def test_cut_in_the_last_frames_found_by_flush() -> None:
    a, b = picture(90, seed=1), picture(160, seed=2)
    detector = AdaptiveDetector(window=2)
    pushed = [detector.push(jitter(frame)) for frame in [a] * 20 + [b]]

    assert pushed.count(None) == len(pushed)
    assert detector.flush() == [20]


def test_steady_motion_is_no_cut() -> None:
    # A fast pan: every frame differs from the last by about as much as a modest cut would.
    wide = picture(120, seed=3, size=(90, 400))
    frames = [np.ascontiguousarray(wide[:, 6 * i : 6 * i + 160]) for i in range(40)]
    assert all(content_change(p, q) > 6 for p, q in itertools.pairwise(frames))

    assert feed(AdaptiveDetector(), frames) == []


def test_flash_is_no_cut() -> None:
    a = picture(90, seed=1)
    frames = [jitter(a) for _ in range(15)] + [np.full_like(a, 250)] * 2 + [jitter(a) for _ in range(15)]

    assert feed(AdaptiveDetector(), frames) == []


def test_min_scene_frames() -> None:
    a, b, c = picture(60, seed=1), picture(130, seed=2), picture(200, seed=3)
    frames = [a] * 10 + [b] * 3 + [c] * 10

    assert feed(AdaptiveDetector(min_scene_frames=6), frames) == [10]
    assert feed(AdaptiveDetector(min_scene_frames=2), frames) == [10, 13]


def test_match_cuts_counts_each_true_cut_once() -> None:
    assert match_cuts([1.0, 1.1, 5.0], [1.05, 3.0]) == (1, 2, 1)
    assert cut_f1([2.0, 4.0], [2.2, 3.9]) == 1.0


def scan(video: SyntheticVideo) -> Scanner:
    scanner = Scanner(video.path, fps=video.fps, duration=video.duration, progress=lambda _: None)
    for _ in scanner:
        pass
    return scanner


@pytest.mark.parametrize("name", ["shots", "random_shots"])
def test_cuts_in_generated_videos(name: str, request: pytest.FixtureRequest) -> None:
    video: SyntheticVideo = request.getfixturevalue(name)
    scanner = scan(video)
    found = [start for start, _ in scanner.scenes[1:]]

    assert cut_f1(found, video.cuts) >= 0.95, (found, video.cuts)
    # Cuts are exact to the frame on hard cuts, not just within the tolerance.
    assert max(min(abs(f - t) for f in found) for t in video.cuts) <= 1.01 / video.fps


def test_scenes_cover_the_video(shots: SyntheticVideo) -> None:
    scanner = scan(shots)

    assert scanner.scenes[0][0] == 0
    assert all(
        a_end == b_start for (_, a_end), (b_start, _) in zip(scanner.scenes, scanner.scenes[1:], strict=False)
    )
    assert scanner.scenes[-1][1] == pytest.approx(shots.duration, abs=1 / shots.fps)
    assert shots.frames / 3 < scanner.frames_decoded < shots.frames  # non-reference frames skipped
    assert scanner.duration == pytest.approx(shots.duration, abs=1 / shots.fps)


def test_decoded_frames_are_let_go(random_shots: SyntheticVideo, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the few best candidates of the open scene (and those still waiting for the detector)
    stay alive: memory does not grow with the video."""
    import gc
    import weakref

    from contentgen.pipeline.footage import scan as scan_module

    made: list[weakref.ref[scan_module.Analysed]] = []
    analyse = scan_module.analyse

    def tracked(*args: object, **kwargs: object) -> object:
        candidate = analyse(*args, **kwargs)  # type: ignore[arg-type]
        made.append(weakref.ref(candidate.payload))
        return candidate

    monkeypatch.setattr(scan_module, "analyse", tracked)
    scanner = Scanner(
        random_shots.path, fps=30, duration=random_shots.duration, progress=lambda _: None, keep=3
    )
    alive = []
    for scene in scanner:
        gc.collect()
        alive.append(sum(ref() is not None for ref in made))
        assert len(scene.candidates) <= 3
        del scene

    assert len(made) > 60  # four a second for 20 s
    # the scene just closed, the next one's pool, and those waiting for the detector (four a
    # second for as long as it stays behind)
    assert max(alive) <= 3 + 3 + math.ceil(LAG_SECONDS / 0.25) + 1


def test_length_limit_while_decoding(shots: SyntheticVideo) -> None:
    """A container that hides or understates its duration is still stopped at the limit."""
    from contentgen.errors import InvalidInput

    scanner = Scanner(shots.path, fps=24, duration=0.0, progress=lambda _: None, max_seconds=3)
    with pytest.raises(InvalidInput, match=r"shots\.mp4 is longer than the limit of 3 s"):
        for _ in scanner:
            pass
