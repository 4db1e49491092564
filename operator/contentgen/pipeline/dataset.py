"""The LoRA dataset stage: a video in, a folder and a zip of captioned training images out.

One decode pass finds the scenes and each scene's best frame (video/scan.py); the best scenes
become the dataset (video/selection.py), cropped to training squares (video/crop.py).

On disk, in `out_dir`::

    images/0001.jpg       the training images, in the order they appear in the video
    captions/0001.txt     each one's caption (the captionTemplate with {trigger} filled in)
    dataset.zip           images/0001.jpg, images/0001.txt and captions/0001.txt

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
import numpy as np

from contentgen.api import Artifact, DatasetImage, DatasetReport, DatasetSpec, Scene
from contentgen.errors import InvalidInput
from contentgen.files import sha256_file
from contentgen.pipeline.media import probe
from contentgen.pipeline.progress import SubProgress
from contentgen.pipeline.video.crop import detail_crop, encode_jpeg, face_crop, output_side, render
from contentgen.pipeline.video.decode import to_bgr
from contentgen.pipeline.video.faces import MIN_FACE_SHARE, Box, FaceFinder
from contentgen.pipeline.video.scan import Analysed, ClosedScene, Scanner
from contentgen.pipeline.video.scoring import phash
from contentgen.pipeline.video.selection import Candidate, Pick, Shortlist, choose

ARCHIVE = "dataset.zip"
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


@dataclass
class LocalDataset:
    root: Path
    archive: Path
    scenes: list[tuple[float, float]]  # every scene found, (start, end) in seconds
    images: list[LocalImage] = field(default_factory=list)
    frames_decoded: int = 0
    duration_seconds: float = 0.0

    def report(self, uri_of: Callable[[Path], str], archive: Artifact | None = None) -> DatasetReport:
        """The API's DatasetReport, with each file's URI from `uri_of` (e.g. its stored key).
        `archive`: the stored archive, when the caller has it (no need to hash it again)."""
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
                )
                for image in self.images
            ],
            archive=archive,
        )


@dataclass
class _Staged:
    """A pick's image, written to the staging folder once the pick makes the shortlist."""

    path: Path
    box: Box
    side: int


class _Curator:
    """Turns closed scenes into shortlisted, staged images (one thread at a time)."""

    def __init__(self, spec: DatasetSpec, staging: Path) -> None:
        self.spec, self.staging = spec, staging
        self.faces = FaceFinder()
        self.shortlist: Shortlist[_Staged] = Shortlist(spec.max_frames)
        self.longest, self.long_enough = 0.0, 0

    def find_face(self, candidate: Candidate[Analysed]) -> Box | None:
        return self.faces.find(candidate.payload.gray)

    def take(self, scene: ClosedScene) -> None:
        self.longest = max(self.longest, scene.seconds)
        if scene.seconds < self.spec.min_scene_seconds:
            return
        self.long_enough += 1
        chosen = choose(scene.candidates, self.find_face if self.spec.face_filter else None)
        if chosen is None:
            return
        candidate, face = chosen
        if not self.spec.face_filter:
            face = self.find_face(candidate)  # not a filter then, but still the best place to crop
        elif face is None:
            return
        pick = _pick(scene.index, candidate, face, self.staging)
        admitted, dropped = self.shortlist.add(pick)
        for gone in dropped:
            gone.payload.path.unlink(missing_ok=True)
        if admitted:
            image = render(to_bgr(candidate.payload.frame), pick.payload.box, pick.payload.side)
            pick.payload.path.write_bytes(encode_jpeg(image))


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
    second. Scenes shorter than `spec.min_scene_seconds` are skipped. With
    `spec.face_filter`, a scene counts only if one of its best frames shows a frontal face
    (the best such frame is taken, cropped around the face): a LoRA of a person learns
    nothing from shots without them. Near-duplicate images (pHash) are kept once. When more
    than `spec.max_frames` scenes qualify, the best ones are kept, in chronological order.

    Raises `InvalidInput` for an unreadable video, one longer than `max_seconds` seconds, or
    one without a usable scene, with what to change.
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
    if not len(shortlist):
        shutil.rmtree(staging, ignore_errors=True)
        raise InvalidInput(_why_empty(video.name, spec, curator.long_enough, curator.longest))
    dataset = LocalDataset(
        root=out_dir,
        archive=out_dir / ARCHIVE,
        scenes=scanner.scenes,
        frames_decoded=scanner.frames_decoded,
        duration_seconds=scanner.duration,
    )
    caption = spec.caption_template.replace("{trigger}", trigger_word)
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
    progress(100.0)
    return dataset


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
    """The scene's contender: where its crop goes, its size and the pHash of what it shows."""
    analysed = candidate.payload
    width, height = analysed.size
    if face is not None:
        box = face_crop(width, height, face.scaled(analysed.scale))
    else:
        box = detail_crop(width, height, analysed.gray)
    return Pick(
        scene=scene,
        time=candidate.time,
        quality=candidate.quality,
        phash=phash(_crop_of(analysed.gray, box, analysed.scale)),
        payload=_Staged(staging / f"scene-{scene:05d}.jpg", box, output_side(box.w)),
        face=face is not None,
        sharpness=candidate.sharpness,
    )


def _crop_of(gray: np.ndarray, box: Box, scale: float) -> np.ndarray:
    """The part of the analysis luma that `box` (source pixels) covers: what the image will show."""
    small = box.scaled(1 / scale)
    return gray[small.y : small.y + max(small.h, 1), small.x : small.x + max(small.w, 1)]


def _why_empty(name: str, spec: DatasetSpec, long_enough: int, longest: float) -> str:
    if long_enough == 0:
        return (
            f"no scene of {name} lasts dataset.minSceneSeconds ({spec.min_scene_seconds:g} s) or longer "
            f"(the longest lasts {longest:.1f} s); lower dataset.minSceneSeconds"
        )
    if spec.face_filter:
        return (
            f"no scene of {name} shows a face the detector finds (frontal, at least {MIN_FACE_SHARE:.0%} "
            "of the picture's height); use a video where the face is seen from the front, or set "
            "dataset.faceFilter: false"
        )
    return f"no usable frame found in {name}; use a longer or clearer video"


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
