"""A video LoRA's clips: cut from the shots of the subject that the stills stage found (dataset.py),
checked frame by frame, cropped, encoded and captioned (the decisions are footage/clips.py's).

For each shot of the subject, in order: the windows of a clip that fit between its cuts and
transitions (`clips.windows`), each read from the source at the model's rate; a window is kept
when the subject's face is found in every one of its frames (BlazeFace, as the stills stage finds
faces; the subject told by SFace's embedding, at least identity.SAME_PERSON like the subject's
faces of the stills stage, every eighth frame and the last, and followed between them), and one
crop of a bucket's shape holds it in every frame and leaves other faces out (`clips.clip_crop`).
At most two clips a shot and `maxClips` in all, one from every shot first. Every shot without a
clip is counted by why (`DroppedClips`).

On disk, beside the stills (dataset.py)::

    clips/clip-0001.mp4   H.264 (yuv420p), the bucket's size, the model's frames at its rate
    clips/clip-0001.txt   its caption (dataset.clips.captionTemplate)
    clips/clip-0001.jpg   its middle frame: what a vision model describes (captioning auto) and
                          the contact sheet shows; not in the archive (a trainer would take it
                          for a still)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from contentgen import h264
from contentgen.api import DatasetSpec
from contentgen.api.base_models import FrameRule
from contentgen.api.lora import ClipsSummary, DroppedClips
from contentgen.api.words import counted
from contentgen.pipeline.footage.clips import (
    Window,
    bucket,
    chosen,
    clear_spans,
    clip_crop,
    overlaps,
    windows,
)
from contentgen.pipeline.footage.crop import encode_jpeg
from contentgen.pipeline.footage.decode import reduce, to_bgr
from contentgen.pipeline.footage.faces import Box, FaceFinder, overlap
from contentgen.pipeline.footage.identity import SAME_PERSON, Embedder, similarity
from contentgen.pipeline.footage.scoring import CANDIDATE_LONG_SIDE
from contentgen.pipeline.progress import SubProgress

# Faces down to this share of the frame's shorter side are looked for in a clip's frames (as
# dataset.OBSTACLE_SHARE: smaller ones are too small to find reliably).
FACE_SHARE = 0.05
CRF = 17  # x264's quality: visually lossless, as the trainer's source
PRESET = "veryfast"  # x264's speed: at this quality the file is larger, not worse
# The subject's face is told by its embedding on every this many frames of a clip (and its last);
# between them it is followed: the face overlapping its box of the frame before by more than FOLLOW.
IDENTIFY_EVERY = 8
FOLLOW = 0.3


@dataclass
class LocalClip:
    path: Path  # the MP4
    caption_path: Path
    caption: str
    middle: Path  # its middle frame, JPEG
    shot: int
    start: float  # seconds into the source
    frames: int
    fps: int
    width: int
    height: int
    box: tuple[int, int, int, int]  # the crop in the upright source frame


@dataclass
class CutClips:
    clips: list[LocalClip] = field(default_factory=list)
    summary: ClipsSummary | None = None


@dataclass
class _Checked:
    window: Window
    box: Box | None  # None: crowded
    missing: bool  # the subject left a frame


def cut_clips(
    video: Path,
    shots: Sequence[int],
    scenes: Sequence[tuple[float, float]],
    guards: Sequence[tuple[float, float]],
    centres: Sequence[np.ndarray],
    spec: DatasetSpec,
    rule: FrameRule,
    trigger_word: str,
    out_dir: Path,
    progress: SubProgress,
    *,
    finder: FaceFinder | None = None,
    embedder: Embedder | None = None,
) -> CutClips:
    """The clips of `shots` (indices into `scenes`, (start, end) seconds; `guards`: transitions'
    spans) that show the subject (`centres`: their faces' mean embeddings; empty without
    faceFilter: no face is checked, the whole picture is cropped), in `out_dir`/clips."""
    frames = rule.frames(spec.clips.frames)
    folder = out_dir / "clips"
    folder.mkdir(parents=True, exist_ok=True)
    finder = finder or FaceFinder()
    embedder = embedder or Embedder()
    dropped = DroppedClips()
    kept_per_shot: list[list[_Checked]] = []
    with av.open(str(video)) as container:
        reader = _Reader(container)
        for done, shot in enumerate(shots):
            progress(80.0 * done / max(1, len(shots)))
            spans = clear_spans(scenes[shot], guards)
            candidates = windows(shot, spans, frames, rule.fps)
            if not candidates:
                dropped.too_short += 1
                continue
            kept, missing, crowded = _kept(reader, candidates, centres, finder, embedder)
            if kept:
                kept_per_shot.append(kept)
            elif missing >= crowded:
                dropped.subject_missing += 1
            else:
                dropped.crowded += 1
        found = [[k.window for k in ks] for ks in kept_per_shot]
        picked, dropped.over_max_clips = chosen(found, spec.clips.max_clips)
        by_window = {k.window: k.box for ks in kept_per_shot for k in ks}
        caption = spec.clips.caption_template.replace("{trigger}", trigger_word)
        clips = []
        for number, window in enumerate(picked, start=1):
            progress(80.0 + 20.0 * number / max(1, len(picked)))
            box = by_window[window]
            assert box is not None
            clips.append(_written(reader.frames(window.times()), window, box, folder, number, caption))
    summary = ClipsSummary(
        shots=len(shots), kept=len(clips), frames=frames, fps=rule.fps, dropped=dropped, reason=""
    )
    if not clips:
        summary.reason = no_clips_reason(video.name, summary, scenes, shots, guards)
    return CutClips(clips, summary)


def _kept(
    reader: _Reader,
    candidates: Sequence[Window],
    centres: Sequence[np.ndarray],
    finder: FaceFinder,
    embedder: Embedder,
) -> tuple[list[_Checked], int, int]:
    """A shot's windows that show the subject alone, two at most and none overlapping another,
    with how many were checked and found without the subject, and with others beside it."""
    kept: list[_Checked] = []
    missing = crowded = 0
    for window in candidates:
        if len(kept) >= 2 or any(overlaps(window, k.window) for k in kept):
            continue
        checked = _check(reader.frames(window.times()), window, centres, finder, embedder)
        if checked.missing:
            missing += 1
        elif checked.box is None:
            crowded += 1
        else:
            kept.append(checked)
    return kept, missing, crowded


def no_clips_reason(
    name: str,
    summary: ClipsSummary,
    scenes: Sequence[tuple[float, float]],
    shots: Sequence[int],
    guards: Sequence[tuple[float, float]],
) -> str:
    """Why `name` gives no clip, in one line, with what to change."""
    seconds = summary.frames / max(1, summary.fps)
    if not shots:
        return f"{name} shows the subject in no shot, so no clip can be cut: use a video of the person"
    d = summary.dropped
    longest = max((b - a for s in shots for a, b in clear_spans(scenes[s], guards)), default=0.0)
    said = []
    if d.too_short:
        said.append(f"{d.too_short} too short (the longest clear stretch {longest:.1f} s)")
    if d.subject_missing:
        said.append(f"{d.subject_missing} without the subject's face in every frame")
    if d.crowded:
        said.append(f"{d.crowded} too crowded to crop the subject alone")
    fixes = []
    if d.too_short:
        fixes.append("lower dataset.clips.frames (17 frames are about a second)")
    fixes.append("use footage with longer shots of the person alone, facing the camera")
    return (
        f"{name} gives no clip of {summary.frames} frames at {summary.fps} fps ({seconds:.1f} s) from "
        f"{counted(len(shots), 'shot')} of the subject: {', '.join(said)}. To fix: {'; or '.join(fixes)}"
    )


class _Reader:
    """The source's frames at given times: the decoded frame nearest each (upright BGR)."""

    def __init__(self, container: av.container.InputContainer) -> None:
        self.container = container
        self.stream = container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.origin: float | None = None

    def frames(self, times: Sequence[float]) -> list[np.ndarray]:
        first, last = times[0], times[-1]
        stream = self.stream
        base = stream.time_base or Fraction(1, 90000)
        if self.origin is None:
            start = stream.start_time
            self.origin = float(start * base) if start is not None else 0.0
        offset = max(0.0, first - 1.0) + self.origin
        self.container.seek(int(offset / base), stream=stream, backward=True, any_frame=False)
        found: list[tuple[float, av.VideoFrame]] = []
        for frame in self.container.decode(stream):
            if frame.time is None:
                continue
            at = frame.time - self.origin
            if at >= first - 0.5:
                found.append((at, frame))
            if at > last + 0.1:
                break
        if not found:
            raise ValueError(f"no frames decoded between {first:.2f} s and {last:.2f} s")
        picked = [min(found, key=lambda pair: abs(pair[0] - t))[1] for t in times]
        converted: dict[int, np.ndarray] = {}
        return [converted.setdefault(id(f), to_bgr(f)) for f in picked]


def _check(
    frames: list[np.ndarray],
    window: Window,
    centres: Sequence[np.ndarray],
    finder: FaceFinder,
    embedder: Embedder,
) -> _Checked:
    """Whether the subject is in every frame, and the clip's crop (source pixels). Faces are found in
    every frame; the subject's is told by its embedding on every IDENTIFY_EVERY-th frame and the
    last, and between them by following it (the face overlapping the last frame's subject most:
    one shot, no cut, a sixteenth of a second apart)."""
    height, width = frames[0].shape[:2]
    if not centres:  # no face to check: the whole picture, in the nearest bucket's shape
        return _Checked(window, clip_crop(width, height, [Box(0, 0, width, height)], []), False)
    subject: list[Box] = []
    others: list[Box] = []
    previous: Box | None = None
    for index, bgr in enumerate(frames):
        gray = reduce(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), CANDIDATE_LONG_SIDE)
        scale = width / gray.shape[1]
        faces = finder.find_all(gray, min_share=FACE_SHARE)
        followed = [f for f in faces if previous is not None and overlap(f.box, previous) > FOLLOW]
        if index % IDENTIFY_EVERY == 0 or index == len(frames) - 1 or not followed:
            alike = [max(similarity(embedder.embed(gray, f), c) for c in centres) for f in faces]
            chosen = [f for f, a in zip(faces, alike, strict=True) if a >= SAME_PERSON]
            if not chosen:
                return _Checked(window, None, True)
            face = max(chosen, key=lambda f: alike[faces.index(f)])
        else:
            face = max(followed, key=lambda f: overlap(f.box, previous) if previous is not None else 0.0)
        previous = face.box
        subject.append(face.box.scaled(scale))
        others += [f.box.scaled(scale) for f in faces if f is not face]
    return _Checked(window, clip_crop(width, height, subject, others), False)


def _written(
    frames: list[np.ndarray], window: Window, box: Box, folder: Path, number: int, caption: str
) -> LocalClip:
    """The clip cropped to `box`, resized to its bucket and encoded; its caption and middle frame."""
    width, height = bucket(box.w / box.h)
    size, area = (width, height), cv2.INTER_AREA
    crops = [
        cv2.resize(f[box.y : box.y + box.h, box.x : box.x + box.w], size, interpolation=area) for f in frames
    ]
    stem = f"clip-{number:04d}"
    path = folder / f"{stem}.mp4"
    encode(crops, window.fps, path)
    middle = folder / f"{stem}.jpg"
    middle.write_bytes(encode_jpeg(crops[len(crops) // 2]))
    caption_path = folder / f"{stem}.txt"
    caption_path.write_text(caption, encoding="utf-8")
    return LocalClip(
        path=path,
        caption_path=caption_path,
        caption=caption,
        middle=middle,
        shot=window.shot,
        start=window.start,
        frames=len(crops),
        fps=window.fps,
        width=width,
        height=height,
        box=(box.x, box.y, box.w, box.h),
    )


def encode(frames: Sequence[np.ndarray], fps: int, path: Path) -> None:
    """BGR frames as H.264 (yuv420p) in MP4 at `fps`, the same bytes every time (h264.py)."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = h264.add_stream(container, Fraction(fps, 1), width, height, CRF, PRESET)
        for index, bgr in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(bgr, format="bgr24")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
