"""H.264 (yuv420p) as every video this project stores is encoded: the same frames give the same
bytes, so a retried pod writes what the first one wrote (a stored object is written once).

Two settings make it so. One encoder thread: x264's threads share the work by timing. And on small
frames, x264's macroblock-tree rate control (`mbtree`) off: there it reads memory it has not
written, so the same frames came out as one of several encodings (a disc crossing a gradient, the
tests' tiny clips: at 64 × 64, 2 encodings in 40 encodes, 21 in 40 once the process's heap held
other bytes; at 80 × 256, 11 in 20; PyAV 18's libx264, tests/providers/test_h264.py). Every case
found had a side of 80 pixels or less; none was found with both sides of 96 or more (square sides
96 to 640, the sample video's frames at 128 × 96 to 1280 × 720). Larger frames keep it: with it off
they took 1.8 to 2.4 times the bytes at the same quality setting (the sample video at 1280 × 720).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

# the side under which a frame is encoded without the macroblock tree (see the module)
SMALL = 128


def options(crf: int | str, preset: str, width: int, height: int) -> dict[str, str]:
    """x264's options for a constant quality `crf` at `preset`'s speed: the same bytes every time."""
    chosen = {"crf": str(crf), "preset": preset, "threads": "1"}
    return chosen | ({"x264-params": "mbtree=0"} if min(width, height) < SMALL else {})


def add_stream(
    container: Any, rate: int | Fraction, width: int, height: int, crf: int | str, preset: str
) -> Any:
    """An H.264 stream of `container` (an output container PyAV opened) for `width` × `height`
    frames at `rate` a second."""
    stream = container.add_stream("libx264", rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.thread_count = 1
    stream.options = options(crf, preset, width, height)
    return stream
