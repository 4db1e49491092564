"""A LoRA version's likeness evaluation: the prompt set × seeds generated with the LoRA through
the provider and model users generate with, the same without it (the baseline, stored once per
provider, model, prompt and seed and then shared), scored against the subject's dataset faces,
and a sample grid (with and without the LoRA, the score under each picture).

Every generation is paid work under the usual guarantees: each call has its own provider
checkpoint (a retried run delivers what was paid for instead of paying again), and what it billed
goes into `billed` as it returns, so the run's usage (and `status.cost`) holds it. Its price is
known before it starts (`plan.expected_usage`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from contentgen.api import CheckpointLikeness, UsageLine
from contentgen.api import Likeness as LikenessReport
from contentgen.errors import InvalidInput, PermanentError
from contentgen.pricing import gpu_usage, image_usage
from contentgen.providers import clip_frames
from contentgen.providers.base import Checkpoint, CheckpointFiles, ImageGenerator, ImageRequest, LoraWeights
from contentgen.providers.progress import SubProgress
from contentgen.store import ObjectStore, keys

from ..contact_sheet import fitted
from .faces import FaceReader
from .plan import Plan
from .prompts import Kind, Prompt
from .score import Generated, ImageScore, Likeness, centroid, evaluate, median_frame, score_image

WITHOUT = "a person"  # the trigger word's stand-in in the baseline's prompts
PNG = "image/png"
TILE = 256
_LABEL = 22
_GAP = 6
_HEAD = 50  # two title lines
_FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass
class Evaluation:
    likeness: Likeness
    grid: Path
    with_lora: list[Path] = field(default_factory=list)
    baseline: list[Path] = field(default_factory=list)
    baseline_scores: list[ImageScore] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # each picture's name (p01-s1, ...), in order


@dataclass(frozen=True)
class Candidate:
    """One LoRA to evaluate. `name` tells its pictures (their provider checkpoints and folders)
    apart from another candidate's in one run ("" for a version's single LoRA); `title` is added
    to its grid's first line (" step 500")."""

    lora: LoraWeights
    name: str = ""
    title: str = ""


def run_evaluation(
    generator: ImageGenerator,
    store: ObjectStore,
    plan: Plan,
    trigger_word: str,
    lora: LoraWeights,
    subject: tuple[Sequence[str], np.ndarray],
    work_dir: Path,
    progress: SubProgress,
    checkpoint: Callable[[str], Checkpoint],
    billed: list[UsageLine],
    reader: FaceReader | None = None,
    kept_in: Callable[[str], CheckpointFiles] | None = None,
) -> Evaluation:
    """Generate, score and draw the evaluation of one LoRA into `work_dir`. `checkpoint(name)`: the
    provider checkpoint of one call; `billed` grows by each call's usage as it returns."""
    [evaluation] = run_evaluations(
        generator,
        store,
        plan,
        trigger_word,
        [Candidate(lora)],
        subject,
        work_dir,
        progress,
        checkpoint,
        billed,
        reader,
        kept_in,
    )
    return evaluation


def run_evaluations(
    generator: ImageGenerator,
    store: ObjectStore,
    plan: Plan,
    trigger_word: str,
    candidates: Sequence[Candidate],
    subject: tuple[Sequence[str], np.ndarray],
    work_dir: Path,
    progress: SubProgress,
    checkpoint: Callable[[str], Checkpoint],
    billed: list[UsageLine],
    reader: FaceReader | None = None,
    kept_in: Callable[[str], CheckpointFiles] | None = None,
) -> list[Evaluation]:
    """`run_evaluation` of several LoRAs (a training's checkpoints) on one baseline: the same
    prompts and seeds for each, the pictures without a LoRA made (or read) once and shared.
    `kept_in(name)`: where a generator that makes pictures itself (provider cluster) keeps that
    call's picture as it is made, for a retried pod to take instead of making it again."""
    items = plan.items()
    maker = _Maker(
        generator, plan, work_dir, progress, checkpoint, billed, kept_in, (len(candidates) + 1) * len(items)
    )
    with_lora = [_with_lora(maker, trigger_word, candidate) for candidate in candidates]
    # The offline provider's placeholders show a label and the prompt, never a face, unless drawn
    # with a LoRA that carries its subject (providers/offline_subject.py): searching the others
    # (~13 ms a picture, and loading the networks) would only find what is known, no face. They
    # are PNGs of OpenCV's own, too: encoded again, the same bytes.
    placeholders = bool(getattr(generator, "placeholder_pictures", False))
    without = _baseline(maker, store, baseline_model(generator, plan.model), placeholders)
    read = reader or FaceReader()

    def faces_in(lora: LoraWeights | None) -> Callable[[np.ndarray], list[np.ndarray]] | None:
        draws = getattr(generator, "draws_subject", None)
        if placeholders and not (lora is not None and callable(draws) and draws(lora)):
            return None  # not searched: a placeholder without a face, by construction
        return read.faces

    names, rows = subject
    center = centroid(rows) if len(rows) else np.zeros(0)
    found_without = _found(items, without, faces_in(None), center)
    unscored = scores(found_without, rows, names)
    context = _Scoring(
        plan, trigger_word, subject, without, unscored, found_without, work_dir, generator.name, placeholders
    )
    return [
        context.evaluated(candidate, pictures, _found(items, pictures, faces_in(candidate.lora), center))
        for candidate, pictures in zip(candidates, with_lora, strict=True)
    ]


@dataclass
class _Maker:
    """Makes an evaluation's pictures one at a time: each billed as it returns (`billed`), each
    counted in the progress, each with its own provider checkpoint."""

    generator: ImageGenerator
    plan: Plan
    work_dir: Path
    progress: SubProgress
    checkpoint: Callable[[str], Checkpoint]
    billed: list[UsageLine]
    kept_in: Callable[[str], CheckpointFiles] | None
    total: int
    done: int = 0

    def count(self) -> None:
        self.done += 1
        self.progress(100.0 * self.done / self.total)

    def make(self, name: str, request: ImageRequest) -> Path:
        folder = self.work_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        if self.kept_in is not None:
            request = replace(request, outputs=self.kept_in(name))
        generator = self.generator
        outputs = generator.generate_images(request, folder, lambda *_: None, self.checkpoint(name))
        if len(outputs) != 1:
            raise PermanentError(
                f"{generator.name} returned {len(outputs)} pictures where one was asked for",
                reason="ProviderError",
            )
        output = outputs[0]
        if output.gpu_seconds is not None:  # the GPU time it held, not a bill per picture
            used = gpu_usage(generator.name, "likeness-evaluation", output.gpu_seconds, output.request_id)
        else:
            sizes = [(output.width, output.height)]
            used = image_usage(generator.name, self.plan.model, sizes, output.request_id)
        _add(self.billed, used)
        self.count()
        return output.path


def _with_lora(maker: _Maker, trigger_word: str, candidate: Candidate) -> list[Path]:
    """The plan's pictures with `candidate`'s LoRA, in the plan's order."""
    plan = maker.plan
    prefix = f"{candidate.name}-" if candidate.name else ""
    return [
        maker.make(
            f"{prefix}lora-{name}",
            ImageRequest(
                prompt=prompt.filled(trigger_word),
                model=plan.model,
                image_size=plan.image_size,
                seed=seed,
                loras=(candidate.lora,),
            ),
        )
        for name, seed, _, prompt in plan.items()
    ]


def _baseline(maker: _Maker, store: ObjectStore, model: str, placeholders: bool) -> list[Path]:
    """The plan's pictures without a LoRA: read from the store where an earlier evaluation with
    the same provider, model, prompt and seed stored them, else made and stored once."""
    plan, name_of_provider = maker.plan, maker.generator.name
    without: list[Path] = []
    for name, seed, index, prompt in plan.items():
        key = keys.likeness_baseline(name_of_provider, model, plan.prompt_set, seed, index)
        path = maker.work_dir / f"baseline-{name}.png"
        if store.exists(key):
            store.get_file(key, path)
            maker.count()
        else:
            request = ImageRequest(
                prompt=prompt.filled(WITHOUT), model=plan.model, image_size=plan.image_size, seed=seed
            )
            made = maker.make(f"baseline-{name}", request)
            path.write_bytes(made.read_bytes() if placeholders else _png(made))
            store.put_once_bytes(key, path.read_bytes(), PNG)
        without.append(path)
    return without


def _found(
    items: Sequence[tuple[str, int, int, Prompt]],
    pictures: Sequence[Path],
    faces_of: Callable[[np.ndarray], list[np.ndarray]] | None,
    center: np.ndarray,
) -> list[Generated]:
    """Each picture's faces; a clip's (providers/clip_frames.py) each frame's, and its median
    frame's as the clip's. Without `faces_of`, none: the pictures are not searched (a picture is
    not even read)."""
    return [
        _generated(n, p.kind, f, faces_of, center) for (n, _, _, p), f in zip(items, pictures, strict=True)
    ]


def _generated(
    name: str,
    kind: Kind,
    path: Path,
    faces_of: Callable[[np.ndarray], list[np.ndarray]] | None,
    center: np.ndarray,
) -> Generated:
    frames = clip_frames.read(path)
    if frames is None:
        if faces_of is None:
            return Generated(name, kind, [])
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise InvalidInput(f"{path.name} is not an image OpenCV can read")
        return Generated(name, kind, faces_of(image))
    search = faces_of or _no_faces  # a clip's frames are counted, searched or not
    found = [search(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)) for _, frame in frames]
    median = median_frame(found, kind, center) if len(center) else None
    return Generated(name, kind, found[median] if median is not None else [], frames=found)


def _no_faces(_: np.ndarray) -> list[np.ndarray]:
    return []


@dataclass
class _Scoring:
    """What every candidate is scored against: the dataset's faces (`subject`: their names, what
    "nearest training image" names, and their embeddings) and the shared baseline."""

    plan: Plan
    trigger_word: str
    subject: tuple[Sequence[str], np.ndarray]
    without: list[Path]
    unscored: list[ImageScore]  # the baseline's pictures' scores
    found_without: list[Generated]
    work_dir: Path
    provider: str
    placeholders: bool

    def evaluated(
        self, candidate: Candidate, pictures: list[Path], found_with: list[Generated]
    ) -> Evaluation:
        """`candidate`'s likeness and its grid, in its own folder where it has a name."""
        names, rows = self.subject
        likeness = evaluate(rows, names, found_with, self.found_without)
        if self.placeholders and likeness.verdict == "no-faces":
            likeness.reasons.append(
                f"the pictures are {self.provider} placeholders, a label and the prompt with no face by "
                "construction (a face only with a LoRA the offline provider trained, from a local store): "
                "not searched for faces"
            )
        folder = self.work_dir / candidate.name if candidate.name else self.work_dir
        folder.mkdir(parents=True, exist_ok=True)
        grid = draw_grid(
            folder / "likeness-grid.jpg",
            list(zip(pictures, scores(found_with, rows, names), strict=True)),
            list(zip(self.without, self.unscored, strict=True)),
            title=(
                f"{self.trigger_word}{candidate.title}: {likeness.verdict}, "
                f"median {_number(likeness.median)}",
                f"without the LoRA {_number(likeness.baseline_median)}; {self.plan.prompt_set}",
            ),
        )
        picture_names = [n for n, _, _, _ in self.plan.items()]
        return Evaluation(likeness, grid, pictures, self.without, self.unscored, picture_names)


def baseline_model(generator: ImageGenerator, model: str) -> str:
    """The model part of a baseline picture's key: `model`, or where the generator runs weights of
    its own (provider cluster: `weights_of`), those weights and steps too, so that pictures made
    with other staged weights are never taken for this baseline."""
    weights_of = getattr(generator, "weights_of", None)
    return str(weights_of(model)) if callable(weights_of) else model


def report(likeness: Likeness, plan: Plan, grid_uri: str, report_uri: str) -> LikenessReport:
    """The version's likeness report (status, catalog) from the scorer's, without the per-picture
    scores (they are in likeness.json, `report_uri`)."""
    found = likeness.as_dict()
    found.pop("scored")
    found |= {"prompt_set": plan.prompt_set, "seeds": list(plan.seeds)}
    found |= {"grid_uri": grid_uri, "report_uri": report_uri}
    return LikenessReport.model_validate(found)


def curve_point(
    likeness: Likeness, step: int, model_uri: str, grid_uri: str, report_uri: str
) -> CheckpointLikeness:
    """One checkpoint's point of the likeness curve: its report in brief."""
    return CheckpointLikeness(
        step=step,
        model_uri=model_uri,
        verdict=likeness.verdict,
        median=likeness.median,
        percent=likeness.percent,
        above_threshold=likeness.above_threshold,
        no_face_rate=likeness.no_face_rate,
        gain=likeness.gain,
        bleed_share=likeness.bleed_share,
        copies=likeness.copies,
        sameness=likeness.sameness,
        reasons=list(likeness.reasons),
        clip_frames=likeness.clip_frames,
        grid_uri=grid_uri,
        report_uri=report_uri,
    )


def _add(billed: list[UsageLine], lines: list[UsageLine]) -> None:
    """`lines` into `billed`; a line without a request id (the offline provider's) joins the last
    line of its item, so that the pictures are not a line each in the run's result."""
    for line in lines:
        last = billed[-1] if billed else None
        same = last is not None and (last.provider, last.item, last.unit) == (
            line.provider,
            line.item,
            line.unit,
        )
        if last is not None and same and not line.request and not last.request:
            billed[-1] = last.model_copy(update={"quantity": last.quantity + line.quantity})
        else:
            billed.append(line)


def scores(generated: Sequence[Generated], rows: np.ndarray, names: Sequence[str]) -> list[ImageScore]:
    """Each picture's score; without the subject's faces, only how many faces it shows."""
    if not len(rows):
        return [ImageScore(g.name, g.kind, len(g.faces)) for g in generated]
    center = centroid(rows)
    return [score_image(g, rows, names, center) for g in generated]


def _number(value: float | None) -> str:
    return "no face" if value is None else f"{value:.2f}"


def _png(path: Path) -> bytes:
    """The picture as a PNG (a clip's frames as they are: their layout is in the PNG's text)."""
    if clip_frames.read(path) is not None:
        return path.read_bytes()
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path.name} is not a picture")
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("OpenCV could not encode a PNG")
    return data.tobytes()


def draw_grid(
    out: Path,
    with_lora: Sequence[tuple[Path, ImageScore]],
    without: Sequence[tuple[Path, ImageScore]],
    *,
    title: tuple[str, str],
) -> Path:
    """One JPEG: a row per prompt and seed, the picture with the LoRA and the one without, each
    with its subject face's similarity (and the other person's in two-person prompts) under it."""
    rows = len(with_lora)
    width = 2 * TILE + 3 * _GAP
    height = _HEAD + rows * (TILE + _LABEL + _GAP) + _GAP
    sheet = np.full((height, width, 3), 32, np.uint8)
    for line, text in enumerate(title):
        y = 20 + 20 * line
        cv2.putText(sheet, _ascii(text)[:56], (_GAP, y), _FONT, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    for row, pair in enumerate(zip(with_lora, without, strict=True)):
        for column, (path, scored) in enumerate(pair):
            x = _GAP + column * (TILE + _GAP)
            y = _HEAD + row * (TILE + _LABEL + _GAP)
            small = _thumbnail(path, TILE)
            if small is not None:
                sheet[y : y + small.shape[0], x : x + small.shape[1]] = small
            label = ("LoRA " if column == 0 else "base ") + _label(scored)
            cv2.putText(sheet, label, (x + 2, y + TILE + 16), _FONT, 0.45, (230, 230, 230), 1, cv2.LINE_AA)
    ok, data = cv2.imencode(".jpg", sheet, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise RuntimeError("OpenCV could not encode the likeness grid")
    out.write_bytes(data.tobytes())
    return out


_SMALL = 128
_ROW_HEAD = 150  # the row's title column
_ROW_FONT = 0.42
_LABEL_LINES = 5  # lines of a row's title (each under the last)


def draw_checkpoint_grid(out: Path, steps: Sequence[tuple[str, Evaluation]], *, title: str) -> Path:
    """One JPEG of a training's checkpoints side by side: a column per prompt and seed, a row per
    checkpoint (`steps`: each row's title, its lines split at "\n", and its evaluation), and a
    first row of the same prompts and seeds without the LoRA; each picture with its similarity
    under it. What users of ai-toolkit and kohya compare by eye to choose a checkpoint."""
    first = steps[0][1]
    columns = len(first.names)
    width = _ROW_HEAD + columns * (_SMALL + _GAP) + _GAP
    row_height = _SMALL + _LABEL + _GAP
    height = _HEAD + (len(steps) + 1) * row_height + _GAP
    sheet = np.full((height, width, 3), 32, np.uint8)
    cv2.putText(sheet, _ascii(title)[:120], (_GAP, 20), _FONT, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    for column, name in enumerate(first.names):
        x = _ROW_HEAD + column * (_SMALL + _GAP)
        cv2.putText(sheet, name, (x + 2, 42), _FONT, 0.4, (200, 200, 200), 1, cv2.LINE_AA)
    rows = [("without the LoRA", first.baseline, first.baseline_scores)]
    rows += [(label, e.with_lora, e.likeness.scored) for label, e in steps]
    for row, (label, pictures, scored) in enumerate(rows):
        y = _HEAD + row * row_height
        for line, text in enumerate(label.split("\n")[:_LABEL_LINES]):
            cv2.putText(
                sheet,
                _fitted(text, _ROW_HEAD - 2 * _GAP),
                (_GAP, y + 20 + 18 * line),
                _FONT,
                _ROW_FONT,
                (230, 230, 230),
                1,
                cv2.LINE_AA,
            )
        for column, (path, score) in enumerate(zip(pictures, scored, strict=True)):
            x = _ROW_HEAD + column * (_SMALL + _GAP)
            small = _thumbnail(path, _SMALL)
            if small is not None:
                sheet[y : y + small.shape[0], x : x + small.shape[1]] = small
            text = _label(score).split(",")[0]
            cv2.putText(sheet, text, (x + 2, y + _SMALL + 15), _FONT, 0.4, (230, 230, 230), 1, cv2.LINE_AA)
    ok, data = cv2.imencode(".jpg", sheet, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise RuntimeError("OpenCV could not encode the checkpoints' grid")
    out.write_bytes(data.tobytes())
    return out


def _thumbnail(path: Path, side: int) -> np.ndarray | None:
    """`path`'s picture fitted into a `side` square (None where it is not one), for a grid. Each
    picture is decoded once for both grids: its checkpoint's and the training's checkpoints' grid,
    drawn from the same pictures (read-only: a cached array)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    fitted = _thumbnails(str(path), (stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return None if fitted is None else fitted[side]


@functools.lru_cache(maxsize=128)  # a picture's two sides: about 0.25 MB
def _thumbnails(path: str, _stamp: tuple[int, int, int]) -> dict[int, np.ndarray] | None:
    picture = cv2.imread(path)
    if picture is None:
        return None
    tiles = {side: fitted(picture, side) for side in (TILE, _SMALL)}
    for tile in tiles.values():
        tile.flags.writeable = False
    return tiles


def _label(scored: ImageScore) -> str:
    if scored.similarity is None:
        return "no face" if scored.faces == 0 else f"{scored.faces} faces, unscored"
    text = f"{scored.similarity:.2f}"
    if scored.other is not None:
        text += f", other {scored.other:.2f}"
    return text


def _ascii(text: str) -> str:
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)


def _fitted(text: str, width: int) -> str:
    """`text` in ASCII (Hershey fonts have nothing else), cut with "..." to fit `width` pixels in a
    row title's font."""
    text = _ascii(text)
    if cv2.getTextSize(text, _FONT, _ROW_FONT, 1)[0][0] <= width:
        return text
    while text and cv2.getTextSize(text + "...", _FONT, _ROW_FONT, 1)[0][0] > width:
        text = text[:-1]
    return text + "..."
