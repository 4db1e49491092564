"""build_dataset on generated videos: which frames, what is written, and the errors."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from contentgen.api import DatasetReport
from contentgen.errors import InvalidInput
from contentgen.pipeline.dataset import DatasetTooSmall, LocalDataset, build_dataset
from contentgen.pipeline.footage.identity import SAME_PERSON
from contentgen.pipeline.likeness.faces import load_faces
from contentgen.pipeline.likeness.score import centroid
from scripts.synthetic_video import SyntheticVideo
from tests.harness.dataset import spec
from tests.pipeline.conftest import cut_f1, scene_of


def build(video: SyntheticVideo, out: Path, **changes: object) -> LocalDataset:
    return build_dataset(video.path, spec(**changes), "dmavatar", out, lambda _: None)


@pytest.fixture(scope="module")
def faces_only(shots: SyntheticVideo, tmp_path_factory: pytest.TempPathFactory) -> LocalDataset:
    return build(shots, tmp_path_factory.mktemp("faces-only"))


@pytest.fixture(scope="module")
def every_scene(shots: SyntheticVideo, tmp_path_factory: pytest.TempPathFactory) -> LocalDataset:
    return build(shots, tmp_path_factory.mktemp("every-scene"), face_filter=False)


def test_scenes_found(faces_only: LocalDataset, shots: SyntheticVideo) -> None:
    assert len(faces_only.scenes) == len(shots.scenes)
    assert cut_f1([start for start, _ in faces_only.scenes[1:]], shots.cuts) == 1.0
    # Frames nothing refers to are not decoded (x264 makes about 4 in 10 of them).
    assert shots.frames / 3 < faces_only.frames_decoded < shots.frames
    assert faces_only.duration_seconds == pytest.approx(shots.duration, abs=0.05)


def test_face_filter_keeps_face_scenes_only(faces_only: LocalDataset, shots: SyntheticVideo) -> None:
    true_scenes = [scene_of(shots, image.time) for image in faces_only.images]

    assert true_scenes == [i for i, face in enumerate(shots.face_scenes) if face]
    assert all(image.face for image in faces_only.images)
    assert [image.scene for image in faces_only.images] == true_scenes  # detected index = true index


def test_without_face_filter_every_long_enough_scene(
    every_scene: LocalDataset, shots: SyntheticVideo
) -> None:
    true_scenes = [scene_of(shots, image.time) for image in every_scene.images]
    long_enough = [i for i, (start, end) in enumerate(shots.scenes) if end - start >= 1.0]

    assert true_scenes == long_enough  # the 0.5 s scene is skipped
    assert [image.face for image in every_scene.images] == [shots.face_scenes[i] for i in long_enough]


def test_the_sharp_part_of_a_scene_is_chosen(faces_only: LocalDataset, shots: SyntheticVideo) -> None:
    first = faces_only.images[0]
    spec0 = shots.specs[0]

    assert first.scene == 0
    assert first.time >= spec0.blurred_until * spec0.seconds  # out of focus before that


def test_images_and_captions_on_disk(faces_only: LocalDataset) -> None:
    root = faces_only.root
    names = [f"{n:04d}" for n in range(1, len(faces_only.images) + 1)]

    assert sorted(p.name for p in (root / "images").iterdir()) == [f"{n}.jpg" for n in names]
    assert sorted(p.name for p in (root / "captions").iterdir()) == [f"{n}.txt" for n in names]
    assert {p.name for p in root.iterdir()} == {
        "images",
        "captions",
        "dataset.zip",
        "contact-sheet.jpg",
        "faces.json",
    }
    for image in faces_only.images:
        assert image.caption == "a photo of dmavatar, a person"
        assert image.caption_path.read_text() == image.caption
        picture = cv2.imread(str(image.path))
        assert picture.shape == (image.height, image.width, 3)
        assert image.width == image.height == 270  # 180 px tall source: at most 1.5× enlarged
        assert image.sharpness > 0


def test_the_subjects_faces_are_kept_for_the_likeness_evaluation(
    faces_only: LocalDataset, every_scene: LocalDataset
) -> None:
    """With faceFilter, faces.json holds the subject's embedding in each training image, the one
    the stage chose the subject by (each alike to their centroid); without it, there is none."""
    assert faces_only.faces == faces_only.root / "faces.json"
    names, rows = load_faces(faces_only.faces)
    assert names == [image.path.name for image in faces_only.images]
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-4)
    assert min(rows @ centroid(rows)) >= SAME_PERSON
    assert every_scene.faces is None and not (every_scene.root / "faces.json").exists()


def test_images_are_chronological(every_scene: LocalDataset) -> None:
    times = [image.time for image in every_scene.images]
    assert times == sorted(times)
    assert [image.path.name for image in every_scene.images] == sorted(
        i.path.name for i in every_scene.images
    )


def test_archive(faces_only: LocalDataset) -> None:
    with zipfile.ZipFile(faces_only.archive) as archive:
        names = archive.namelist()
        expected = []
        for image in faces_only.images:
            stem = image.path.stem
            expected += [f"images/{stem}.jpg", f"images/{stem}.txt", f"captions/{stem}.txt"]
            assert archive.read(f"images/{stem}.jpg") == image.path.read_bytes()
            assert archive.read(f"images/{stem}.txt").decode() == image.caption
            assert archive.read(f"captions/{stem}.txt").decode() == image.caption

    assert sorted(names) == sorted(expected)
    assert faces_only.archive == faces_only.root / "dataset.zip"


def test_report(faces_only: LocalDataset) -> None:
    report = faces_only.report(lambda path: f"s3://bucket/ds/{path.parent.name}/{path.name}")

    assert isinstance(report, DatasetReport)
    assert report.frames == len(faces_only.images) == len(report.images)
    assert [(s.start, s.end) for s in report.scenes] == faces_only.scenes
    assert report.images[0].uri == "s3://bucket/ds/images/0001.jpg"
    assert report.images[0].time == faces_only.images[0].time
    assert report.images[0].face is True
    assert report.archive is not None
    assert report.archive.uri.endswith("/dataset.zip")
    assert report.archive.sha256 == hashlib.sha256(faces_only.archive.read_bytes()).hexdigest()
    assert report.archive.content_type == "application/zip"
    DatasetReport.model_validate_json(report.model_dump_json(by_alias=True))  # round-trips on the wire


def test_max_frames_keeps_the_best_scenes_in_order(random_shots: SyntheticVideo, tmp_path: Path) -> None:
    everything = build(
        random_shots, tmp_path / "all", face_filter=False, min_scene_seconds=0.2, max_frames=200
    )
    assert len(everything.images) > 4
    capped = build(random_shots, tmp_path / "capped", face_filter=False, min_scene_seconds=0.2, max_frames=4)

    assert len(capped.images) == 4
    assert [i.time for i in capped.images] == sorted(i.time for i in capped.images)
    kept = {i.scene for i in capped.images}
    assert kept <= {i.scene for i in everything.images}
    assert sorted(p.name for p in (capped.root / "images").iterdir()) == [f"{n:04d}.jpg" for n in range(1, 5)]


def test_min_scene_seconds(shots: SyntheticVideo, tmp_path: Path) -> None:
    dataset = build(shots, tmp_path / "long", face_filter=False, min_scene_seconds=2.1)
    assert [scene_of(shots, i.time) for i in dataset.images] == [0]  # the only shot of 2.5 s

    with pytest.raises(DatasetTooSmall, match=r"lower dataset\.minSceneSeconds") as caught:
        build(shots, tmp_path / "too-long", min_scene_seconds=5.0)
    assert "shots.mp4" in str(caught.value) and "2.5 s" in str(caught.value)
    assert caught.value.summary.dropped.too_short == 6 and caught.value.summary.kept == 0


def test_near_duplicates_kept_once(tmp_path: Path, media_dir: Path) -> None:
    from scripts.synthetic_video import face_scene, other_scene, write_video

    # The same shot three times, cut apart by other shots: one image of it, not three.
    plan = [face_scene(1.5, variant=0), other_scene(1.5, "coffee")] * 2 + [face_scene(1.5, variant=0)]
    video = write_video(media_dir / "repeats.mp4", plan, width=320, height=180, fps=24)
    dataset = build(video, tmp_path / "repeats", face_filter=False)

    assert len(dataset.scenes) == 5
    assert sorted(scene_of(video, i.time) % 2 for i in dataset.images) == [0, 1]


def test_a_lighting_change_is_another_image_the_same_light_is_not(tmp_path: Path, media_dir: Path) -> None:
    """Issue 45: a close-up at brightness ×1.22, a little closer than one in the room's light, was
    dropped as a duplicate of it (the aligned comparison is blind to brightness). Lighting makes a
    different training image: both are kept, and the first one shown again in its own light
    after a cutaway is still one image."""
    from scripts.synthetic_video import SceneSpec, other_scene, write_video

    close = SceneSpec("grace_hopper", 2.0, center=(0.5, 0.42), view=0.7, face=True)
    plan = [
        close,
        other_scene(1.5, "coffee"),
        SceneSpec("grace_hopper", 2.0, center=(0.5, 0.42), view=0.7 / 1.08, face=True, brightness=1.22),
        other_scene(1.5, "rocket"),
        close,  # the same framing in the same light again
    ]
    video = write_video(media_dir / "relit.mp4", plan, width=320, height=180, fps=24)
    dataset = build(video, tmp_path)

    lights = sorted("brighter" if scene_of(video, i.time) == 2 else "first" for i in dataset.images)
    assert lights == ["brighter", "first"]  # the repeat in the first light (scene 0 or 4) is no third image
    assert dataset.summary is not None and dataset.summary.dropped.duplicate == 1


def test_portrait_photos_in_a_landscape_video(tmp_path: Path, media_dir: Path) -> None:
    """Black bars beside the picture are neither darkness nor part of a training image."""
    from scripts.synthetic_video import SceneSpec, other_scene, write_video

    plan = [
        SceneSpec("grace_hopper", 2.0, center=(0.5, 0.5), view=1.0, face=True),
        other_scene(1.5, "coffee"),
        SceneSpec("grace_hopper", 2.0, center=(0.5, 0.45), view=0.8, face=True, mirror=True),
    ]
    video = write_video(media_dir / "pillarbox.mp4", plan, width=320, height=180, fps=24)
    dataset = build(video, tmp_path)

    assert [scene_of(video, i.time) for i in dataset.images] == [0, 2]
    for image in dataset.images:
        pixels = cv2.imread(str(image.path), cv2.IMREAD_GRAYSCALE)
        assert pixels[:, :3].max() > 40 and pixels[:, -3:].max() > 40  # no bar at either side


def test_no_face_anywhere(no_faces: SyntheticVideo, tmp_path: Path) -> None:
    with pytest.raises(
        DatasetTooSmall,
        match=r"no-faces\.mp4 gives 0 usable image.*3 no face found.*dataset\.faceFilter: false",
    ):
        build(no_faces, tmp_path / "out")
    assert not (tmp_path / "out" / ".staging").exists()

    assert len(build(no_faces, tmp_path / "out", face_filter=False).images) == 3


def test_max_seconds(shots: SyntheticVideo, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"shots\.mp4 is 11 s long, over the limit of 5 s") as caught:
        build_dataset(shots.path, spec(), "x", tmp_path, lambda _: None, max_seconds=5)
    assert caught.value.reason == "InvalidInput"

    assert build_dataset(shots.path, spec(), "x", tmp_path, lambda _: None, max_seconds=12).images


def test_not_a_video(audio_only: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no video stream"):
        build_dataset(audio_only, spec(), "x", tmp_path, lambda _: None)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(InvalidInput, match=r"notes\.mp4 is not a readable"):
        build_dataset(text, spec(), "x", tmp_path, lambda _: None)


def test_progress(shots: SyntheticVideo, tmp_path: Path) -> None:
    reported: list[float] = []
    build_dataset(shots.path, spec(), "x", tmp_path, reported.append)

    assert reported == sorted(reported)
    assert reported[-1] == 100
    assert all(0 <= p <= 100 for p in reported)
    assert 20 <= len(reported) <= 102  # about one report per percent, no more


def test_rebuilding_replaces_the_previous_dataset(shots: SyntheticVideo, tmp_path: Path) -> None:
    build(shots, tmp_path, face_filter=False)
    again = build(shots, tmp_path)

    assert len(list((tmp_path / "images").iterdir())) == len(again.images)
    assert len(list((tmp_path / "captions").iterdir())) == len(again.images)


def test_same_input_same_archive(shots: SyntheticVideo, tmp_path: Path, faces_only: LocalDataset) -> None:
    again = build(shots, tmp_path)
    assert again.archive.read_bytes() == faces_only.archive.read_bytes()


@pytest.mark.parametrize("pix_fmt", ["yuvj420p", "yuv444p", "yuv420p10le"])
def test_other_pixel_formats(pix_fmt: str, media_dir: Path, tmp_path: Path) -> None:
    from scripts.synthetic_video import face_scene, other_scene, write_video

    plan = [face_scene(1.5, variant=0), other_scene(1.5, "coffee"), face_scene(1.5, variant=1)]
    video = write_video(media_dir / f"{pix_fmt}.mp4", plan, width=320, height=180, fps=24, pix_fmt=pix_fmt)
    dataset = build(video, tmp_path)

    assert cut_f1([start for start, _ in dataset.scenes[1:]], video.cuts) == 1.0
    assert [scene_of(video, i.time) for i in dataset.images] == [0, 2]
    assert all(cv2.imread(str(i.path)).shape == (270, 270, 3) for i in dataset.images)


def test_every_scene_is_accounted_for(faces_only: LocalDataset, shots: SyntheticVideo) -> None:
    summary = faces_only.summary
    assert summary.scenes == len(shots.scenes) == 6
    assert summary.dropped.too_short == 1  # the 0.5 s shot
    assert summary.candidates == 5 and summary.faces == 3 == summary.kept
    assert summary.dropped.no_face == 2
    assert summary.kept + summary.dropped.total == summary.scenes


def test_the_gate_counts_and_says_what_to_change(shots: SyntheticVideo, tmp_path: Path) -> None:
    with pytest.raises(DatasetTooSmall) as caught:
        build(shots, tmp_path, min_frames=4)
    message = str(caught.value)
    assert caught.value.reason == "DatasetTooSmall"
    assert message.startswith("shots.mp4 gives 3 usable images, fewer than dataset.minFrames 4: ")
    assert "6 scenes found, 5 long enough, 3 showed a face" in message
    assert "dropped: 1 shorter than minSceneSeconds 1 s, 2 no face found" in message
    assert "dataset.faceFilter: false" in message and "a longer video" in message
    assert caught.value.summary.kept == 3 and caught.value.summary.min_frames == 4
    assert not (tmp_path / "images").exists() or not list((tmp_path / "images").iterdir())


def test_template_captions() -> None:
    from contentgen.pipeline.dataset import template_caption

    assert template_caption("a photo of {trigger}", "tw") == "a photo of tw"
    assert (
        template_caption("a photo of {trigger}", "tw", "the person smiles")
        == "a photo of tw, the person smiles"
    )
    assert (
        template_caption("{trigger}, {caption}, 35mm", "tw", "the person smiles")
        == "tw, the person smiles, 35mm"
    )
    assert template_caption("{trigger}, {caption}", "tw") == "tw"  # template mode: no empty slot left


def test_contact_sheet(faces_only: LocalDataset) -> None:
    from contentgen.pipeline.contact_sheet import clock, layout

    assert faces_only.contact_sheet == faces_only.root / "contact-sheet.jpg"
    sheet = cv2.imread(str(faces_only.contact_sheet))
    columns, rows = layout(len(faces_only.images))
    assert (columns, rows) == (2, 2)
    assert sheet.shape[1] == columns * 240 + (columns + 1) * 6 and sheet.shape[0] > rows * 240
    assert clock(12.34) == "0:12.3" and clock(3725) == "1:02:05.0"


def test_contact_sheet_title_fits_a_narrow_sheet(faces_only: LocalDataset, tmp_path: Path) -> None:
    from contentgen.pipeline.contact_sheet import write_contact_sheet

    image = faces_only.images[0]
    title = "dmavatar: 1 images, 8 scenes of a-video-with-a-rather-long-name.mp4"
    sheet = cv2.imread(str(write_contact_sheet([(image.path, 1.0, True)], tmp_path / "s.jpg", title=title)))
    band = sheet[:40]
    assert band[:, :100].max() > 200  # the title is there
    assert band[:, -4:].max() < 80  # and ends before the sheet does


def test_apply_captions_rewrites_what_training_sees(shots: SyntheticVideo, tmp_path: Path) -> None:
    from contentgen.api import Captioning
    from contentgen.pipeline.dataset import apply_captions

    dataset = build(shots, tmp_path)
    captions = [f"tw, picture {n}" for n in range(len(dataset.images))]
    apply_captions(dataset, captions, Captioning(mode="auto", provider="fal", model="m"))

    with zipfile.ZipFile(dataset.archive) as archive:
        for image, caption in zip(dataset.images, captions, strict=True):
            assert archive.read(f"images/{image.path.stem}.txt").decode() == caption
            assert archive.read(f"captions/{image.path.stem}.txt").decode() == caption
    assert dataset.report(lambda p: p.name).captioning == Captioning(mode="auto", provider="fal", model="m")
    with pytest.raises(ValueError, match="2 captions for 3 images"):
        apply_captions(dataset, captions[:2], Captioning())
