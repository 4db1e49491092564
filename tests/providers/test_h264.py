"""Every stored video's H.264 (contentgen/h264.py): the same frames give the same bytes, on the
tests' tiny clips too, where x264's macroblock tree reads memory it has not written."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from contentgen import h264
from contentgen.providers.offline_video import encode
from tests.harness.frames import moving


def test_a_small_clip_is_the_same_bytes_whatever_the_heap_held(tmp_path: Path):
    frames = moving(9, 64)  # a disc crossing a gradient at 64 × 64: 2 encodings in 40 with the tree

    def given() -> Iterator[np.ndarray]:
        for frame in frames:
            held = [bytearray(os.urandom(100_000)) for _ in range(4)]  # what x264 may read unwritten
            del held
            yield frame

    encodings = {
        encode(tmp_path / f"{n}.mp4", given(), fps=16, width=64, height=64).read_bytes() for n in range(12)
    }
    assert len(encodings) == 1


def test_only_small_frames_go_without_the_macroblock_tree():
    assert h264.options(28, "veryfast", 64, 640)["x264-params"] == "mbtree=0"
    assert "x264-params" not in h264.options(28, "veryfast", 1280, 720)  # half the bytes with it
    assert h264.options(17, "medium", 128, 128) == {"crf": "17", "preset": "medium", "threads": "1"}
