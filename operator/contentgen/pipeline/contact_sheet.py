"""A contact sheet: every dataset image on one JPEG, with its time in the video.

People judge a dataset faster by looking than by reading. The sheet is a grid of thumbnails
in the dataset's order, each labelled with its number and time (and a mark when a face was
found), under a title line. It is drawn with OpenCV alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

THUMB = 240
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
    images: Sequence[tuple[Path, float, bool]], out: Path, *, title: str, quality: int = 85
) -> Path:
    """Draw (image file, seconds into the video, face found) entries onto one JPEG at `out`."""
    columns, rows = layout(len(images))
    cell_h = THUMB + _LABEL
    width = columns * THUMB + (columns + 1) * _GAP
    height = _TITLE + rows * cell_h + (rows + 1) * _GAP
    sheet = np.full((height, width, 3), _BACKGROUND, np.uint8)
    ascii_title = "".join(c if 32 <= ord(c) < 127 else "?" for c in title)  # Hershey fonts are ASCII
    (text_width, _), _ = cv2.getTextSize(ascii_title, _FONT, 0.7, 1)
    size = 0.7 * min(1.0, (width - 2 * _GAP) / max(text_width, 1))  # a narrow sheet: smaller type
    cv2.putText(sheet, ascii_title, (_GAP, 28), _FONT, size, (255, 255, 255), 1, cv2.LINE_AA)
    for number, (path, seconds, face) in enumerate(images):
        row, column = divmod(number, columns)
        x = _GAP + column * (THUMB + _GAP)
        y = _TITLE + _GAP + row * (cell_h + _GAP)
        picture = cv2.imread(str(path))
        if picture is None:
            raise ValueError(f"{path} is not an image OpenCV can read")
        scale = THUMB / max(picture.shape[:2])
        thumb = cv2.resize(
            picture,
            (max(1, round(picture.shape[1] * scale)), max(1, round(picture.shape[0] * scale))),
            interpolation=cv2.INTER_AREA,
        )
        top, left = y + (THUMB - thumb.shape[0]) // 2, x + (THUMB - thumb.shape[1]) // 2
        sheet[top : top + thumb.shape[0], left : left + thumb.shape[1]] = thumb
        label = f"{number + 1:04d}  {clock(seconds)}" + ("  face" if face else "")
        cv2.putText(sheet, label, (x + 4, y + THUMB + 19), _FONT, 0.5, (230, 230, 230), 1, cv2.LINE_AA)
    ok, data = cv2.imencode(".jpg", sheet, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode the contact sheet")
    out.write_bytes(data.tobytes())
    return out
