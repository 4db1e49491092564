"""The LoRA dataset stage: a video in, a folder and a zip of captioned training images out.

One decode pass finds the scenes and each scene's best frame (video/scan.py); the best scenes
become the dataset (video/selection.py), cropped to training squares (video/crop.py). Every
scene is accounted for (`DatasetSummary`): too short, blurred, dark, without a face, the same
shot as a kept one, or over maxFrames. Fewer images than `minFrames` fail the run with
`DatasetTooSmall` here, before anything is uploaded or paid for.

On disk, in `out_dir`::

    images/0001.jpg       the training images, in the order they appear in the video
    captions/0001.txt     each one's caption (the captionTemplate with {trigger} filled in,
                          replaced by `apply_captions` when a vision model wrote them)
    dataset.zip           images/0001.jpg, images/0001.txt and captions/0001.txt
    contact-sheet.jpg     every image on one sheet, with its time in the video

The archive holds every caption twice on purpose: trainers that read captions beside their
images (fal's flux-lora-fast-training reads `0001.txt` next to `0001.jpg`) find them in
`images/`, trainers that expect a separate folder find them in `captions/`. Captions are
a few bytes, so the copy costs nothing.
"""

from __future__ import annotations

import shutil
import zipfile
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from contentgen.api import (
    Artifact,
    Captioning,
    DatasetImage,
    DatasetReport,
    DatasetSpec,
    DatasetSummary,
    DroppedScenes,
    Scene,
)
from contentgen.errors import InvalidInput, PermanentError
from contentgen.files import sha256_file
from contentgen.pipeline.contact_sheet import write_contact_sheet
from contentgen.pipeline.media import probe
from contentgen.pipeline.progress import SubProgress
from contentgen.pipeline.video.crop import detail_crop, encode_jpeg, face_crop, output_side, render
from contentgen.pipeline.video.decode import to_bgr
from contentgen.pipeline.video.faces import MIN_FACE_SHARE, Box, FaceFinder
from contentgen.pipeline.video.scan import Analysed, ClosedScene, Scanner
from contentgen.pipeline.video.scoring import MIN_EXPOSURE, MIN_SHARPNESS, phash, thumb
from contentgen.pipeline.video.selection import Candidate, Pick, Shortlist, choose

ARCHIVE = "dataset.zip"
CONTACT_SHEET = "contact-sheet.jpg"
_STAGING = ".staging"
# Fixed timestamps make the archive's bytes (and sha256) depend on its contents only.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_QUEUED = 4


@dataclass
class LocalImage:
    path: Path
    caption_path: Path
    caption: str
    time: float  # seconds into the source
    scene: int  # index into LocalDataset.scenes
    width: int
    height: int
    sharpness: float
    face: bool


class DatasetTooSmall(PermanentError):
    """Fewer usable images than dataset.minFrames; `summary` has the counts, `scenes` the
    scenes found ((start, end) seconds)."""

    reason = "DatasetTooSmall"

    def __init__(
        self, message: str, summary: DatasetSummary, scenes: list[tuple[float, float]] | None = None
    ) -> None:
        super().__init__(message)
        self.summary = summary
        self.scenes = scenes or []


@dataclass
class LocalDataset:
    root: Path
    archive: Path
    scenes: list[tuple[float, float]]  # every scene found, (start, end) in seconds
    images: list[LocalImage] = field(default_factory=list)
    frames_decoded: int = 0
    duration_seconds: float = 0.0
    summary: DatasetSummary | None = None  # set by build_dataset
    contact_sheet: Path | None = None
    captioning: Captioning = field(default_factory=Captioning)

    def report(
        self,
        uri_of: Callable[[Path], str],
        archive: Artifact | None = None,
        contact_sheet: Artifact | None = None,
    ) -> DatasetReport:
        """The API's DatasetReport, with each file's URI from `uri_of` (e.g. its stored key).
        `archive`, `contact_sheet`: the stored files, when the caller has them (no need to hash
        them again)."""
        if archive is None:
            archive = Artifact(
                uri=uri_of(self.archive),
                size_bytes=self.archive.stat().st_size,
                sha256=sha256_file(self.archive),
                content_type="application/zip",
            )
        return DatasetReport(
            frames=len(self.images),
            scenes=[Scene(start=float(start), end=float(end)) for start, end in self.scenes],
            images=[
                DatasetImage(
                    uri=uri_of(image.path),
                    time=float(image.time),
                    scene=image.scene,
                    width=image.width,
                    height=image.height,
                    sharpness=float(image.sharpness),
                    face=image.face,
                    caption=image.caption,
                )
                for image in self.images
            ],
            archive=archive,
            contact_sheet=contact_sheet,
            summary=self.summary,
            captioning=self.captioning,
        )


@dataclass
class _Staged:
    """A pick's image, written to the staging folder once the pick makes the shortlist."""

    path: Path
    box: Box
    side: int


class _Curator:
    """Turns closed scenes into shortlisted, staged images (one thread at a time), counting
    what each scene became."""

    def __init__(self, spec: DatasetSpec, staging: Path) -> None:
        self.spec, self.staging = spec, staging
        self.faces = FaceFinder()
        self.shortlist: Shortlist[_Staged] = Shortlist(spec.max_frames)
        self.longest = 0.0
        self.candidates = self.with_face = 0
        self.dropped = DroppedScenes()

    def find_face(self, candidate: Candidate[Analysed]) -> Box | None:
        return self.faces.find(candidate.payload.gray)

    def take(self, scene: ClosedScene) -> None:
        self.longest = max(self.longest, scene.seconds)
        dropped = self.dropped
        if scene.seconds < self.spec.min_scene_seconds:
            dropped.too_short += 1
            return
        self.candidates += 1
        lit = [c for c in scene.candidates if c.exposure >= MIN_EXPOSURE]
        usable = [c for c in lit if c.sharpness >= MIN_SHARPNESS]
        if not usable:
            if lit:
                dropped.blurry += 1
            else:
                dropped.dark += 1
            return
        chosen = choose(usable, self.find_face if self.spec.face_filter else None)
        assert chosen is not None
        candidate, face = chosen
        if not self.spec.face_filter:
            face = self.find_face(candidate)  # not a filter then, but still the best place to crop
        elif face is None:
            dropped.no_face += 1
            return
        if face is not None:
            self.with_face += 1
        pick = _pick(scene.index, candidate, face, self.staging)
        admission = self.shortlist.add(pick)
        left_out = len(admission.dropped) if admission.admitted else 1
        if admission.duplicate:
            dropped.duplicate += left_out
        else:  # admitted into a free place (nothing left out), or the list was full
            dropped.over_max_frames += left_out if admission.dropped or not admission.admitted else 0
        for gone in admission.dropped:
            gone.payload.path.unlink(missing_ok=True)
        if admission.admitted:
            image = render(to_bgr(candidate.payload.frame), pick.payload.box, pick.payload.side)
            pick.payload.path.write_bytes(encode_jpeg(image))

    def summary(self, scenes: int, kept: int) -> DatasetSummary:
        return DatasetSummary(
            scenes=scenes,
            candidates=self.candidates,
            faces=self.with_face,
            kept=kept,
            min_frames=self.spec.least_frames,
            dropped=self.dropped.model_copy(),
        )


def build_dataset(
    video: Path,
    spec: DatasetSpec,
    trigger_word: str,
    out_dir: Path,
    progress: SubProgress,
    *,
    max_seconds: float | None = None,
) -> LocalDataset:
    """Find `video`'s scenes and build the training dataset in `out_dir` (see the module doc).

    One image per scene: the scene's sharpest, best exposed frame among a few sampled per
    second (none mid-transition). Scenes shorter than `spec.min_scene_seconds` are skipped.
    With `spec.face_filter`, a scene counts only if one of its best frames shows a face (the
    best such frame is taken, cropped around the face): a LoRA of a person learns nothing
    from shots without them. A shot seen again is kept once (`selection.same_shot`). When
    more than `spec.max_frames` scenes qualify, the best ones are kept, in chronological order.

    Raises `InvalidInput` for an unreadable video or one longer than `max_seconds` seconds,
    and `DatasetTooSmall` when fewer than `spec.least_frames` images qualify, with the counts
    and what to change.
    """
    video, out_dir = Path(video), Path(out_dir)
    info = probe(video, require_video=True)
    if max_seconds is not None and info.duration > max_seconds:
        raise InvalidInput(
            f"{video.name} is {info.duration:.0f} s long, over the limit of {max_seconds:g} s "
            "(CONTENTGEN_MAX_VIDEO_SECONDS); trim the video or split it into parts"
        )
    images_dir, captions_dir, staging = out_dir / "images", out_dir / "captions", out_dir / _STAGING
    for folder in (images_dir, captions_dir, staging):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)

    scanner = Scanner(video, fps=info.fps, duration=info.duration, progress=progress, max_seconds=max_seconds)
    curator = _Curator(spec, staging)
    # OpenCV's own worker threads would only fight the decoder's for the cores (and spin while
    # they wait); every OpenCV call here is small. Restored afterwards: the setting is global.
    cv2_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        _scan(scanner, curator)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        cv2.setNumThreads(cv2_threads)

    shortlist = curator.shortlist
    summary = curator.summary(len(scanner.scenes), len(shortlist))
    if len(shortlist) < spec.least_frames:
        shutil.rmtree(staging, ignore_errors=True)
        raise DatasetTooSmall(too_small(video.name, spec, summary, curator.longest), summary, scanner.scenes)
    dataset = LocalDataset(
        root=out_dir,
        archive=out_dir / ARCHIVE,
        scenes=scanner.scenes,
        frames_decoded=scanner.frames_decoded,
        duration_seconds=scanner.duration,
        summary=summary,
    )
    caption = template_caption(spec.caption_template, trigger_word)
    for number, pick in enumerate(shortlist.chronological(), start=1):
        path = pick.payload.path.rename(images_dir / f"{number:04d}.jpg")
        caption_path = captions_dir / f"{number:04d}.txt"
        caption_path.write_text(caption, encoding="utf-8")
        dataset.images.append(
            LocalImage(
                path=path,
                caption_path=caption_path,
                caption=caption,
                time=pick.time,
                scene=pick.scene,
                width=pick.payload.side,
                height=pick.payload.side,
                sharpness=round(pick.sharpness, 2),
                face=pick.face,
            )
        )
    shutil.rmtree(staging, ignore_errors=True)
    write_archive(dataset)
    dataset.contact_sheet = write_contact_sheet(
        [(image.path, image.time, image.face) for image in dataset.images],
        out_dir / CONTACT_SHEET,
        title=f"{trigger_word}: {len(dataset.images)} images, {len(dataset.scenes)} scenes of {video.name}",
    )
    progress(100.0)
    return dataset


def template_caption(template: str, trigger_word: str, description: str = "") -> str:
    """The caption for one image: the template with {trigger} and {caption} filled in.

    A `description` (a vision model's) replaces {caption}, or follows the template after a
    comma when it has no {caption}; without one, {caption} and the comma before it go.
    """
    text = template.replace("{trigger}", trigger_word)
    if "{caption}" in text:
        if description:
            return " ".join(text.replace("{caption}", description).split())
        text = text.replace(", {caption}", "").replace("{caption}", "")
        return " ".join(text.split()).strip(" ,")
    return f"{text}, {description}" if description else text


def apply_captions(dataset: LocalDataset, captions: list[str], captioning: Captioning) -> None:
    """Replace every image's caption (in order) and write the archive again: what training sees."""
    if len(captions) != len(dataset.images):
        raise ValueError(f"{len(captions)} captions for {len(dataset.images)} images")
    for image, caption in zip(dataset.images, captions, strict=True):
        image.caption = caption
        image.caption_path.write_text(caption, encoding="utf-8")
    dataset.captioning = captioning
    write_archive(dataset)


def _scan(scanner: Scanner, curator: _Curator) -> None:
    """Decode on this thread; judge closed scenes (face search, crop, JPEG) on a second one.

    OpenCV and PyAV release the GIL, so the judging fills the cores the decoder leaves idle.
    At most `_QUEUED` closed scenes (a few frames each) wait for it.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataset") as executor:
        queued: deque[Future[None]] = deque()
        for scene in scanner:
            queued.append(executor.submit(curator.take, scene))
            while queued and (len(queued) > _QUEUED or queued[0].done()):
                queued.popleft().result()
        for future in queued:
            future.result()


def _pick(scene: int, candidate: Candidate[Analysed], face: Box | None, staging: Path) -> Pick[_Staged]:
    """The scene's contender: where its crop goes, its size, and what identifies its shot."""
    analysed = candidate.payload
    width, height = analysed.size
    gray_h, gray_w = analysed.gray.shape[:2]
    area = None  # the picture inside black bars, in source pixels
    if analysed.area[2]:
        bars = Box(*analysed.area).scaled(analysed.scale)
        area = Box(bars.x, bars.y, min(bars.w, width - bars.x), min(bars.h, height - bars.y))
    face_box = None
    if face is not None:
        box = face_crop(width, height, face.scaled(analysed.scale), area=area)
        face_box = (face.x / gray_w, face.y / gray_h, face.w / gray_w, face.h / gray_h)
    else:
        box = detail_crop(width, height, analysed.gray, area=area)
    return Pick(
        scene=scene,
        time=candidate.time,
        quality=candidate.quality,
        phash=phash(analysed.gray),
        payload=_Staged(staging / f"scene-{scene:05d}.jpg", box, output_side(box.w)),
        face=face is not None,
        sharpness=candidate.sharpness,
        face_box=face_box,
        thumb=thumb(analysed.gray) if face_box is not None else None,
    )


def too_small(name: str, spec: DatasetSpec, summary: DatasetSummary, longest: float) -> str:
    """DatasetTooSmall's message: what was found, what was dropped and why, and what to change."""
    d = summary.dropped
    reasons = [
        (d.too_short, f"shorter than minSceneSeconds {spec.min_scene_seconds:g} s"),
        (d.no_face, "no face found"),
        (d.blurry, "blurred"),
        (d.dark, "too dark or too bright"),
        (d.duplicate, "the same shot as a kept image"),
    ]
    dropped = ", ".join(f"{count} {why}" for count, why in reasons if count) or "none"
    faces = f", {summary.faces} showed a face" if spec.face_filter else ""
    fixes = []
    if spec.face_filter and d.no_face:
        fixes.append(
            f"use a video where the face fills at least {MIN_FACE_SHARE:.0%} of the picture's height in "
            "more shots, or set dataset.faceFilter: false for a subject without a face"
        )
    if d.too_short and longest < 2 * spec.min_scene_seconds:
        fixes.append(f"lower dataset.minSceneSeconds (the longest scene lasts {longest:.1f} s)")
    fixes.append("use a longer video with more distinct shots")
    if summary.kept >= 4:
        fixes.append(f"or lower dataset.minFrames to {summary.kept}")
    return (
        f"{name} gives {summary.kept} usable image(s), fewer than dataset.minFrames {spec.least_frames}: "
        f"{summary.scenes} scene(s) found, {summary.candidates} long enough{faces}; dropped: {dropped}. "
        f"To fix: {'; '.join(fixes)}"
    )


def write_archive(dataset: LocalDataset) -> Path:
    """Write dataset.zip: images/NNNN.jpg and .txt side by side, plus captions/NNNN.txt."""
    with zipfile.ZipFile(dataset.archive, "w") as archive:
        for image in dataset.images:
            caption = image.caption_path.read_bytes()
            _add(archive, f"images/{image.path.name}", image.path.read_bytes(), zipfile.ZIP_STORED)
            _add(archive, f"images/{image.caption_path.name}", caption, zipfile.ZIP_DEFLATED)
            _add(archive, f"captions/{image.caption_path.name}", caption, zipfile.ZIP_DEFLATED)
    return dataset.archive


def _add(archive: zipfile.ZipFile, name: str, data: bytes, compression: int) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = compression
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)
