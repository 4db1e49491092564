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
from contentgen.pipeline.footage.faces import Face, FaceFinder
from contentgen.pipeline.footage.identity import MODEL_FILE, MODEL_SHA256, Embedder
from contentgen.store.keys import FACES_FILE as FACES_FILE  # the key layout names it

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


def faces_from_archive(archive: Path, reader: FaceReader | None = None) -> dict[str, np.ndarray]:
    """The subject's face embedding in each image of a dataset archive (`images/NNNN.jpg`), for a
    version trained before faces.json was kept: every image's faces (of MIN_FACE_SHARE or more,
    as the dataset stage trains on) grouped into people, and the subject chosen as the dataset
    stage chooses without reference photos: clearly the most prominent screen time, each image
    counting as one scene (footage/subject.py). InvalidInput when no one clearly is the subject."""
    import zipfile

    from contentgen.pipeline.footage.faces import MIN_FACE_SHARE, Box
    from contentgen.pipeline.footage.subject import choose_subject, identify, screen_shares

    reader = reader or FaceReader(FaceFinder(min_share=MIN_FACE_SHARE))
    names: list[str] = []
    rows: list[np.ndarray] = []
    scenes: list[int] = []
    shares: list[float] = []
    try:
        with zipfile.ZipFile(archive) as zipped:
            pictures = sorted(
                n for n in zipped.namelist() if n.startswith("images/") and n.lower().endswith(".jpg")
            )
            for scene, member in enumerate(pictures):
                data = np.frombuffer(zipped.read(member), np.uint8)
                image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
                if image is None:
                    continue
                found = reader.found(image)
                picture = Box(0, 0, image.shape[1], image.shape[0])
                for (_, vector), share in zip(
                    found, screen_shares([f.box for f, _ in found], picture), strict=True
                ):
                    names.append(Path(member).name)
                    rows.append(vector)
                    scenes.append(scene)
                    shares.append(share)
    except zipfile.BadZipFile:
        raise InvalidInput(f"{archive.name} is not a zip archive") from None
    if not rows:
        raise InvalidInput(
            f"no face in the images of {archive.name}: nothing to compare generated faces with"
        )
    vectors = np.array(rows, np.float64)
    people = identify(vectors, scenes, dict.fromkeys(scenes, 1.0), shares)
    subject = choose_subject(people, None)
    if subject is None:
        raise InvalidInput(
            f"the images of {archive.name} show several people and none clearly most: the subject "
            "cannot be told (train a new version with dataset.subject.referenceImages)"
        )
    chosen: dict[str, np.ndarray] = {}
    for index in subject.members:  # the largest of the subject's faces in an image counts
        chosen.setdefault(names[index], vectors[index])
    return chosen
