"""The faces of pictures as the scorer wants them: unit SFace embeddings, largest face first,
found and embedded exactly as the dataset stage found and embedded the subject's (on luma, by
BlazeFace and YuNet's confirmed faces, aligned on BlazeFace's keypoints), so that both sides of
a comparison were measured alike. And the subject's embeddings, kept with the dataset version
(`faces.json`), read back.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from contentgen.errors import InvalidInput
from contentgen.pipeline.video.faces import Face, FaceFinder
from contentgen.pipeline.video.identity import MODEL_FILE, MODEL_SHA256, Embedder

FACES_FILE = "faces.json"
# Smaller faces than this share of a picture's short side are not scored: a face in the
# background of a generated picture is too small to recognise (or to be the subject).
MIN_SHARE = 0.08


class FaceReader:
    """Embeds every face of a picture; one network of each kind, loaded on first use."""

    def __init__(self, finder: FaceFinder | None = None, embedder: Embedder | None = None) -> None:
        self.finder = finder or FaceFinder(min_share=MIN_SHARE)
        self.embedder = embedder or Embedder()

    def found(self, image: np.ndarray) -> list[tuple[Face, np.ndarray]]:
        """`image`'s faces (BGR or luma), largest first, each with its unit embedding."""
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return [(face, self.embedder.embed(gray, face)) for face in self.finder.find_all(gray)]

    def faces(self, image: np.ndarray) -> list[np.ndarray]:
        """The unit embeddings of `image`'s faces (BGR or luma), largest first."""
        return [vector for _, vector in self.found(image)]

    def faces_in(self, path: Path) -> list[np.ndarray]:
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise InvalidInput(f"{path.name} is not an image OpenCV can read")
        return self.faces(image)


def faces_document(embeddings: dict[str, np.ndarray]) -> dict[str, object]:
    """What `faces.json` holds: the model that made the embeddings and one per image name."""
    return {
        "model": Path(MODEL_FILE).name,
        "sha256": MODEL_SHA256,
        "images": {name: [round(float(x), 6) for x in vector] for name, vector in embeddings.items()},
    }


def read_faces(document: dict[str, object]) -> tuple[list[str], np.ndarray]:
    """(image names, embeddings as rows) from a `faces.json` document; ValueError when another
    model made them (their similarities would not be comparable)."""
    if document.get("sha256") != MODEL_SHA256:
        raise ValueError(
            f"{FACES_FILE} was made by another face-embedding model ({document.get('model')}); "
            "re-run the dataset stage to embed its faces again"
        )
    images = document.get("images")
    if not isinstance(images, dict):
        raise ValueError(f"{FACES_FILE} has no images")
    names = sorted(images)
    rows = np.array([images[name] for name in names], np.float64).reshape(len(names), -1)
    return names, rows


def load_faces(path: Path) -> tuple[list[str], np.ndarray]:
    return read_faces(json.loads(path.read_text(encoding="utf-8")))
