"""Scoring pictures made elsewhere (ComfyUI, another service, a folder of PNG, JPEG or WebP
files) against a LoRA version's subject, without generating or paying for anything: `contentgen
assets evaluate REF --pictures DIR` and the HTTP API's POST .../versions/N/score
(docs/likeness.md#scoring-your-own-pictures).

The report is the evaluation's (verdict, median, percent, reasons, per-picture scores, a grid),
scored against the version's dataset faces exactly as generated pictures are; each picture is a
portrait (its largest face is taken for the subject's). There is no baseline unless the caller
gives pictures without the LoRA (`baseline`): then the gain is measured too.

It is stored as a numbered re-evaluation of the version (`likeness/e{k}/`, its number claimed as
reevaluate.py claims one), its `evaluation.json` saying where the pictures came from (`source:
pictures`, each picture's name, SHA-256, size and format), and recorded in the version's likeness
history (catalog/evaluations.py): nothing is written over. The pictures themselves are not kept;
the grid shows them.

The checks of the pictures (`check`, `from_folder`: what a file is, its size, its dimensions,
the caps) are plain Python, so the HTTP API's image (no numpy, no OpenCV) can refuse a bad upload;
scoring imports its modules when it runs (`score_pictures`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from contentgen.catalog import Catalog
from contentgen.catalog.evaluations import record_evaluation
from contentgen.store import ObjectStore

from .reevaluate import RECORD_FILE, Target, claim, claim_object, subject_faces

# The caps, documented in docs/likeness.md and the HTTP API's document: pictures per request (the
# baseline's counted apart), bytes per picture, bytes in all, pixels per picture (a small file
# can decode to a huge picture).
MAX_PICTURES = 32
MAX_PICTURE_BYTES = 16 * 1024 * 1024
MAX_TOTAL_BYTES = 96 * 1024 * 1024
MAX_PIXELS = 40_000_000
FORMATS = ("png", "jpeg", "webp")
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
SOURCE = "pictures"
_TILE = 200
_COLUMNS = 4


class PictureError(ValueError):
    """A picture, or the set of them, refused; the message is one line naming the file (or the
    folder) and why."""


@dataclass(frozen=True)
class Picture:
    name: str
    data: bytes = field(repr=False)
    format: str
    width: int
    height: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sha256": self.sha256,
            "sizeBytes": len(self.data),
            "format": self.format,
            "width": self.width,
            "height": self.height,
        }


def check(name: str, data: bytes, label: str = "") -> Picture:
    """`data` as a picture named `name`: PNG, JPEG or WebP by its content (not its name), within
    the caps; PictureError naming it (as `label`, default its name) otherwise."""
    shown = label or name
    if not data:
        raise PictureError(f"{shown}: an empty file, not a picture")
    if len(data) > MAX_PICTURE_BYTES:
        raise PictureError(_too_big(shown, len(data)))
    kind = _format(data)
    if kind is None:
        raise PictureError(f"{shown}: not a picture (PNG, JPEG or WebP), whatever its name says")
    size = _dimensions(kind, data)
    if size is None or min(size) < 1:
        raise PictureError(f"{shown}: a damaged {kind.upper()} (its width and height cannot be read)")
    width, height = size
    if width * height > MAX_PIXELS:
        megapixels = MAX_PIXELS // 1_000_000
        raise PictureError(
            f"{shown}: {width} × {height} pixels, over the {megapixels} megapixels a picture may have"
        )
    return Picture(name, data, kind, width, height)


def _too_big(label: str, size: int) -> str:
    return f"{label}: {size} bytes, over the {MAX_PICTURE_BYTES // (1024 * 1024)} MiB a picture may have"


def check_all(pictures: Sequence[Picture], baseline: Sequence[Picture] = (), where: str = "") -> None:
    """The caps on a set: at least one picture, at most MAX_PICTURES of them (and of the
    baseline's), MAX_TOTAL_BYTES in all."""
    if not pictures:
        raise PictureError(f"{where or 'pictures'}: no picture to score (PNG, JPEG or WebP files)")
    for label, found in (("pictures", pictures), ("baseline", baseline)):
        if len(found) > MAX_PICTURES:
            raise PictureError(f"{label}: {len(found)} pictures, over the {MAX_PICTURES} scored at once")
    total = sum(len(p.data) for p in [*pictures, *baseline])
    if total > MAX_TOTAL_BYTES:
        raise PictureError(
            f"{where or 'pictures'}: {total} bytes in all, over the {MAX_TOTAL_BYTES // (1024 * 1024)} MiB "
            "scored at once"
        )


def from_folder(folder: Path) -> list[Picture]:
    """The pictures in `folder` (its files, by name; hidden files and subfolders are not read);
    PictureError naming the file that is not a picture or cannot be read, or the folder when it
    is not one or holds none."""
    if not folder.is_dir():
        raise PictureError(f"{folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and not p.is_dir())
    if len(files) > MAX_PICTURES:
        raise PictureError(f"{folder}: {len(files)} files, over the {MAX_PICTURES} pictures scored at once")
    found = []
    for path in files:
        try:
            size = path.stat().st_size
            if size > MAX_PICTURE_BYTES:  # refused before it is read
                raise PictureError(_too_big(str(path), size))
            data = path.read_bytes()
        except OSError as exc:
            raise PictureError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        found.append(check(path.name, data, label=str(path)))
    if not found:
        raise PictureError(f"{folder}: no picture to score (PNG, JPEG or WebP files)")
    return found


def _format(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _dimensions(kind: str, data: bytes) -> tuple[int, int] | None:
    """(width, height) from the file's header, without decoding it."""
    try:
        if kind == "png":
            if data[12:16] != b"IHDR":
                return None
            width, height = struct.unpack(">II", data[16:24])
            return int(width), int(height)
        if kind == "webp":
            return _webp_dimensions(data)
        return _jpeg_dimensions(data)
    except (struct.error, IndexError):
        return None


def _webp_dimensions(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def _jpeg_dimensions(data: bytes) -> tuple[int, int] | None:
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0x01, *range(0xD0, 0xDA)):  # no length
            at += 2
            continue
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return int(width), int(height)
        if marker == 0xDA or length < 2:  # the scan began before any frame header
            return None
        at += 2 + length
    return None


@dataclass
class Scored:
    entry: dict[str, Any]  # the evaluation (evaluation.json), as recorded
    number: int
    recorded: bool  # False: the record did not take it (the version was deleted meanwhile)
    scores: list[dict[str, Any]]  # each picture's score, in the pictures' order

    def answer(self, goal: Target) -> dict[str, Any]:
        """The scoring as the HTTP API answers it (PicturesScored) and the CLI prints it."""
        return {
            "id": goal.uid,
            "version": goal.version,
            "evaluation": self.number,
            "recorded": self.recorded,
            "source": self.entry["source"],
            "pictures": self.entry["pictures"],
            "baseline": self.entry.get("baseline", []),
            "costUsd": 0.0,
            "likeness": self.entry["likeness"],
            "scores": self.scores,
        }


def score_pictures(
    catalog: Catalog,
    store: ObjectStore,
    goal: Target,
    pictures: Sequence[Picture],
    baseline: Sequence[Picture] = (),
    *,
    work_dir: Path,
    by: str,
    now: Callable[[], datetime],
) -> Scored:
    """Score `pictures` (and `baseline`, pictures without the LoRA) against `goal`'s dataset faces,
    store the report as a new numbered re-evaluation of the version and record it in its history.
    PictureError names a picture that cannot be decoded; nothing is stored then."""
    check_all(pictures, baseline)
    work = work_dir / f"{goal.uid}-likeness-v{goal.version}-pictures-{uuid.uuid4().hex[:12]}"
    work.mkdir(parents=True, exist_ok=True)
    try:
        (names, rows), faces_artifact = subject_faces(store, goal, work)
        read = _read(pictures, baseline)
        judged = _judge(read, rows, names, len(pictures))
        number = claim(store, goal, f"{SOURCE}-{uuid.uuid4().hex}")
        folder = goal.folder(number)
        stored = _store_report(store, goal, number, folder, judged, read, work, len(baseline))
        record = _record(goal, number, pictures, baseline, stored, by=by, at=now())
        record["artifacts"] += [*([faces_artifact] if faces_artifact else []), *claim_object(store, folder)]
        written = store.put_once_bytes(
            folder + RECORD_FILE, json.dumps(record, indent=1).encode(), "application/json"
        )
        record["artifacts"].append(written.wire())
        recorded = record_evaluation(catalog, goal.uid, record, now=now())
        return Scored(record, number, recorded, [_wire_score(s) for s in judged.each])
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataclass
class _Read:
    """The pictures decoded: the faces found in each (the given ones, then the baseline), and each
    as a grid tile."""

    seen: list[Any]  # score.Generated
    tiles: list[Any]  # BGR arrays, _TILE pixels on their longer side


def _read(pictures: Sequence[Picture], baseline: Sequence[Picture]) -> _Read:
    """Decode each picture, find its faces and make its tile; PictureError for one that cannot be
    decoded."""
    import cv2
    import numpy as np

    from ..contact_sheet import fitted
    from .faces import FaceReader
    from .score import Generated

    reader = FaceReader()
    read = _Read([], [])
    for picture in [*pictures, *baseline]:
        image = cv2.imdecode(np.frombuffer(picture.data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise PictureError(f"{picture.name}: a damaged {picture.format.upper()} (it cannot be decoded)")
        read.seen.append(Generated(picture.name, "portrait", reader.faces(image)))
        read.tiles.append(fitted(image, _TILE))
    return read


@dataclass
class _Judged:
    likeness: Any  # score.Likeness of the given pictures, against the baseline's
    each: list[Any]  # the given pictures' scores
    without: list[Any]  # the baseline's


def _judge(read: _Read, rows: Any, names: Any, given: int) -> _Judged:
    from .evaluation import scores as scored_faces
    from .score import evaluate

    mine, theirs = read.seen[:given], read.seen[given:]
    return _Judged(
        evaluate(rows, names, mine, theirs),
        scored_faces(mine, rows, names),
        scored_faces(theirs, rows, names),
    )


@dataclass
class _Stored:
    grid: Any  # the stored grid's ObjectInfo
    scores: Any  # the stored per-picture scores' ObjectInfo
    report: dict[str, Any]  # the Likeness report as the record carries it


def _store_report(
    store: ObjectStore,
    goal: Target,
    number: int,
    folder: str,
    judged: _Judged,
    read: _Read,
    work: Path,
    baseline: int,
) -> _Stored:
    """The grid of the pictures with their scores, and the per-picture scores, stored once under
    the evaluation's folder; the report pointing at both."""
    from contentgen.api import Likeness as LikenessReport

    from .score import outside_pictures

    likeness, given = judged.likeness, len(judged.each)
    title = (
        f"{goal.name} v{goal.version} e{number}: these pictures, median {_number(likeness.median)}",
        f"{given} pictures given"
        + (f", {baseline} without the LoRA {_number(likeness.baseline_median)}" if baseline else ""),
    )
    grid_path = _draw(
        work / "likeness-grid.jpg", read.tiles, [*judged.each, *judged.without], given, title=title
    )
    grid = store.put_once_file(folder + "likeness-grid.jpg", grid_path, "image/jpeg")
    per_picture = outside_pictures(likeness.as_dict())
    per_picture["baselineScored"] = [s.__dict__ for s in judged.without]
    scores = store.put_once_bytes(
        folder + "likeness.json", json.dumps(per_picture, indent=1).encode(), "application/json"
    )
    found = likeness.as_dict()
    found.pop("scored")
    found |= {"grid_uri": grid.uri, "report_uri": scores.uri}
    return _Stored(grid, scores, outside_pictures(LikenessReport.model_validate(found).wire()))


def _record(
    goal: Target,
    number: int,
    pictures: Sequence[Picture],
    baseline: Sequence[Picture],
    stored: _Stored,
    *,
    by: str,
    at: datetime,
) -> dict[str, Any]:
    """The re-evaluation's record: what was scored, by whom, free, and the report."""
    return {
        "evaluation": number,
        "version": goal.version,
        "at": at.isoformat().replace("+00:00", "Z"),
        "by": by,
        "source": SOURCE,
        "pictures": [p.wire() for p in pictures],
        **({"baseline": [p.wire() for p in baseline]} if baseline else {}),
        "usage": [],
        "costUsd": 0.0,
        "costDetail": "nothing was generated: pictures made elsewhere were scored",
        "likeness": stored.report,
        "artifacts": [stored.grid.wire(), stored.scores.wire()],
    }


def _wire_score(scored: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": scored.name, "faces": scored.faces, "similarity": scored.similarity}
    if scored.nearest_training:
        out["nearestTraining"] = scored.nearest_training
        out["nearestSimilarity"] = scored.nearest_similarity
    return out


def _number(value: float | None) -> str:
    return "no face" if value is None else f"{value:.2f}"


def _draw(
    out: Path, tiles: Sequence[Any], scored: Sequence[Any], given: int, *, title: tuple[str, str]
) -> Path:
    """One JPEG: the pictures given, four to a row, each with its name and its face's similarity
    to the subject under it; the baseline's after them, marked `base`."""
    import cv2
    import numpy as np

    gap, label, head = 6, 34, 50
    first = -(-given // _COLUMNS)  # rows of the pictures given; the baseline's start on a row of its own
    rows = first + -(-(len(tiles) - given) // _COLUMNS)
    width = _COLUMNS * (_TILE + gap) + gap
    height = head + rows * (_TILE + label + gap) + gap
    sheet = np.full((height, width, 3), 32, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for line, text in enumerate(title):
        cv2.putText(
            sheet, _ascii(text)[:70], (gap, 20 + 20 * line), font, 0.45, (255, 255, 255), 1, cv2.LINE_AA
        )
    for index, (tile, score) in enumerate(zip(tiles, scored, strict=True)):
        slot = index if index < given else first * _COLUMNS + index - given
        x = gap + (slot % _COLUMNS) * (_TILE + gap)
        y = head + (slot // _COLUMNS) * (_TILE + label + gap)
        sheet[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
        if score.similarity is None:
            value = "no face" if score.faces == 0 else f"{score.faces} faces, unscored"
        else:
            value = f"{score.similarity:.2f}"
        prefix = "" if index < given else "base "
        cv2.putText(
            sheet,
            _ascii(prefix + value),
            (x + 2, y + _TILE + 14),
            font,
            0.45,
            (230, 230, 230),
            1,
            cv2.LINE_AA,
        )
        cv2.putText(
            sheet,
            _ascii(score.name)[:26],
            (x + 2, y + _TILE + 29),
            font,
            0.38,
            (170, 170, 170),
            1,
            cv2.LINE_AA,
        )
    ok, data = cv2.imencode(".jpg", sheet, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise RuntimeError("OpenCV could not encode the likeness grid")
    out.write_bytes(data.tobytes())
    return out


def _ascii(text: str) -> str:
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)
