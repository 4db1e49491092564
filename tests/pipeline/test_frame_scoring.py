"""Frame scoring, near-duplicates, faces, crops and selection: pure functions on arrays."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import pytest

from contentgen.pipeline.footage.crop import best_window, detail_crop, face_crop, output_side, render
from contentgen.pipeline.footage.decode import upright
from contentgen.pipeline.footage.faces import Box, FaceFinder, largest
from contentgen.pipeline.footage.scan import analyse
from contentgen.pipeline.footage.scoring import (
    DUPLICATE_BITS,
    MIN_EXPOSURE,
    aligned_similarity,
    exposure,
    hamming,
    is_duplicate,
    phash,
    picture_area,
    quality,
    sharpness,
    thumb,
)
from contentgen.pipeline.footage.selection import (
    Admission,
    Candidate,
    CandidatePool,
    Pick,
    Shortlist,
    choose,
    same_shot,
)
from scripts.synthetic_video import face_scene, other_scene, source_image
from scripts.synthetic_video import render as render_scene

IMAGES = ["astronaut", "camera", "coffee", "chelsea", "rocket", "moon", "brick", "page"]


def gray(name: str, size: tuple[int, int] = (480, 270)) -> np.ndarray:
    image = cv2.cvtColor(source_image(name), cv2.COLOR_RGB2GRAY)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("name", IMAGES)
def test_blur_lowers_sharpness(name: str) -> None:
    sharp = gray(name)
    soft = cv2.GaussianBlur(sharp, (0, 0), 2.0)
    softer = cv2.GaussianBlur(sharp, (0, 0), 4.0)

    assert sharpness(sharp) > 2 * sharpness(soft) > 2 * sharpness(softer)
    assert quality(sharpness(sharp), exposure(sharp)) > quality(sharpness(soft), exposure(soft))


def test_motion_blur_lowers_sharpness() -> None:
    sharp = gray("astronaut")
    kernel = np.zeros((1, 15), np.float32)
    kernel[0, :] = 1 / 15
    smeared = cv2.filter2D(sharp, -1, kernel)

    assert sharpness(sharp) > 2 * sharpness(smeared)


def test_exposure() -> None:
    good = gray("astronaut")
    dark = (good * 0.15).astype(np.uint8)
    bright = np.clip(good.astype(np.int16) + 150, 0, 255).astype(np.uint8)
    clipped = good.copy()
    clipped[:, : good.shape[1] // 3] = 255  # a third blown out

    assert exposure(good) > 0.9
    assert exposure(dark) < 0.3
    assert exposure(bright) < 0.3
    assert exposure(clipped) < 0.5
    assert exposure(np.zeros((10, 10), np.uint8)) == 0
    assert exposure(np.full((10, 10), 255, np.uint8)) == 0
    assert 0 <= exposure(np.full((10, 10), 128, np.uint8)) <= 1


def test_a_dark_sharp_frame_loses_to_a_well_exposed_one() -> None:
    good = gray("coffee")
    dark = (good * 0.2).astype(np.uint8)

    assert quality(sharpness(good), exposure(good)) > quality(sharpness(dark), exposure(dark))


def test_phash_same_picture_slightly_changed() -> None:
    base = gray("chelsea")
    noisy = np.clip(base + np.random.default_rng(0).normal(0, 4, base.shape), 0, 255).astype(np.uint8)
    brighter = cv2.convertScaleAbs(base, alpha=1.1, beta=10)
    smaller = cv2.resize(base, (240, 135), interpolation=cv2.INTER_AREA)
    recompressed = cv2.imdecode(
        cv2.imencode(".jpg", base, [cv2.IMWRITE_JPEG_QUALITY, 40])[1], cv2.IMREAD_GRAYSCALE
    )

    for variant in (base, noisy, brighter, smaller, recompressed):
        assert is_duplicate(phash(base), phash(variant)), hamming(phash(base), phash(variant))


def test_phash_different_pictures() -> None:
    hashes = {name: phash(gray(name)) for name in IMAGES}
    for a, b in itertools.combinations(IMAGES, 2):
        assert hamming(hashes[a], hashes[b]) > DUPLICATE_BITS, (a, b)
    mirrored = phash(np.ascontiguousarray(gray("astronaut")[:, ::-1]))
    assert not is_duplicate(hashes["astronaut"], mirrored)


def test_phash_is_64_bits() -> None:
    assert 0 <= phash(gray("camera")) < 2**64
    assert hamming(0, 2**64 - 1) == 64


def frame(spec_name: str, variant: int = 0) -> np.ndarray:
    spec = (
        face_scene(3.0, variant=variant)
        if spec_name == "face"
        else other_scene(3.0, spec_name, variant=variant)
    )
    return cv2.cvtColor(render_scene(spec, 1.0, 480, 270), cv2.COLOR_RGB2GRAY)


@pytest.mark.parametrize("variant", [0, 1, 2, 3])
def test_face_found(variant: int) -> None:
    face = FaceFinder().find(frame("face", variant))

    assert face is not None
    assert 0.15 < face.h / 270 < 0.6  # a head, not a speck or the whole frame
    cx, cy = face.center
    assert 0 < cx < 480 and 0 < cy < 270 * 0.75


@pytest.mark.parametrize("name", ["coffee", "chelsea", "rocket", "moon", "hubble_deep_field"])
def test_no_face_found(name: str) -> None:
    assert FaceFinder().find(frame(name)) is None


def test_face_found_on_large_frames_in_their_pixels() -> None:
    small, large = frame("face"), cv2.resize(frame("face"), (1920, 1080), interpolation=cv2.INTER_LINEAR)
    a, b = FaceFinder().find(small), FaceFinder().find(large)

    assert a is not None and b is not None
    assert b.center[0] == pytest.approx(4 * a.center[0], rel=0.1)
    assert b.h == pytest.approx(4 * a.h, rel=0.2)


def test_largest() -> None:
    assert largest([]) is None
    assert largest([Box(0, 0, 10, 10), Box(5, 5, 30, 30), Box(1, 1, 20, 20)]) == Box(5, 5, 30, 30)


def test_output_side_never_enlarges_more_than_one_and_a_half() -> None:
    assert output_side(720) == 1024
    assert output_side(2160) == 1024
    assert output_side(360) == 540
    assert output_side(180) == 270


@pytest.mark.parametrize(
    ("width", "height", "face"),
    [
        (1280, 720, Box(600, 200, 120, 120)),
        (1280, 720, Box(0, 0, 100, 100)),  # in a corner
        (1280, 720, Box(1150, 600, 120, 120)),
        (720, 1280, Box(300, 300, 150, 150)),  # portrait
        (3840, 2160, Box(1800, 800, 300, 300)),
        (320, 180, Box(150, 40, 40, 40)),
    ],
)
def test_face_crop_is_a_square_in_the_frame_around_the_face(width: int, height: int, face: Box) -> None:
    box = face_crop(width, height, face)

    assert box.w == box.h <= min(width, height)
    assert box.x >= 0 and box.x + box.w <= width and box.y >= 0 and box.y + box.h <= height
    assert box.x <= face.x and face.x + face.w <= box.x + box.w
    assert box.y <= face.y and face.y + face.h <= box.y + box.h


def test_face_crop_centres_the_face_with_room_for_shoulders() -> None:
    box = face_crop(3840, 2160, Box(1800, 800, 300, 300))

    assert box.w == 1200  # four face heights
    assert box.center[0] == pytest.approx(1950, abs=1)
    assert box.y == pytest.approx(950 - 0.4 * 1200, abs=1)


def test_best_window() -> None:
    profile = np.zeros(100)
    profile[80:90] = 10
    assert best_window(profile, 20) in range(70, 81)
    assert best_window(np.ones(100), 20) == 40  # no detail anywhere: the centre
    assert best_window(np.ones(10), 10) == 0


def test_detail_crop_goes_where_the_picture_is() -> None:
    image = np.full((180, 320), 128, np.uint8)
    image[:, 220:320] = gray("brick", (100, 180))

    box = detail_crop(1280, 720, image)
    assert box.w == box.h == 720
    assert box.x == 1280 - 720

    flat = detail_crop(1280, 720, np.full((180, 320), 128, np.uint8))
    assert flat.x == (1280 - 720) // 2


def pillarboxed(name: str = "astronaut", black: int = 0) -> np.ndarray:
    """A 4:3 picture in a 16:9 frame (360 × 640) with black bars on both sides."""
    frame = np.full((360, 640), black, np.uint8)
    frame[:, 80:560] = gray(name, (480, 360))
    return frame


def test_picture_area_is_inside_the_black_bars() -> None:
    assert picture_area(pillarboxed(), full_range=True) == (80, 0, 480, 360)
    assert picture_area(pillarboxed(black=16), full_range=False) == (80, 0, 480, 360)  # video range
    letterboxed = np.zeros((360, 640), np.uint8)
    letterboxed[45:315] = gray("coffee", (640, 270))
    assert picture_area(letterboxed, full_range=True) == (0, 45, 640, 270)
    assert picture_area(gray("coffee"), full_range=True) == (0, 0, 480, 270)
    night = np.zeros((360, 640), np.uint8)
    night[170:190, 300:340] = 200  # a lamp in the dark: a dark picture, not bars
    assert picture_area(night, full_range=True) == (0, 0, 640, 360)


def test_bars_are_no_crushed_blacks_to_the_scan() -> None:
    frame = np.zeros((360, 640), np.uint8)  # a portrait photograph in a landscape video
    frame[:, 185:455] = gray("astronaut", (270, 360))
    x, y, w, h = picture_area(frame, full_range=True)
    assert (x, w) == (185, 270)
    assert exposure(frame) < MIN_EXPOSURE  # more than half the frame is black: "too dark"
    assert exposure(frame[y : y + h, x : x + w]) > 0.9


def test_crops_stay_inside_the_picture() -> None:
    area = Box(320, 0, 1280, 1080)  # a 4:3 picture in a 1920 × 1080 frame
    box = face_crop(1920, 1080, Box(340, 300, 200, 200), area=area)  # the face by the left bar
    assert box.x >= area.x and box.x + box.w <= area.x + area.w and box.w == box.h <= 1080
    wide = face_crop(1920, 1080, Box(340, 300, 200, 200))
    assert wide.x < area.x  # without the area the crop would take in the bar
    frame = np.zeros((270, 480), np.uint8)
    frame[:, 80:400] = gray("brick", (320, 270))
    detail = detail_crop(1920, 1080, frame, area=area)
    assert detail.w == detail.h == 1080 and area.x <= detail.x and detail.x + detail.w <= area.x + area.w


def test_render_sizes() -> None:
    image = np.zeros((720, 1280, 3), np.uint8)
    assert render(image, Box(100, 0, 720, 720), 1024).shape == (1024, 1024, 3)
    assert render(image, Box(100, 0, 720, 720), 720).shape == (720, 720, 3)


def candidate(quality: float, index: int = 0) -> Candidate[str]:
    return Candidate(index=index, time=index / 10, quality=quality, sharpness=quality, payload=f"f{index}")


def test_candidate_pool_keeps_the_best_k() -> None:
    pool: CandidatePool[str] = CandidatePool(3)
    for index, q in enumerate([5, 1, 9, 3, 7, 2, 8]):
        pool.offer(candidate(q, index))

    assert len(pool) == 3
    assert [c.quality for c in pool.take()] == [9, 8, 7]
    assert len(pool) == 0 and pool.take() == []


def test_choose_prefers_a_face_over_a_better_frame() -> None:
    ranked = [candidate(9, 10), candidate(8, 11), candidate(7, 40)]
    looked: list[int] = []

    def face_in(index: int) -> Callable[[Candidate[str]], Box | None]:
        def find(c: Candidate[str]) -> Box | None:
            looked.append(c.index)
            return Box(1, 1, 5, 5) if c.index == index else None

        return find

    # The best first, then the one furthest from it in time; no more than two searches.
    assert choose(ranked, face_in(40)) == (ranked[2], Box(1, 1, 5, 5))
    assert looked == [10, 40]
    looked.clear()
    assert choose(ranked, face_in(11)) == (ranked[0], None)
    assert looked == [10, 40]
    assert choose(ranked, face_in(11), searches=3) == (ranked[1], Box(1, 1, 5, 5))
    looked.clear()
    assert choose(ranked, face_in(10)) == (ranked[0], Box(1, 1, 5, 5))
    assert looked == [10]  # stops at the first face
    assert choose(ranked, None) == (ranked[0], None)
    assert choose([], None) is None


def pick(scene: int, quality: float, phash: int) -> Pick[str]:
    return Pick(scene=scene, time=float(scene), quality=quality, phash=phash, payload=f"s{scene}")


def test_shortlist_keeps_the_best_and_drops_the_worst() -> None:
    shortlist: Shortlist[str] = Shortlist(2)
    a, b, c, d = pick(0, 5, 0), pick(1, 3, 2**64 - 1), pick(2, 4, 0xFFFFFFFF), pick(3, 1, 0xFFFFFFFF << 32)

    assert shortlist.add(a) == Admission(True, [], duplicate=False)
    assert shortlist.add(b) == Admission(True, [], duplicate=False)
    assert shortlist.add(c) == Admission(True, [b], duplicate=False)  # better than the worst kept
    assert shortlist.add(d) == Admission(False, [], duplicate=False)  # worse than everything kept
    assert [p.scene for p in shortlist.chronological()] == [0, 2]


def test_shortlist_keeps_one_of_near_duplicates() -> None:
    shortlist: Shortlist[str] = Shortlist(10)
    first, worse_copy, better_copy = pick(0, 5, 0b1111), pick(1, 4, 0b1110), pick(2, 6, 0b0111)

    assert shortlist.add(first) == Admission(True, [], duplicate=False)
    assert shortlist.add(worse_copy) == Admission(False, [], duplicate=True)
    assert shortlist.add(better_copy) == Admission(True, [first], duplicate=True)
    assert [p.scene for p in shortlist.chronological()] == [2]


@pytest.mark.parametrize("subject", ["astronaut", "grace_hopper", "camera"])
def test_same_shot_a_moment_later_but_not_mirrored(subject: str) -> None:
    """The camera went on moving for 6 s: the same shot. The same framing mirrored, with the
    face in the same place at the same size: another shot."""
    from scripts.synthetic_video import SUBJECTS, SceneSpec

    finder = FaceFinder()
    fx, fy, fh = SUBJECTS[subject]
    spec = SceneSpec(subject, 8.0, center=(fx, fy + 0.05), view=fh / 0.4, drift=(0.004, 0.0), zoom=1.01)

    def pick(frame: np.ndarray, scene: int) -> Pick[str]:
        found = finder.find(frame)
        assert found is not None
        height, width = frame.shape
        box = (found.x / width, found.y / height, found.w / width, found.h / height)
        return Pick(
            scene, float(scene), 1.0, phash(frame), f"s{scene}", face=True, face_box=box, thumb=thumb(frame)
        )

    first = cv2.cvtColor(render_scene(spec, 0.0, 640, 360), cv2.COLOR_RGB2GRAY)
    later = cv2.cvtColor(render_scene(spec, 6.0, 640, 360), cv2.COLOR_RGB2GRAY)
    mirrored = np.ascontiguousarray(first[:, ::-1])
    assert same_shot(pick(first, 0), pick(later, 1))
    assert not same_shot(pick(first, 0), pick(mirrored, 2))
    assert aligned_similarity(
        thumb(first), pick(first, 0).face_box, thumb(first), pick(first, 0).face_box
    ) == (pytest.approx(1.0))


def test_same_shot_needs_alike_frames_and_faces_in_the_same_place() -> None:
    left = (0.10, 0.20, 0.20, 0.35)
    a = Pick(0, 0.0, 1.0, 0b1111, "a", face=True, face_box=left)
    moved_a_little = Pick(1, 9.0, 1.0, 0b1110, "b", face=True, face_box=(0.12, 0.21, 0.2, 0.35))
    mirrored = Pick(2, 9.0, 1.0, 0b1110, "c", face=True, face_box=(0.70, 0.20, 0.20, 0.35))
    closer = Pick(3, 9.0, 1.0, 0b1110, "d", face=True, face_box=(0.05, 0.10, 0.40, 0.70))
    without_face = Pick(4, 9.0, 1.0, 0b1110, "e")
    other_frame = Pick(5, 9.0, 1.0, 2**64 - 1, "f", face=True, face_box=left)

    assert same_shot(a, moved_a_little)
    assert not same_shot(a, mirrored) and not same_shot(a, closer)  # other framings of the person
    assert not same_shot(a, without_face) and not same_shot(a, other_frame)
    assert same_shot(without_face, Pick(6, 1.0, 1.0, 0b1111, "g"))


def select(picks: list[Pick[Any]], max_frames: int) -> list[Pick[Any]]:
    """What a Shortlist(max_frames) keeps when offered `picks` in order, chronologically."""
    shortlist: Shortlist[Any] = Shortlist(max_frames)
    for p in picks:
        shortlist.add(p)
    return shortlist.chronological()


def test_select_keeps_chronological_order() -> None:
    hashes = np.random.default_rng(1).integers(0, 2**63, 6)
    assert all(hamming(int(a), int(b)) > DUPLICATE_BITS for a, b in itertools.combinations(hashes, 2))
    picks = [pick(i, q, int(h)) for i, (q, h) in enumerate(zip([3, 9, 1, 7, 5, 8], hashes, strict=True))]

    chosen = select(picks, 3)
    assert [p.scene for p in chosen] == [1, 3, 5]


def test_upright_applies_the_display_rotation() -> None:
    image = np.arange(6, dtype=np.uint8).reshape(2, 3)  # [[0 1 2], [3 4 5]]

    assert upright(image, 0) is image
    assert upright(image, 90).tolist() == [[2, 5], [1, 4], [0, 3]]  # counter-clockwise
    assert upright(image, -90).tolist() == [[3, 0], [4, 1], [5, 2]]  # clockwise: a phone held upright
    assert upright(image, 180).tolist() == [[5, 4, 3], [2, 1, 0]]


class FakeFrame:
    """What `analyse` reads of a decoded frame."""

    def __init__(self, rotation: int) -> None:
        self.rotation = rotation
        self.width, self.height = 1280, 720


@pytest.mark.parametrize(("rotation", "size"), [(0, (1280, 720)), (-90, (720, 1280)), (90, (720, 1280))])
def test_candidates_of_a_rotated_video_are_upright(rotation: int, size: tuple[int, int]) -> None:
    luma = cv2.resize(gray("astronaut"), (1280, 720))
    scored = analyse(0, 0.0, FakeFrame(rotation), luma, False)  # type: ignore[arg-type]

    assert scored.payload.size == size  # the upright frame's (width, height)
    assert scored.payload.gray.shape == (size[1] // 2, size[0] // 2)
    assert scored.quality > 0
