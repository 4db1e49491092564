"""The LoRA dataset stage: a video in, a folder and a zip of captioned training images out.

One decode pass finds the scenes and each scene's best frame (footage/scan.py). With faceFilter,
each face of that frame is staged as a training square around it that leaves other faces out
(footage/crop.py) and embedded (footage/identity.py); once the video is through, the faces are
grouped into people and the subject chosen (footage/subject.py: the reference photos' person, or
clearly the most screen time, weighed by prominence), and the subject's best scenes become the
dataset (footage/selection.py). Every scene is accounted for (`DatasetSummary`): too short, blurred,
dark, without a face, only another person, too crowded to crop, the same shot as a kept one,
or over maxFrames. An unclear subject fails the run with `SubjectAmbiguous` (or
`SubjectNotFound`) and fewer images than `minFrames` with `DatasetTooSmall`, here, before
anything is uploaded or paid for.

On disk, in `out_dir`::

    images/0001.jpg       the training images, in the order they appear in the video
    captions/0001.txt     each one's caption (the captionTemplate with {trigger} filled in,
                          replaced by `apply_captions` when a vision model wrote them)
    dataset.zip           images/0001.jpg, images/0001.txt and captions/0001.txt
    contact-sheet.jpg     every image on one sheet, with its time in the video, and one face of
                          each person found
    faces.json            with faceFilter: the subject's face embedding in each image, kept with
                          the dataset version for the likeness evaluation (likeness/faces.py)
    people.jpg            instead, when the subject is unclear: one face of each person, numbered

The archive holds every caption twice on purpose: trainers that read captions beside their
images (fal's flux-lora-fast-training reads `0001.txt` next to `0001.jpg`) find them in
`images/`, trainers that expect a separate folder find them in `captions/`. Captions are
a few bytes, so the copy costs nothing.

A video LoRA's dataset (`LocalDataset.flat`) adds clips of the subject (clip_dataset.py) and is
archived flat: `0001.jpg`, `clip-0001.mp4`, each with its caption `.txt` beside it and nothing in
a folder, which fal's Wan trainers read whether they look at the zip's top level only or into
its folders (their pages say neither: "a caption in a text file with the same name").
"""

from __future__ import annotations

import json
import shutil
import threading
import zipfile
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from contentgen.api import (
    SUBJECT_DOMINANCE,
    Artifact,
    Captioning,
    DatasetImage,
    DatasetReport,
    DatasetSpec,
    DatasetSummary,
    DroppedScenes,
    Scene,
)
from contentgen.api.words import counted
from contentgen.errors import InvalidInput, PermanentError
from contentgen.files import sha256_file
from contentgen.pipeline.clip_dataset import LocalClip
from contentgen.pipeline.contact_sheet import write_contact_sheet
from contentgen.pipeline.footage.crop import (
    detail_crop,
    encode_jpeg,
    face_thumbnail,
    output_side,
    render,
    subject_crop,
)
from contentgen.pipeline.footage.decode import expand_range, reduce, to_bgr
from contentgen.pipeline.footage.faces import MIN_FACE_SHARE, Box, Face, FaceFinder, overlap
from contentgen.pipeline.footage.identity import SAME_PERSON, Embedder, centroid, similarity
from contentgen.pipeline.footage.scan import Analysed, ClosedScene, Scanner
from contentgen.pipeline.footage.scoring import (
    CANDIDATE_LONG_SIDE,
    MIN_EXPOSURE,
    MIN_SHARPNESS,
    face_exposure,
    phash,
    quality,
    thumb,
)
from contentgen.pipeline.footage.selection import Candidate, Pick, Shortlist, choose
from contentgen.pipeline.footage.subject import (
    PersonFound,
    Subject,
    choose_subject,
    identify,
    people_report,
    purity,
    screen_shares,
)
from contentgen.pipeline.likeness.faces import FACES_FILE, faces_document
from contentgen.pipeline.media import MediaInfo, probe
from contentgen.pipeline.progress import SubProgress

ARCHIVE = "dataset.zip"
CONTACT_SHEET = "contact-sheet.jpg"
_STAGING = ".staging"
# Fixed timestamps make the archive's bytes (and sha256) depend on its contents only.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_QUEUED = 4
PEOPLE_SHEET = "people.jpg"
MAX_LISTED = 5  # people named in a SubjectAmbiguous message
# Faces down to this share of the picture's shorter side are kept out of another's crop (smaller
# ones are too small to find reliably, or to recognise in a training image).
OBSTACLE_SHARE = 0.05


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
    box: tuple[int, int, int, int] = (0, 0, 0, 0)  # the crop: x, y, width, height in the upright frame


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


class SubjectAmbiguous(PermanentError):
    """No reference photos, and no one has clearly the most screen time: who the dataset should
    show is the user's call. `summary` has the counts and the people found, `contact_sheet` (in
    the output folder) one face of each, numbered."""

    reason = "SubjectAmbiguous"

    def __init__(
        self,
        template: str,
        summary: DatasetSummary,
        scenes: list[tuple[float, float]],
        contact_sheet: Path,
        sheet_uri: str = "",
    ) -> None:
        super().__init__(template.replace("{sheet}", sheet_uri or str(contact_sheet)))
        self.template, self.scenes, self.contact_sheet = template, scenes, contact_sheet
        self.summary = summary.model_copy(update={"contact_sheet_uri": sheet_uri}) if sheet_uri else summary

    def located(self, sheet_uri: str) -> SubjectAmbiguous:
        """The same failure, naming where the contact sheet was stored."""
        return type(self)(self.template, self.summary, self.scenes, self.contact_sheet, sheet_uri)


class SubjectNotFound(SubjectAmbiguous):
    """No one in the video looks like the reference photos."""

    reason = "SubjectNotFound"


class _Undecided(Exception):
    def __init__(self, people: list[PersonFound], with_reference: bool) -> None:
        super().__init__("no subject")
        self.people, self.with_reference = people, with_reference


@dataclass
class LocalDataset:
    root: Path
    archive: Path
    scenes: list[tuple[float, float]]  # every scene found, (start, end) in seconds
    images: list[LocalImage] = field(default_factory=list)
    cuts: list[tuple[float, str]] = field(default_factory=list)  # (time, cut | dissolve | fade)
    frames_decoded: int = 0
    duration_seconds: float = 0.0
    summary: DatasetSummary | None = None  # set by build_dataset
    contact_sheet: Path | None = None
    captioning: Captioning = field(default_factory=Captioning)
    faces: Path | None = None  # faces.json: the subject's embedding per image (faceFilter only)
    # What a video LoRA's clips are cut from (clip_dataset.py): each transition's span, the shots
    # of the subject (indices into scenes) and their faces' mean embeddings (none without faceFilter)
    guards: list[tuple[float, float]] = field(default_factory=list)
    subject_shots: list[int] = field(default_factory=list)
    subject_centres: list[np.ndarray] = field(default_factory=list)
    clips: list[LocalClip] = field(default_factory=list)
    flat: bool = False  # archived flat, clips beside stills (a video LoRA's)
    stills: bool = True  # its stills in the archive (a trainer of clips only takes none)

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


@dataclass(eq=False)
class _Sighting:
    """One face in a judged scene's chosen frame: whose it may be, and its training crop (staged
    already: whose face the dataset shows is known only at the end), or None when other faces
    are too close for one."""

    scene: int
    pick: Pick[_Staged] | None
    embedding: np.ndarray
    face_jpeg: bytes  # a small picture of the face, for contact sheets
    share: float = 1.0  # of the scene's screen time (subject.screen_shares)


@dataclass
class _Found:
    """The faces in a candidate frame: `main`, large enough to train on (MIN_FACE_SHARE), and
    `everyone`, down to OBSTACLE_SHARE (not to be in another's crop), with `maybe`, what the
    detector's first look took for a face and its second did not confirm (a profile, a face
    turned away: kept out of crops too; a wrong one costs a tighter crop at most)."""

    main: list[Face]
    everyone: list[Face]
    maybe: list[Box]


class _Curator:
    """Turns closed scenes into shortlisted, staged images (one thread at a time), counting
    what each scene became. With faceFilter, each scene's faces are staged first and the
    subject's go to the shortlist at the end (`decide`), once it is known who the subject is."""

    def __init__(self, spec: DatasetSpec, staging: Path, embedder: Embedder | None = None) -> None:
        self.spec, self.staging = spec, staging
        self.faces = FaceFinder()
        self.embedder = embedder or Embedder()
        self.shortlist: Shortlist[_Staged] = Shortlist(spec.max_frames)
        self.longest = 0.0
        self.candidates = self.with_face = 0
        self.dropped = DroppedScenes()
        self.sightings: list[_Sighting] = []
        self.scene_seconds: dict[int, float] = {}
        # The staged crops are rendered and written on a thread of their own (OpenCV releases the
        # GIL), at most _QUEUED at a time: the face searches are what the judging waits for.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataset-write")
        self._writes: deque[Future[None]] = deque()

    def warm(self) -> None:
        """Load the networks before the first scene needs them (a thread of its own at the start);
        an error is left to the search that meets it."""
        try:
            self.faces.warm()
            if self.spec.face_filter:
                self.embedder.warm()
        except Exception:  # noqa: S110 (raised again, with its context, by the first search)
            pass

    def _stage(self, bgr: np.ndarray, pick: Pick[_Staged]) -> None:
        """Render and write a staged crop, on the writer thread."""
        staged = pick.payload

        def write() -> None:
            staged.path.write_bytes(encode_jpeg(render(bgr, staged.box, staged.side)))

        while len(self._writes) >= _QUEUED:
            self._writes.popleft().result()
        self._writes.append(self._writer.submit(write))

    def written(self) -> None:
        """Wait for every staged crop to be on disk (raising a write's error)."""
        while self._writes:
            self._writes.popleft().result()

    def close(self) -> None:
        self._writer.shutdown(wait=True, cancel_futures=True)

    def find_face(self, candidate: Candidate[Analysed]) -> Box | None:
        return self.faces.find(candidate.payload.gray)

    def find_faces(self, candidate: Candidate[Analysed]) -> _Found | None:
        maybe: list[Box] = []
        everyone = self.faces.find_all(candidate.payload.gray, min_share=OBSTACLE_SHARE, unconfirmed=maybe)
        smallest = MIN_FACE_SHARE * min(candidate.payload.gray.shape[:2])
        main = [face for face in everyone if face.box.h >= smallest]
        return _Found(main, everyone, maybe) if main else None

    def take(self, scene: ClosedScene) -> None:
        self.longest = max(self.longest, scene.seconds)
        dropped = self.dropped
        if scene.seconds < self.spec.min_scene_seconds:
            dropped.too_short += 1
            return
        self.candidates += 1
        lit = [c for c in scene.candidates if c.exposure >= MIN_EXPOSURE]
        usable = [c for c in lit if c.sharpness >= MIN_SHARPNESS]
        if self.spec.face_filter and not lit:
            # The whole frame too dark or too bright (a dim room, a window behind the person):
            # the face may be lit well all the same, and the face is what the dataset is for.
            usable = [c for c in scene.candidates if c.sharpness >= MIN_SHARPNESS]
        if not usable:
            if lit:
                dropped.blurry += 1
            else:
                dropped.dark += 1
            return
        if self.spec.face_filter:
            self._sight(scene, usable)
            return
        chosen = choose(usable, None)
        assert chosen is not None
        candidate = chosen[0]
        face = self.find_face(candidate)  # not a filter then, but still the best place to crop
        if face is not None:
            self.with_face += 1
        pick = _pick(scene.index, candidate, face, self.staging)
        assert pick is not None  # no obstacles: always a crop
        self._shortlist(pick, candidate)

    def _sight(self, scene: ClosedScene, usable: list[Candidate[Analysed]]) -> None:
        """Stage a crop of each face of the scene's best frame with faces, and remember whose."""
        chosen = choose(usable, self.find_faces)
        assert chosen is not None
        candidate, found = chosen
        analysed = candidate.payload
        # Each face's exposure: the better of the whole frame's and the face's own (face_exposure).
        levels = analysed.gray if analysed.full_range else expand_range(analysed.gray)
        exposed = [
            max(candidate.exposure, face_exposure(levels, (f.box.x, f.box.y, f.box.w, f.box.h)))
            for f in (found.main if found is not None else [])
        ]
        if found is None or max(exposed) < MIN_EXPOSURE:
            if candidate.exposure < MIN_EXPOSURE:
                self.dropped.dark += 1  # no face lit well enough in a badly exposed frame
            else:
                self.dropped.no_face += 1
            return
        self.with_face += 1
        self.scene_seconds[scene.index] = scene.seconds
        bgr = to_bgr(analysed.frame)
        shares = screen_shares([face.box for face in found.main], _picture(analysed))
        for number, (face, share) in enumerate(zip(found.main, shares, strict=True)):
            others = [other.box for other in found.everyone if other is not face]
            others += [box for box in found.maybe if not _of_face(box, face.box)]
            path = self.staging / f"scene-{scene.index:05d}-{number}.jpg"
            rated = quality(candidate.sharpness, exposed[number])
            pick = _pick(
                scene.index, candidate, face.box, self.staging, others=others, path=path, rated=rated
            )
            if pick is not None:
                self._stage(bgr, pick)
            self.sightings.append(
                _Sighting(
                    scene.index,
                    pick,
                    self.embedder.embed(analysed.gray, face),
                    encode_jpeg(face_thumbnail(bgr, face.box.scaled(analysed.scale)), quality=85),
                    share,
                )
            )

    def _shortlist(self, pick: Pick[_Staged], candidate: Candidate[Analysed] | None) -> None:
        """Offer a pick to the shortlist; writes its image when `candidate` is given (else it is
        staged already) and removes what the shortlist let go."""
        admission = self.shortlist.add(pick)
        left_out = len(admission.dropped) if admission.admitted else 1
        if admission.duplicate:
            self.dropped.duplicate += left_out
        else:  # admitted into a free place (nothing left out), or the list was full
            self.dropped.over_max_frames += left_out if admission.dropped or not admission.admitted else 0
        for gone in admission.dropped:
            gone.payload.path.unlink(missing_ok=True)
        if not admission.admitted:
            pick.payload.path.unlink(missing_ok=True)
        elif candidate is not None:
            image = render(to_bgr(candidate.payload.frame), pick.payload.box, pick.payload.side)
            pick.payload.path.write_bytes(encode_jpeg(image))

    def decide(self, reference: np.ndarray | None) -> Subject | None:
        """Tell the people apart, choose the subject (`reference`: the unit mean embedding of the
        reference photos), and shortlist the subject's staged crops in order. None when no face
        was found (or without faceFilter); raises `_Undecided` when the subject is unclear."""
        if not self.sightings:
            return None
        vectors = np.array([s.embedding for s in self.sightings])
        sightings = self.sightings
        people = identify(
            vectors, [s.scene for s in sightings], self.scene_seconds, [s.share for s in sightings]
        )
        subject = choose_subject(people, reference)
        if subject is None:
            raise _Undecided(people, reference is not None)
        members = subject.members
        subject_scenes = {self.sightings[i].scene for i in members}
        self.dropped.other_person += len(set(self.scene_seconds) - subject_scenes)
        for i in members:
            pick = self.sightings[i].pick
            if pick is None:
                self.dropped.crowded += 1
            else:
                self._shortlist(pick, None)
        kept = {id(pick) for pick in self.shortlist.chronological()}
        subject.kept = [i for i in members if id(self.sightings[i].pick) in kept]
        subject.purity = purity(vectors, subject.kept, members, reference)
        return subject

    def summary(self, scenes: int, kept: int, subject: Subject | None = None) -> DatasetSummary:
        return DatasetSummary(
            scenes=scenes,
            candidates=self.candidates,
            faces=self.with_face,
            kept=kept,
            min_frames=self.spec.least_frames,
            dropped=self.dropped.model_copy(),
            **(subject.report() if subject is not None else {}),
        )


def build_dataset(
    video: Path,
    spec: DatasetSpec,
    trigger_word: str,
    out_dir: Path,
    progress: SubProgress,
    *,
    max_seconds: float | None = None,
    reference_images: Sequence[tuple[Path, str]] = (),
    embedder: Embedder | None = None,
    least: int | None = None,
) -> LocalDataset:
    """Find `video`'s scenes and build the training dataset in `out_dir` (see the module doc).

    One image per scene: the scene's sharpest, best exposed frame among a few sampled per
    second (none mid-transition). Scenes shorter than `spec.min_scene_seconds` are skipped.
    With `spec.face_filter`, a scene counts only if one of its best frames shows the subject's
    face (the best such frame is taken, cropped around that face and away from other faces): a
    LoRA of a person learns nothing from shots without them, and a blend of faces from shots of
    others. The subject is the person `reference_images` show ((photo, its field for messages)),
    or the one with clearly the most screen time weighed by prominence (footage/subject.py). A
    shot seen again is kept once (`selection.same_shot`). When more than `spec.max_frames` scenes
    qualify, the best ones are kept, in chronological order.

    Raises `InvalidInput` for an unreadable video or one longer than `max_seconds` seconds, or a
    reference photo without a face; `SubjectAmbiguous` / `SubjectNotFound` when it cannot tell
    who the subject is (with a sheet of the people found); and `DatasetTooSmall` when fewer than
    `spec.least_frames` images qualify (`least`, where the caller gates on clips instead), with
    the counts and what to change.
    """
    video, out_dir = Path(video), Path(out_dir)
    info = _checked(video, max_seconds)
    staging = out_dir / _STAGING
    for folder in (out_dir / "images", out_dir / "captions", staging):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    scanner = Scanner(video, fps=info.fps, duration=info.duration, progress=progress, max_seconds=max_seconds)
    curator = _Curator(spec, staging, embedder)
    subject = _curated(video, spec, scanner, curator, reference_images, out_dir)
    summary = curator.summary(len(scanner.scenes), len(curator.shortlist), subject)
    if len(curator.shortlist) < (spec.least_frames if least is None else least):
        shutil.rmtree(staging, ignore_errors=True)
        raise DatasetTooSmall(too_small(video.name, spec, summary, curator.longest), summary, scanner.scenes)
    dataset = _scanned(out_dir, scanner, summary)
    dataset.subject_shots, dataset.subject_centres = _subject_shots(curator, subject)
    embeddings = _images_written(dataset, curator, template_caption(spec.caption_template, trigger_word))
    shutil.rmtree(staging, ignore_errors=True)
    write_archive(dataset)
    _write_sheets(
        dataset,
        embeddings,
        f"{trigger_word}: {len(dataset.images)} images, {len(dataset.scenes)} scenes of {video.name}",
        curator,
        subject,
    )
    progress(100.0)
    return dataset


def _scanned(out_dir: Path, scanner: Scanner, summary: DatasetSummary) -> LocalDataset:
    """The dataset in `out_dir` as the scan found the video, its images yet to be written."""
    return LocalDataset(
        root=out_dir,
        archive=out_dir / ARCHIVE,
        scenes=scanner.scenes,
        cuts=[(cut.time, cut.kind) for cut in scanner.cuts],
        frames_decoded=scanner.frames_decoded,
        duration_seconds=scanner.duration,
        summary=summary,
        guards=[cut.guard for cut in scanner.cuts if cut.guard is not None],
    )


def _write_sheets(
    dataset: LocalDataset,
    embeddings: dict[str, np.ndarray],
    title: str,
    curator: _Curator,
    subject: Subject | None,
) -> None:
    """Beside the archive: the images' face embeddings (where any were found) and the contact
    sheet, with the people found where the subject was told apart."""
    if embeddings:
        dataset.faces = dataset.root / FACES_FILE
        dataset.faces.write_text(json.dumps(faces_document(embeddings)), encoding="utf-8")
    dataset.contact_sheet = write_contact_sheet(
        [(image.path, image.time, image.face) for image in dataset.images],
        dataset.root / CONTACT_SHEET,
        title=title,
        people=_faces(curator, subject.people, subject) if subject is not None else (),
    )


def _checked(video: Path, max_seconds: float | None) -> MediaInfo:
    """The video's probe; InvalidInput when it is longer than `max_seconds`."""
    info = probe(video, require_video=True)
    if max_seconds is not None and info.duration > max_seconds:
        raise InvalidInput(
            f"{video.name} is {info.duration:.0f} s long, over the limit of {max_seconds:g} s "
            "(CONTENTGEN_MAX_VIDEO_SECONDS); trim the video or split it into parts"
        )
    return info


def _curated(
    video: Path,
    spec: DatasetSpec,
    scanner: Scanner,
    curator: _Curator,
    reference_images: Sequence[tuple[Path, str]],
    out_dir: Path,
) -> Subject | None:
    """The video scanned into `curator`'s shortlist and the subject decided (None without the face
    filter); on any failure the staged frames go, and an unclear subject says who was found."""
    staging = out_dir / _STAGING
    # OpenCV's own worker threads would only fight the decoder's for the cores (and spin while
    # they wait); every OpenCV call here is small. Restored afterwards: the setting is global.
    cv2_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    warming = threading.Thread(target=curator.warm, name="dataset-warm", daemon=True)
    warming.start()
    try:
        reference = None
        if spec.face_filter and reference_images:
            reference = reference_embedding(reference_images, curator.faces, curator.embedder)
        _scan(scanner, curator)
        curator.written()
        return curator.decide(reference)
    except _Undecided as undecided:
        shutil.rmtree(staging, ignore_errors=True)
        raise _unclear(video.name, undecided, curator, scanner, out_dir / PEOPLE_SHEET) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        curator.close()
        warming.join()
        cv2.setNumThreads(cv2_threads)


def _images_written(dataset: LocalDataset, curator: _Curator, caption: str) -> dict[str, np.ndarray]:
    """The shortlist's frames moved into the dataset's images, in time order, each with its caption
    file; the face embeddings of those that had one, by image name."""
    images_dir, captions_dir = dataset.root / "images", dataset.root / "captions"
    embedding_of = {id(s.pick): s.embedding for s in curator.sightings if s.pick is not None}
    embeddings: dict[str, np.ndarray] = {}
    for number, pick in enumerate(curator.shortlist.chronological(), start=1):
        path = pick.payload.path.rename(images_dir / f"{number:04d}.jpg")
        if id(pick) in embedding_of:
            embeddings[path.name] = embedding_of[id(pick)]
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
                box=(pick.payload.box.x, pick.payload.box.y, pick.payload.box.w, pick.payload.box.h),
            )
        )
    return embeddings


def reference_embedding(
    photos: Sequence[tuple[Path, str]], finder: FaceFinder, embedder: Embedder
) -> np.ndarray:
    """The unit mean embedding of the largest face in each reference photo ((file, its field,
    for messages)). InvalidInput for a photo that cannot be read or shows no face, and for
    photos that do not show one person."""
    vectors: list[np.ndarray] = []
    for path, name in photos:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # EXIF orientation applied
        if image is None:
            raise InvalidInput(f"{name} is not an image that can be read; give a JPEG, PNG or WebP photo")
        gray = reduce(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), CANDIDATE_LONG_SIDE)
        faces = finder.find_all(gray, min_share=OBSTACLE_SHARE)
        if not faces:
            raise InvalidInput(
                f"{name}: no face found in the photo; give a photo in which the person's face is "
                f"clearly visible, at least {OBSTACLE_SHARE:.0%} of the picture's shorter side"
            )
        vectors.append(embedder.embed(gray, faces[0]))
    for i, a in enumerate(vectors):
        for j in range(i + 1, len(vectors)):
            alike = similarity(a, vectors[j])
            if alike < SAME_PERSON:
                raise InvalidInput(
                    f"{photos[i][1]} and {photos[j][1]} do not show the same person (face similarity "
                    f"{alike:.2f}, {SAME_PERSON} or more for one person); give photos of the one "
                    "person to train on"
                )
    return centroid(np.array(vectors))


def _faces(
    curator: _Curator, people: list[PersonFound], subject: Subject | None
) -> list[tuple[bytes, str, bool]]:
    """One face per person for contact sheets, most typical first: (JPEG, label, is the subject)."""
    vectors = [s.embedding for s in curator.sightings]
    chosen = {person.number for person in subject.chosen} if subject is not None else set()
    faces = []
    for person in people:
        best = max(person.members, key=lambda i: similarity(vectors[i], person.centre))
        label = f"#{person.number} {person.prominent:.0f} s"
        if person.number in chosen:
            label += " subject"
        elif person.similarity is not None:
            label += f" ~{person.similarity:.2f}"
        faces.append((curator.sightings[best].face_jpeg, label, person.number in chosen))
    return faces


def _unclear(
    name: str, undecided: _Undecided, curator: _Curator, scanner: Scanner, sheet: Path
) -> SubjectAmbiguous:
    """SubjectAmbiguous or SubjectNotFound, with the people found and their faces on a sheet."""
    people = undecided.people
    summary = curator.summary(len(scanner.scenes), 0).model_copy(update=people_report(people))
    write_contact_sheet(
        [], sheet, title=f"{counted(len(people), 'person')} in {name}", people=_faces(curator, people, None)
    )
    listed = ", ".join(
        f"#{p.number} {p.prominent:.1f} s ({p.seconds:.1f} s on screen in {counted(len(p.scenes), 'scene')})"
        + (f" (similarity {p.similarity:.2f})" if p.similarity is not None else "")
        for p in people[:MAX_LISTED]
    )
    more = f" and {len(people) - MAX_LISTED} more" if len(people) > MAX_LISTED else ""
    if undecided.with_reference:
        message = (
            f"no one in {name} looks like dataset.subject.referenceImages: "
            f"{counted(len(people), 'person')} found ({listed}{more}; a similarity of {SAME_PERSON} or "
            f"more is one person); their faces are numbered in the contact sheet {sheet}. To fix: give "
            "clear photos of the person as they look in this video, or check that the video shows them"
        )
        return SubjectNotFound(message, summary, scanner.scenes, sheet)
    message = (
        f"{name} shows {counted(len(people), 'person')} and none has clearly the most screen time "
        f"({listed}{more}: "
        "screen time weighed by prominence, each scene whole for a face alone on screen and shared by "
        "size among the faces of a group; the subject needs "
        f"{SUBJECT_DOMINANCE:g}× the next person's); their "
        "faces are numbered in the contact sheet {sheet}. To choose: set dataset.subject.referenceImages "
        "to one to five photos of the person to train on (URLs, like source.url), or use a video in "
        "which they have the most screen time"
    )
    return SubjectAmbiguous(message, summary, scanner.scenes, sheet)


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
    """Scan on this thread (its decoding on one more: scan.Scanner); judge closed scenes (face
    search, crop, JPEG) on a second one.

    OpenCV and PyAV release the GIL, so the judging fills the cores the decoder leaves idle.
    At most `_QUEUED` closed scenes (a few frames each) wait for it.
    """
    # On an error the scan stops first (its decoder thread ends), then the judging.
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataset") as executor,
        closing(iter(scanner)) as scenes,
    ):
        queued: deque[Future[None]] = deque()
        for scene in scenes:
            queued.append(executor.submit(curator.take, scene))
            while queued and (len(queued) > _QUEUED or queued[0].done()):
                queued.popleft().result()
        for future in queued:
            future.result()


def _of_face(maybe: Box, face: Box) -> bool:
    """Whether a maybe face (a weak first look) is another look at `face`, not someone else's: it
    overlaps it by more than 0.3 of the smaller box, or its centre lies within the face's box
    grown by a quarter of its size each side. In a dim frame the first look may score a weak
    find on the chin or the collar of the face itself (at ×0.68, a box a quarter inside the
    face's): kept out of the crop, it left no crop at all."""
    if overlap(maybe, face) > 0.3:
        return True
    cx, cy = maybe.center
    return abs(cx - face.center[0]) <= 0.75 * face.w and abs(cy - face.center[1]) <= 0.75 * face.h


def _picture(analysed: Analysed) -> Box:
    """The picture inside any black bars, in the analysis luma's pixels."""
    if analysed.area[2]:
        return Box(*analysed.area)
    height, width = analysed.gray.shape[:2]
    return Box(0, 0, width, height)


def _pick(
    scene: int,
    candidate: Candidate[Analysed],
    face: Box | None,
    staging: Path,
    *,
    others: Sequence[Box] = (),
    path: Path | None = None,
    rated: float | None = None,
) -> Pick[_Staged] | None:
    """The scene's contender: where its crop goes, its size, and what identifies its shot. With
    `others` (other faces in the frame, in `gray`'s pixels like `face`), None when no crop
    around the face leaves them out. `rated`: its quality, when not the candidate's (judged with
    the face's exposure)."""
    analysed = candidate.payload
    width, height = analysed.size
    gray_h, gray_w = analysed.gray.shape[:2]
    area = None  # the picture inside black bars, in source pixels
    if analysed.area[2]:
        bars = Box(*analysed.area).scaled(analysed.scale)
        area = Box(bars.x, bars.y, min(bars.w, width - bars.x), min(bars.h, height - bars.y))
    face_box, light = None, None
    if face is not None:
        obstacles = [other.scaled(analysed.scale) for other in others]
        found = subject_crop(width, height, face.scaled(analysed.scale), obstacles, area=area)
        if found is None:
            return None
        box = found
        face_box = (face.x / gray_w, face.y / gray_h, face.w / gray_w, face.h / gray_h)
        light = face_light(analysed.gray, analysed.full_range, face)
    else:
        box = detail_crop(width, height, analysed.gray, area=area)
    return Pick(
        scene=scene,
        time=candidate.time,
        quality=candidate.quality if rated is None else rated,
        phash=phash(analysed.gray),
        payload=_Staged(path or staging / f"scene-{scene:05d}.jpg", box, output_side(box.w)),
        face=face is not None,
        sharpness=candidate.sharpness,
        face_box=face_box,
        thumb=thumb(analysed.gray) if face_box is not None else None,
        light=light,
    )


def face_light(gray: np.ndarray, full_range: bool, face: Box) -> float | None:
    """The face's mean luma at true levels (0-255): what tells one framing in two lights apart
    (selection.one_light). None for a box outside the picture."""
    height, width = gray.shape[:2]
    x0, y0 = max(int(face.x), 0), max(int(face.y), 0)
    x1, y1 = min(int(face.x + face.w), width), min(int(face.y + face.h), height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    region = np.ascontiguousarray(gray[y0:y1, x0:x1])
    return float((region if full_range else expand_range(region)).mean())


def too_small(name: str, spec: DatasetSpec, summary: DatasetSummary, longest: float) -> str:
    """DatasetTooSmall's message: what was found, what was dropped and why, and what to change."""
    d = summary.dropped
    reasons = [
        (d.too_short, f"shorter than minSceneSeconds {spec.min_scene_seconds:g} s"),
        (d.no_face, "no face found"),
        (d.other_person, "only another person's face"),
        (d.crowded, "other faces too close to crop the subject alone"),
        (d.blurry, "blurred"),
        (d.dark, "too dark or too bright"),
        (d.duplicate, "the same shot as a kept image"),
    ]
    dropped = ", ".join(f"{count} {why}" for count, why in reasons if count) or "none"
    faces = f", {summary.faces} showed a face" if spec.face_filter else ""
    fixes = []
    if spec.face_filter and d.no_face:
        fixes.append(
            f"use a video where the face's height is at least {MIN_FACE_SHARE:.0%} of the picture's shorter "
            "side in more shots, or set dataset.faceFilter: false for a subject without a face"
        )
    if d.too_short and longest < 2 * spec.min_scene_seconds:
        fixes.append(f"lower dataset.minSceneSeconds (the longest scene lasts {longest:.1f} s)")
    fixes.append("use a longer video with more distinct shots")
    if summary.kept >= 4:
        fixes.append(f"or lower dataset.minFrames to {summary.kept}")
    return (
        f"{name} gives {counted(summary.kept, 'usable image')}, fewer than dataset.minFrames "
        f"{spec.least_frames}: {counted(summary.scenes, 'scene')} found, {summary.candidates} long "
        f"enough{faces}; dropped: {dropped}. "
        f"To fix: {'; '.join(fixes)}"
    )


def _subject_shots(curator: _Curator, subject: Subject | None) -> tuple[list[int], list[np.ndarray]]:
    """The shots a video LoRA's clips may come from and the subject's faces to check them by: the
    subject's shots (faceFilter), else every shot that gave a still."""
    if subject is None:
        return sorted({pick.scene for pick in curator.shortlist.chronological()}), []
    shots = sorted({curator.sightings[i].scene for i in subject.members})
    return shots, [person.centre for person in subject.chosen]


def write_archive(dataset: LocalDataset) -> Path:
    """Write dataset.zip: images/NNNN.jpg and .txt side by side, plus captions/NNNN.txt; a video
    LoRA's flat (NNNN.jpg, clip-NNNN.mp4, each .txt beside it)."""
    if dataset.flat:
        return _write_flat(dataset)
    with zipfile.ZipFile(dataset.archive, "w") as archive:
        for image in dataset.images:
            caption = image.caption_path.read_bytes()
            _add(archive, f"images/{image.path.name}", image.path.read_bytes(), zipfile.ZIP_STORED)
            _add(archive, f"images/{image.caption_path.name}", caption, zipfile.ZIP_DEFLATED)
            _add(archive, f"captions/{image.caption_path.name}", caption, zipfile.ZIP_DEFLATED)
    return dataset.archive


def _write_flat(dataset: LocalDataset) -> Path:
    with zipfile.ZipFile(dataset.archive, "w") as archive:
        for image in dataset.images if dataset.stills else []:
            _add(archive, image.path.name, image.path.read_bytes(), zipfile.ZIP_STORED)
            _add(archive, image.caption_path.name, image.caption_path.read_bytes(), zipfile.ZIP_DEFLATED)
        for clip in dataset.clips:
            _add(archive, clip.path.name, clip.path.read_bytes(), zipfile.ZIP_STORED)
            _add(archive, clip.caption_path.name, clip.caption_path.read_bytes(), zipfile.ZIP_DEFLATED)
    return dataset.archive


def _add(archive: zipfile.ZipFile, name: str, data: bytes, compression: int) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = compression
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)
