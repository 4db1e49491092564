"""A clip's frames as one picture: what a training's watch is handed for a video LoRA's checkpoint
(providers/watch.py: `Drawer.generate_images` answers pictures), so that every part of the
likeness evaluation that keeps, stores, draws and bills pictures does so for clips unchanged, and
its scorer scores each frame (pipeline/likeness/evaluation.py).

The picture is a mosaic of `FRAMES` frames sampled across the clip, first to last, two by two
(each frame at the clip's own size), a PNG whose text chunks say how to read it back: its layout
(`contentgen.frames`, "2x2") and each frame's time in the clip (`contentgen.frame_times`, seconds).
A picture without them is one picture. Pure but for the PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

FRAMES = 4  # frames of a clip a checkpoint is scored on: first, a third, two thirds, last
COLUMNS = 2
LAYOUT_KEY, TIMES_KEY = "contentgen.frames", "contentgen.frame_times"
HEAD = 4096  # the PNG's signature, header and text chunks lie within it


def sampled(frames: int, count: int = FRAMES, skip_first: bool = False) -> list[int]:
    """`count` frame numbers spread from the first to the last (after the first with `skip_first`:
    an image-to-video clip's first frame is the picture it was given) (pure)."""
    first = 1 if skip_first and frames > 1 else 0
    span = frames - 1 - first
    if span + 1 <= count:
        return list(range(first, frames))
    return sorted({first + round(i * span / (count - 1)) for i in range(count)})


def write(path: Path, frames: Sequence[np.ndarray], times: Sequence[float]) -> Path:
    """RGB frames (H × W × 3, uint8, all one size) as the mosaic PNG at `path`."""
    import numpy as np
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    height, width = frames[0].shape[:2]
    rows = -(-len(frames) // COLUMNS)
    mosaic = np.zeros((rows * height, COLUMNS * width, 3), np.uint8)
    for n, frame in enumerate(frames):
        top, left = (n // COLUMNS) * height, (n % COLUMNS) * width
        mosaic[top : top + height, left : left + width] = frame
    info = PngInfo()
    info.add_text(LAYOUT_KEY, f"{COLUMNS}x{rows}:{len(frames)}")
    info.add_text(TIMES_KEY, ",".join(f"{t:g}" for t in times))
    Image.fromarray(mosaic).save(path, format="PNG", pnginfo=info)
    return path


def read(path: Path) -> list[tuple[float, np.ndarray]] | None:
    """A mosaic's frames (their times and BGR pixels, as OpenCV reads pictures), or None for a
    picture that is not one."""
    with path.open("rb") as fh:  # its text chunks come before the pixels: no PIL for a picture
        head = fh.read(HEAD)
    if not head.startswith(b"\x89PNG") or LAYOUT_KEY.encode() not in head:
        return None
    import numpy as np
    from PIL import Image

    with Image.open(path) as opened:
        said = getattr(opened, "text", {})
        layout, times = said.get(LAYOUT_KEY), said.get(TIMES_KEY)
        if not layout or times is None:
            return None
        array = np.asarray(opened.convert("RGB"))
    shape, _, count = layout.partition(":")
    columns, rows = (int(n) for n in shape.split("x"))
    height, width = array.shape[0] // rows, array.shape[1] // columns
    stamps = [float(t) for t in times.split(",") if t]
    frames = []
    for n in range(int(count)):
        top, left = (n // columns) * height, (n % columns) * width
        frames.append((stamps[n], np.ascontiguousarray(array[top : top + height, left : left + width, ::-1])))
    return frames
