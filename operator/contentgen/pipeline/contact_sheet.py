"""A contact sheet: every dataset image on one JPEG, with its time in the video.

People judge a dataset faster by looking than by reading. The sheet is a grid of thumbnails
in the dataset's order, each labelled with its number and time (and a mark when a face was
found), under a title line. Below them, when the video showed people, one face of each person
told apart, numbered as in status.dataset.people (most screen time first), the subject framed in
green. It is drawn with OpenCV alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from contentgen.api.words import counted

THUMB = 240
FACE = 120
MAX_COLUMNS = 8
_LABEL = 26
_GAP = 6
_TITLE = 40
_BACKGROUND = (32, 32, 32)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def clock(seconds: float) -> str:
    """12.3 s as 0:12.3, 3725 s as 1:02:05.0."""
    minutes, rest = divmod(max(seconds, 0.0), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{rest:04.1f}" if hours else f"{minutes}:{rest:04.1f}"


def layout(count: int, max_columns: int = MAX_COLUMNS) -> tuple[int, int]:
    """(columns, rows) of a roughly square grid for `count` thumbnails."""
    columns = max(1, min(max_columns, math.ceil(math.sqrt(count))))
    return columns, max(1, math.ceil(count / columns))


def write_contact_sheet(
    images: Sequence[tuple[Path, float, bool]],
    out: Path,
    *,
    title: str,
    people: Sequence[tuple[bytes, str, bool]] = (),
    quality: int = 85,
) -> Path:
    """Draw (image file, seconds into the video, face found) entries onto one JPEG at `out`, and
    under them `people`: (a face as JPEG bytes, its label, whether it is the subject)."""
    columns, rows = layout(len(images)) if images else (0, 0)
    face_columns = min(len(people), max(columns, MAX_COLUMNS) * THUMB // FACE)
    face_rows = math.ceil(len(people) / face_columns) if people else 0
    width = max(columns * THUMB + (columns + 1) * _GAP, face_columns * (FACE + _GAP) + _GAP, 480)
    images_h = rows * (THUMB + _LABEL) + (rows + 1) * _GAP if images else 0
    height = _TITLE + images_h + (_TITLE + face_rows * (FACE + _LABEL + _GAP) if people else 0)
    sheet = np.full((height, width, 3), _BACKGROUND, np.uint8)
    _draw_title(sheet, title)
    for number, image in enumerate(images):
        _draw_frame(sheet, number, image, columns)
    if people:
        _draw_people(sheet, people, _TITLE + images_h, face_columns, dataset_shown=bool(images))
    ok, data = cv2.imencode(".jpg", sheet, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode the contact sheet")
    out.write_bytes(data.tobytes())
    return out


def _ascii(text: str) -> str:
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)  # Hershey fonts are ASCII


def _draw_title(sheet: np.ndarray, title: str) -> None:
    text = _ascii(title)
    (text_width, _), _ = cv2.getTextSize(text, _FONT, 0.7, 1)
    size = 0.7 * min(1.0, (sheet.shape[1] - 2 * _GAP) / max(text_width, 1))  # a narrow sheet: smaller type
    cv2.putText(sheet, text, (_GAP, 28), _FONT, size, (255, 255, 255), 1, cv2.LINE_AA)


def fitted(picture: np.ndarray, side: int) -> np.ndarray:
    """`picture` scaled to `side` pixels on its longer side (a sheet's tile), by area."""
    scale = side / max(picture.shape[:2])
    size = (max(1, round(picture.shape[1] * scale)), max(1, round(picture.shape[0] * scale)))
    return cv2.resize(picture, size, interpolation=cv2.INTER_AREA)


def _draw_frame(sheet: np.ndarray, number: int, image: tuple[Path, float, bool], columns: int) -> None:
    """Dataset image `number`'s thumbnail in its cell, labelled with its number and time."""
    path, seconds, face = image
    row, column = divmod(number, columns)
    x = _GAP + column * (THUMB + _GAP)
    y = _TITLE + _GAP + row * (THUMB + _LABEL + _GAP)
    picture = cv2.imread(str(path))
    if picture is None:
        raise ValueError(f"{path} is not an image OpenCV can read")
    thumb = fitted(picture, THUMB)
    top, left = y + (THUMB - thumb.shape[0]) // 2, x + (THUMB - thumb.shape[1]) // 2
    sheet[top : top + thumb.shape[0], left : left + thumb.shape[1]] = thumb
    label = f"{number + 1:04d}  {clock(seconds)}" + ("  face" if face else "")
    cv2.putText(sheet, label, (x + 4, y + THUMB + 19), _FONT, 0.5, (230, 230, 230), 1, cv2.LINE_AA)


def _draw_people(
    sheet: np.ndarray,
    people: Sequence[tuple[bytes, str, bool]],
    top: int,
    columns: int,
    *,
    dataset_shown: bool,
) -> None:
    """The people the video showed, one face each under a heading, the subject framed."""
    heading = f"{counted(len(people), 'person')} found (face, screen time)"
    if dataset_shown:
        heading += "; the dataset shows the subject only"
    cv2.putText(sheet, heading, (_GAP, top + 26), _FONT, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    for number, (jpeg, label, subject) in enumerate(people):
        row, column = divmod(number, columns)
        x = _GAP + column * (FACE + _GAP)
        y = top + _TITLE + row * (FACE + _LABEL + _GAP)
        picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        if picture is not None:
            sheet[y : y + FACE, x : x + FACE] = cv2.resize(
                picture, (FACE, FACE), interpolation=cv2.INTER_AREA
            )
        if subject:
            cv2.rectangle(sheet, (x, y), (x + FACE - 1, y + FACE - 1), (0, 200, 0), 3)
        cv2.putText(
            sheet, _ascii(label), (x + 2, y + FACE + 17), _FONT, 0.45, (230, 230, 230), 1, cv2.LINE_AA
        )
