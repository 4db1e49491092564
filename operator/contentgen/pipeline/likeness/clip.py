"""Likeness over time: does the face in a video stay its LoRA's person from the first frame to
the last? Frames are sampled evenly across the clip and each is scored as a generated portrait is
(score.py: its largest face's similarity to the centroid of the subject's dataset faces), then
judged with the same threshold, so a video's numbers read as a picture's do.

Video models keep a face well in their first frames (image-to-video starts from the picture) and
lose it as motion accumulates; that is what the drift measures: the first third's median minus
the last third's. Pure: pipeline/videos.py decodes the frames and finds their faces.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from contentgen.api import LikenessSample, ResolvedLora, VideoLikeness

from .score import THRESHOLD, Generated, centroid, leave_one_out, percent, score_image

SAMPLES = 16  # frames scored per video, evenly across it
# Faces in fewer than this share of the sampled frames: the numbers stand on too few frames,
# which the reasons say.
FEW_FACES = 0.5


@dataclass(frozen=True)
class Sampled:
    time_seconds: float
    faces: Sequence[np.ndarray]  # unit embeddings, largest first


def sample_indices(frames: int, count: int = SAMPLES) -> list[int]:
    """`count` frame numbers spread evenly over `frames` (each the middle of its share)."""
    if frames <= 0:
        return []
    count = min(count, frames)
    return sorted({min(frames - 1, int((i + 0.5) * frames / count)) for i in range(count)})


def _median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 4) if values else None


def judge(
    sampled: Sequence[Sampled],
    subject: np.ndarray,
    names: Sequence[str],
    lora: ResolvedLora | None = None,
) -> VideoLikeness:
    """The verdict on a clip's sampled frames against the subject's dataset faces (rows)."""
    samples, bound = _scored(sampled, subject, names), leave_one_out(subject)
    report = partial(_report, samples=samples, upper_bound=bound, lora=lora)
    with_face = [s for s in samples if s.score is not None]
    if not samples:
        return report("unmeasured", ["no frame could be decoded"])
    if not with_face:
        nothing = f"no face in any of the {len(samples)} frames sampled: nothing to compare with the person"
        return report("no-faces", [nothing])
    median = _median_score(with_face)
    assert median is not None
    low = min(with_face, key=lambda s: float(s.score or 0.0))
    third = max(1, len(samples) // 3)
    first, last = _median_score(samples[:third]), _median_score(samples[-third:])
    verdict, reasons = _verdict(median, first, last, samples)
    reasons += _caveats(verdict, with_face, len(samples), low)
    return report(
        verdict,
        reasons,
        median=median,
        lowest=round(float(low.score or 0.0), 4),
        lowest_at_seconds=low.time_seconds,
        drift=round(first - last, 4) if first is not None and last is not None else None,
        percent=percent(median, None, bound),
    )


def _median_score(samples: Sequence[LikenessSample]) -> float | None:
    """The median score of the samples with a face, to 4 places (None: none has one)."""
    return _median([float(s.score) for s in samples if s.score is not None])


def _caveats(verdict: str, with_face: list[LikenessSample], sampled: int, low: LikenessSample) -> list[str]:
    """What else a reader of the verdict should know: frames under the threshold of a good clip,
    a face in too few of the frames sampled."""
    caveats = []
    under = [s for s in with_face if (s.score or 0.0) < THRESHOLD]
    if under and verdict == "good":
        caveats.append(
            f"{len(under)} of {len(with_face)} frames with a face are under it "
            f"(lowest {float(low.score or 0.0):.2f} at {low.time_seconds:g} s)"
        )
    if len(with_face) < FEW_FACES * sampled:
        caveats.append(f"a face in only {len(with_face)} of the {sampled} frames sampled")
    return caveats


def _scored(sampled: Sequence[Sampled], subject: np.ndarray, names: Sequence[str]) -> list[LikenessSample]:
    """Each sampled frame's faces scored against the subject's (its best face's similarity)."""
    center = centroid(subject)
    samples: list[LikenessSample] = []
    for frame in sampled:
        scored = score_image(
            Generated(f"{frame.time_seconds}s", "portrait", frame.faces), subject, names, center
        )
        samples.append(
            LikenessSample(time_seconds=frame.time_seconds, score=scored.similarity, faces=scored.faces)
        )
    return samples


def _verdict(
    median: float, first: float | None, last: float | None, samples: Sequence[LikenessSample]
) -> tuple[str, list[str]]:
    """Poor where the median face is not the person's, or where it was and drifts away (the first
    third's over the threshold, the last's under); else good."""
    if median < THRESHOLD:
        return "poor", [
            f"the face is not the person: median {median:.2f} under the threshold {THRESHOLD:.2f}"
        ]
    if first is not None and last is not None and first >= THRESHOLD > last:
        return "poor", [
            f"the face drifts from the person: {first:.2f} in the first third, {last:.2f} in the last, "
            f"under the threshold {THRESHOLD:.2f} from {_drifted_at(samples):g} s"
        ]
    return "good", [f"the face is the person: median {median:.2f}, at or over the threshold {THRESHOLD:.2f}"]


def _report(
    verdict: str,
    reasons: list[str],
    *,
    samples: list[LikenessSample],
    upper_bound: float | None,
    lora: ResolvedLora | None,
    **numbers: float | None,
) -> VideoLikeness:
    return VideoLikeness(
        verdict=verdict,  # type: ignore[arg-type]
        reasons=reasons,
        samples=samples,
        threshold=THRESHOLD,
        upper_bound=upper_bound,
        lora=lora,
        **numbers,
    )


def _drifted_at(samples: Sequence[LikenessSample]) -> float:
    """The time from which every later frame with a face is under the threshold."""
    at = samples[-1].time_seconds
    for sample in reversed(samples):
        if sample.score is None:
            continue
        if sample.score >= THRESHOLD:
            break
        at = sample.time_seconds
    return at
