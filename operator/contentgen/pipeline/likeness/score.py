"""Does a LoRA's output look like its subject? The score, from face embeddings alone (pure).

Inputs are unit SFace embeddings (footage/identity.py): the subject's, one per dataset image
(persisted with the dataset version, `faces.json`), and each generated image's faces, largest
first. Similarity is cosine similarity to the subject's centroid (the unit mean of the dataset's
faces), the same measure the dataset stage told people apart with.

The numbers are SFace's (OpenCV Zoo's 2021dec model, int8, on luma): they are not the ArcFace or
CurricularFace numbers of the papers, and a threshold from another model means nothing here. The
threshold and the scale come from bench/likeness.py, on real photographs of the same and of
different people (docs/likeness.md has the calibration and its held-out ROC AUC).

Nothing is made up: an image without a face has no similarity, and a version whose images show
no face at all has no median, only its no-face rate.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from contentgen.api.lora import ONE_PERSON_SIMILARITY, STRANGERS_SIMILARITY

from .prompts import Kind

# Calibrated by bench/likeness.py on its development set (bench/likeness-results.json,
# docs/likeness.md), and measured on its held-out set: at most 1 % of two different people's
# faces are this alike (OpenCV publishes 0.363 for SFace, on its own aligned colour faces).
THRESHOLD = 0.313
# The calibrated reference points: DIFFERENT, the median of two different people; SAME, the
# median of two pictures of one person. `percent` falls back on them where the run has no
# baseline (pictures without the LoRA) or the dataset no leave-one-out bound.
DIFFERENT = STRANGERS_SIMILARITY
SAME = ONE_PERSON_SIMILARITY
# A generated face this alike to one training image is a copy of it: halfway between what two
# different photographs of one person reach (their 99th percentile) and what views of one
# photograph typically reach (their median); two moments of one video session often reach it.
COPY = 0.789
# Generated faces this alike to each other (their median) are near-copies of one face: more alike
# than 99 % of pairs of frames of one video session of one person (bench/likeness.py's development
# set), where a LoRA's pictures from different prompts should vary at least as much as those.
SAMENESS = 0.886
# A LoRA must raise the median similarity by this much over the same prompts without it (a
# choice, a fifth of the way from strangers to one person, not a measurement).
MIN_GAIN = 0.10
# More than this share of images failing a rule makes the version poor on that rule.
MAJORITY = 0.5

Verdict = Literal["good", "poor", "no-faces", "unmeasured"]


@dataclass(frozen=True)
class Generated:
    """One generated image: its name (for the report), the prompt's kind (a portrait of the
    subject, or the subject with a second person: `pair`), and its faces' unit embeddings, largest
    first (none: no face was found)."""

    name: str
    kind: Kind
    faces: Sequence[np.ndarray]
    # a clip's sampled frames' faces, first to last (providers/clip_frames.py): `faces` is then
    # the faces of its median frame (`median_frame`), and each frame is scored too
    frames: Sequence[Sequence[np.ndarray]] = ()


@dataclass(frozen=True)
class ImageScore:
    name: str
    kind: Kind
    faces: int
    similarity: float | None = None  # the subject's face's similarity to the subject
    other: float | None = None  # pairs: the most subject-like other face's similarity
    nearest_training: str = ""  # the training image most alike to the subject's face
    nearest_similarity: float | None = None
    frames: list[float | None] = field(default_factory=list)  # a clip's frames' similarities, in order


@dataclass
class Likeness:
    """A version's likeness report (status.likeness); every number is None where nothing was
    measured, and `reasons` says why the verdict is what it is."""

    verdict: Verdict
    reasons: list[str]
    images: int
    faces: int  # images with a face
    no_face_rate: float
    median: float | None = None
    percent: float | None = None  # `median` from the baseline (0) to the subject's own bound (100), uncapped
    above_threshold: float | None = None  # share of images with a face at or over THRESHOLD
    baseline_median: float | None = None  # the same prompts and seeds without the LoRA
    gain: float | None = None  # median - baseline_median
    bleed: float | None = None  # pairs: median similarity of the other person to the subject
    bleed_share: float | None = None  # pairs: share whose other person is over THRESHOLD
    copy_similarity: float | None = None  # highest similarity of a generated face to one training image
    copy_of: str = ""  # that training image
    copies: int = 0  # generated faces at or over COPY to one training image
    copied_images: int = 0  # how many different training images those copies are of
    sameness: float | None = None  # the faces' median similarity to each other (_sameness)
    baseline_sameness: float | None = None  # the same without the LoRA
    from_baseline: float | None = None  # each face's median similarity to the base model's at its seed
    upper_bound: float | None = None  # the dataset's own leave-one-out median
    threshold: float = THRESHOLD
    clip_frames: int = 0  # a video LoRA's: each picture the frames sampled across one clip (0: pictures)
    scored: list[ImageScore] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    out: np.ndarray = (np.asarray(vector, np.float64) / norm) if norm > 0 else np.asarray(vector, np.float64)
    return out


def centroid(subject: np.ndarray) -> np.ndarray:
    """The unit mean of the subject's unit embeddings (rows)."""
    return unit(np.asarray(subject, np.float64).mean(axis=0))


def scale_of(baseline_median: float | None, upper_bound: float | None) -> tuple[float, float]:
    """The two ends of a version's scale: 0 % is what the base model makes without the LoRA (its
    baseline median; DIFFERENT, two strangers, where there is none) and 100 % the subject's own
    photographs' likeness to each other (the dataset's leave-one-out bound; SAME, two pictures of
    one person, where there is none, or where it is not above the low end)."""
    low = DIFFERENT if baseline_median is None else baseline_median
    high = upper_bound if upper_bound is not None and upper_bound > low else max(SAME, low)
    return low, high


def percent(
    similarity: float, baseline_median: float | None = None, upper_bound: float | None = None
) -> float:
    """`similarity` on the version's scale (scale_of), not capped: under 0 is less alike than the
    base model alone, over 100 more alike than the subject's own photographs are to each other
    (copies are). None-free: where both ends meet, 100 at or above them, 0 under."""
    low, high = scale_of(baseline_median, upper_bound)
    if high <= low:
        return 100.0 if similarity >= high else 0.0
    return round(100 * (similarity - low) / (high - low), 1)


def leave_one_out(subject: np.ndarray) -> float | None:
    """The median similarity of each dataset face to the centroid of the others: how alike two
    sets of photographs of this person are, the most a generated face can be expected to reach.
    None with fewer than two faces."""
    rows = np.asarray(subject, np.float64)
    if len(rows) < 2:
        return None
    total = rows.sum(axis=0)
    return round(statistics.median(float(unit(total - row) @ unit(row)) for row in rows), 4)


def subject_face(faces: Sequence[np.ndarray], kind: Kind, center: np.ndarray) -> tuple[int, list[float]]:
    """Which of a picture's faces is the subject's (a portrait's largest, a pair's most
    subject-like) and each face's similarity to the subject (pure)."""
    alike = [float(unit(face) @ center) for face in faces]
    return (0 if kind == "portrait" else int(np.argmax(alike))), alike


def median_frame(frames: Sequence[Sequence[np.ndarray]], kind: Kind, center: np.ndarray) -> int | None:
    """The clip's frame whose subject face's similarity is the median of its frames with a face (the
    lower one of an even count): the frame a clip is scored as; None where no frame has a face."""
    found = []
    for index, faces in enumerate(frames):
        if faces:
            chosen, alike = subject_face(faces, kind, center)
            found.append((alike[chosen], index))
    return sorted(found)[(len(found) - 1) // 2][1] if found else None


def _frame_scores(generated: Generated, center: np.ndarray) -> list[float | None]:
    """Each sampled frame's subject face's similarity (None: no face in it)."""
    scores: list[float | None] = []
    for faces in generated.frames:
        if not faces:
            scores.append(None)
            continue
        chosen, alike = subject_face(faces, generated.kind, center)
        scores.append(round(alike[chosen], 4))
    return scores


def score_image(
    generated: Generated, subject: np.ndarray, names: Sequence[str], center: np.ndarray
) -> ImageScore:
    """One image's score. A portrait's subject face is its largest face; a pair's, the most
    subject-like of its faces, and the others are the second person (whose likeness is bleed). A
    clip's frames are each scored too."""
    frames = _frame_scores(generated, center)
    faces = [unit(face) for face in generated.faces]
    if not faces:
        return ImageScore(generated.name, generated.kind, 0, frames=frames)
    chosen, alike = subject_face(faces, generated.kind, center)
    others = [s for i, s in enumerate(alike) if i != chosen]
    to_training = np.asarray(subject, np.float64) @ faces[chosen]
    nearest = int(np.argmax(to_training))
    return ImageScore(
        generated.name,
        generated.kind,
        len(faces),
        similarity=round(alike[chosen], 4),
        other=round(max(others), 4) if generated.kind == "pair" and others else None,
        nearest_training=names[nearest],
        nearest_similarity=round(float(to_training[nearest]), 4),
        frames=frames,
    )


def _median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 4) if values else None


def _share(values: Sequence[float], at_least: float) -> float | None:
    return round(sum(v >= at_least for v in values) / len(values), 4) if values else None


def evaluate(
    subject: np.ndarray,
    names: Sequence[str],
    with_lora: Sequence[Generated],
    baseline: Sequence[Generated] = (),
) -> Likeness:
    """The version's report: `subject`, the dataset's unit embeddings (rows) named by `names`;
    `with_lora`, the images generated with the LoRA; `baseline`, the same prompts and seeds
    without it (empty: no gain is measured)."""
    subject = np.asarray(subject, np.float64)
    count, frames = len(with_lora), max((len(g.frames) for g in with_lora), default=0)
    if len(subject) == 0:
        return Likeness(
            "unmeasured",
            ["the dataset has no face embeddings (built without faceFilter, or before they were kept)"],
            count,
            0,
            0.0,
            clip_frames=frames,
        )
    center = centroid(subject)
    scored = [score_image(g, subject, names, center) for g in with_lora]
    found = [s for s in scored if s.similarity is not None]
    no_face_rate = round(1 - len(found) / count, 4) if count else 1.0
    report = Likeness(
        "good",
        [],
        count,
        len(found),
        no_face_rate,
        upper_bound=leave_one_out(subject),
        clip_frames=frames,
        scored=scored,
    )
    if not found:
        report.verdict = "no-faces"
        report.reasons = [f"no face in any of the {count} generated images: nothing to compare"]
        return report
    similarities = [s.similarity for s in found if s.similarity is not None]
    report.median = _median(similarities)
    report.above_threshold = _share(similarities, THRESHOLD)
    base = [score_image(g, subject, names, center).similarity for g in baseline]
    report.baseline_median = _median([s for s in base if s is not None])
    if report.median is not None:
        report.percent = percent(report.median, report.baseline_median, report.upper_bound)
    if report.median is not None and report.baseline_median is not None:
        report.gain = round(report.median - report.baseline_median, 4)
    bled = [s.other for s in found if s.other is not None]
    report.bleed, report.bleed_share = _median(bled), _share(bled, THRESHOLD)
    copy = max(found, key=lambda s: s.nearest_similarity or -1.0)
    report.copy_similarity, report.copy_of = copy.nearest_similarity, copy.nearest_training
    copied = [s.nearest_training for s in found if (s.nearest_similarity or -1.0) >= COPY]
    report.copies, report.copied_images = len(copied), len(set(copied))
    report.sameness = _sameness(with_lora)
    report.baseline_sameness = _sameness(baseline)
    report.from_baseline = _from_baseline(with_lora, baseline)
    failed = reasons(report)
    report.verdict = "poor" if failed else "good"
    report.reasons = failed or passed(report)
    return report


def _sameness(generated: Sequence[Generated]) -> float | None:
    """The median similarity to each other of the faces the LoRA drew as its subject, where which
    face that is does not depend on the subject: a portrait's largest face, the only face of any
    other picture. A two-person picture's subject face is its most subject-like, which is the
    other person once the LoRA has turned its subject into someone else; compared, those would
    hide that the pictures show one person. None with fewer than two such faces."""
    drawn = [unit(g.faces[0]) for g in generated if (g.kind == "portrait" and g.faces) or len(g.faces) == 1]
    return _median([float(a @ b) for a, b in itertools.combinations(drawn, 2)])


def _from_baseline(with_lora: Sequence[Generated], baseline: Sequence[Generated]) -> float | None:
    """The median similarity of each face the LoRA drew as its subject (as _sameness picks it) to
    the face the base model drew at the same prompt and seed (the picture of the same name): near
    1 where the LoRA left the base model's person as it was, a stranger's where it drew another
    person. None where no name has such a face on both sides."""

    def drawn(g: Generated) -> np.ndarray | None:
        return unit(g.faces[0]) if (g.kind == "portrait" and g.faces) or len(g.faces) == 1 else None

    without = {g.name: drawn(g) for g in baseline}
    pairs = [(drawn(g), without.get(g.name)) for g in with_lora]
    return _median([float(a @ b) for a, b in pairs if a is not None and b is not None])


def turned_elsewhere(report: Likeness) -> bool:
    """The LoRA turned the faces into other people than the base model draws at the same seeds,
    and not into the subject: each face is as unlike the base model's at its seed as two
    strangers' are (under the threshold), and the faces are not the subject's."""
    if report.median is None or report.median >= THRESHOLD or report.from_baseline is None:
        return False
    return report.from_baseline < THRESHOLD


def moved_elsewhere(report: Likeness) -> bool:
    """The LoRA made the faces one person who is not the subject: they are alike to each other as
    two pictures of one person are (over the threshold), and more alike than without the LoRA,
    but not like the subject."""
    if report.median is None or report.median >= THRESHOLD or report.sameness is None:
        return False
    if report.sameness < THRESHOLD:
        return False
    return report.baseline_sameness is None or report.sameness - report.baseline_sameness >= MIN_GAIN


def reasons(report: Likeness) -> list[str]:
    """Why a measured version is poor (empty: it is good), one sentence per rule it fails, each
    saying what was measured."""
    return [sentence for rule in _POOR_WHEN if (sentence := rule(report))]


def _unlike(report: Likeness) -> str:
    if report.median is not None and report.median < THRESHOLD:
        return (
            f"the generated faces' median similarity {report.median:.2f} is under the threshold "
            f"{THRESHOLD:.2f}: they do not look like the subject"
        )
    return ""


def _faceless(report: Likeness) -> str:
    return (
        f"{report.no_face_rate:.0%} of the generated images show no face"
        if report.no_face_rate > MAJORITY
        else ""
    )


def _no_gain(report: Likeness) -> str:
    """Faces moved toward another person, turned into someone else, or barely changed."""
    if moved_elsewhere(report):
        without = (
            "" if report.baseline_sameness is None else f", {report.baseline_sameness:.2f} without the LoRA"
        )
        return (
            f"the LoRA moved the faces toward another person: they look like each other (median "
            f"similarity {report.sameness:.2f}{without}) but not like the subject"
        )
    if report.gain is None or not report.gain < MIN_GAIN:  # (a NaN gain says nothing)
        return ""
    if turned_elsewhere(report):
        return (
            f"the LoRA turns faces into someone else: at the same prompts and seeds its faces are not the "
            f"base model's (median similarity {report.from_baseline:.2f} to them) and not the subject's"
        )
    return (
        f"the LoRA raises the median similarity by {report.gain:+.2f} over the base model alone "
        f"(at least {MIN_GAIN:+.2f} expected): it changes little"
    )


def _bleeds(report: Likeness) -> str:
    if report.bleed_share is not None and report.bleed_share > MAJORITY:
        return (
            f"in {report.bleed_share:.0%} of the two-person images the other person looks like the "
            "subject too (bleed)"
        )
    return ""


def _copied(report: Likeness) -> str:
    """Faces that copy training images, else faces that copy each other."""
    if report.faces and report.copies / report.faces > MAJORITY:
        of = "one training image" if report.copied_images == 1 else f"{report.copied_images} training images"
        return (
            f"{report.copies} of {report.faces} generated faces are copies of {of} "
            f"(similarity ≥ {COPY:.2f}; the closest {report.copy_of}, {report.copy_similarity:.2f})"
        )
    if report.sameness is not None and report.sameness >= SAMENESS:
        return f"the generated faces are near-copies of each other (median similarity {report.sameness:.2f})"
    return ""


_POOR_WHEN = (_unlike, _faceless, _no_gain, _bleeds, _copied)  # in the order the sentences are said


def passed(report: Likeness) -> list[str]:
    """Why a measured version is good: what each rule measured."""
    out = [
        f"the generated faces' median similarity {report.median:.2f} is at or over the threshold "
        f"{THRESHOLD:.2f}: they look like the subject"
    ]
    if report.gain is not None:
        out.append(f"the LoRA raises it by {report.gain:+.2f} over the base model alone")
    if report.bleed_share is not None:
        out.append(
            f"in {report.bleed_share:.0%} of the two-person images the other person looks like the subject"
        )
    if report.copy_similarity is not None:
        out.append(
            f"{report.copies} of {report.faces} faces are copies of a training image (the closest "
            f"{report.copy_similarity:.2f}, copies from {COPY:.2f})"
        )
    return out


# How a scoring of pictures made elsewhere words what the rules found: about those pictures, never
# about what a LoRA generated (pictures.py).
_OUTSIDE_WORDS = (
    ("the generated faces' median", "these pictures' faces' median"),
    (": they look like the subject", ": these pictures look like the subject"),
    (": they do not look like the subject", ": these pictures do not look like the subject"),
    ("of the generated images show no face", "of these pictures show no face"),
    ("generated images: nothing to compare", "pictures: nothing to compare"),
    ("generated faces are copies", "faces in these pictures are copies"),
    ("the generated faces are near-copies", "the faces in these pictures are near-copies"),
)


def outside_pictures(report: dict[str, Any]) -> dict[str, Any]:
    """A report (wire form) of pictures made elsewhere as what it is, whether these pictures look
    like the subject, not a verdict on a LoRA: `verdict` alike (the median at or over the
    threshold) or unlike, no-faces and unmeasured as they are; the reasons about these pictures."""
    out = dict(report)
    if out.get("median") is not None and out.get("verdict") in ("good", "poor"):
        out["verdict"] = "alike" if float(out["median"]) >= THRESHOLD else "unlike"
    reasons = []
    for reason in out.get("reasons") or []:
        for generated, given in _OUTSIDE_WORDS:
            reason = reason.replace(generated, given)
        reasons.append(reason)
    out["reasons"] = reasons
    return out
