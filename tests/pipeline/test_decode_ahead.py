"""Decoding on a thread of its own, ahead of the analysis (decode.DecodeAhead): the same frames
and the same scan as decoding in turn, a bounded queue, errors raised where the frames are
taken, and nothing left running or open when the consumer stops early."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from contentgen.errors import InvalidInput
from contentgen.pipeline.footage.decode import AHEAD, DecodeAhead, decode, luma
from contentgen.pipeline.footage.scan import ClosedScene, Scanner
from scripts.synthetic_video import SyntheticVideo, face_scene, other_scene, write_video
from tests.waiting import wait_for


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> SyntheticVideo:
    """12 s, 320×180 at 25 fps: faces and objects joined by hard cuts, a dissolve and a fade."""
    plan = [
        face_scene(2.5, variant=0),
        other_scene(2.0, "coffee", transition="dissolve", transition_seconds=1.0),
        face_scene(2.5, variant=1),
        other_scene(2.5, "rocket", transition="fade", transition_seconds=0.8),
        face_scene(2.5, variant=2, transition="dissolve", transition_seconds=0.6),
    ]
    return write_video(tmp_path_factory.mktemp("ahead") / "mixed.mp4", plan, width=320, height=180, fps=25)


def fingerprint(frame: av.VideoFrame) -> tuple[int | None, str]:
    y, _ = luma(frame, 160)
    return frame.pts, hashlib.sha256(np.ascontiguousarray(y).tobytes()).hexdigest()


def decoder_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("decode-")]


def open_descriptors(path: Path) -> int:
    """How many of this process's file descriptors are `path` (Linux's /proc)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile (listdir's own descriptor)
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path.resolve())
    return count


def test_the_same_frames_in_the_same_order(mixed: SyntheticVideo) -> None:
    expected = [fingerprint(frame) for frame in decode(mixed.path, skip_nonref=True)]
    with DecodeAhead(mixed.path, depth=3, skip_nonref=True) as ahead:
        got = [fingerprint(frame) for frame in ahead]

    assert len(expected) > 100
    assert got == expected
    assert ahead.decoded == len(expected)


def scan(video: SyntheticVideo, ahead: int) -> tuple[Scanner, list[ClosedScene]]:
    scanner = Scanner(
        video.path, fps=video.fps, duration=video.duration, progress=lambda _: None, ahead=ahead
    )
    return scanner, list(scanner)


def summary(scanner: Scanner, scenes: list[ClosedScene]) -> dict[str, object]:
    return {
        "scenes": scanner.scenes,
        "cuts": [(cut.index, cut.time, cut.kind, cut.guard) for cut in scanner.cuts],
        "frames": scanner.frames_decoded,
        "duration": scanner.duration,
        "candidates": [
            [
                (c.index, c.time, c.quality, c.sharpness, c.exposure, c.payload.area, c.payload.frame.pts)
                for c in scene.candidates
            ]
            for scene in scenes
        ],
        "pictures": [
            [hashlib.sha256(c.payload.gray.tobytes()).hexdigest() for c in scene.candidates]
            for scene in scenes
        ],
    }


def test_the_scan_is_the_same_ahead_or_in_turn(mixed: SyntheticVideo) -> None:
    in_turn = summary(*scan(mixed, ahead=0))
    for depth in (1, AHEAD):
        assert summary(*scan(mixed, ahead=depth)) == in_turn
    assert [kind for _, _, kind, _ in in_turn["cuts"]] == ["dissolve", "cut", "fade", "dissolve"]  # type: ignore[attr-defined]
    assert sum(map(len, in_turn["candidates"])) > 10  # type: ignore[arg-type]


def test_the_queue_bound_holds(mixed: SyntheticVideo) -> None:
    """However slowly the consumer goes, the decoder holds at most `depth` frames in the queue
    and one in its hand."""
    total = sum(1 for _ in decode(mixed.path, skip_nonref=True))
    depth = 4
    ahead_by: list[int] = []  # after each frame taken, once the decoder has run as far as it may
    with DecodeAhead(mixed.path, depth=depth, skip_nonref=True) as ahead:
        for consumed, _ in enumerate(ahead, start=1):
            limit = min(consumed + depth + 1, total)
            wait_for(lambda limit=limit: ahead.decoded >= limit, 30, "the decoder to fill the queue", 0.001)
            if consumed % 10 == 0:
                time.sleep(0.05)  # room for it to overstep, if it could
            ahead_by.append(ahead.decoded - consumed)

    assert len(ahead_by) == total
    assert max(ahead_by) == depth + 1  # it did run ahead: the bound was reached, and held
    assert ahead_by[: total - depth - 1] == [depth + 1] * (total - depth - 1)


def test_stopping_early_ends_the_thread_and_closes_the_file(mixed: SyntheticVideo) -> None:
    with DecodeAhead(mixed.path, depth=2) as ahead:
        for number, _ in enumerate(ahead):
            if number == 0:
                assert open_descriptors(mixed.path) == 1 and len(decoder_threads()) == 1
            if number == 5:
                break
    assert decoder_threads() == []
    assert open_descriptors(mixed.path) == 0
    assert list(ahead) == []  # closed: nothing more comes


def test_a_scan_given_up_ends_its_decoder(mixed: SyntheticVideo) -> None:
    """A consumer that raises mid-scan (the dataset stage's judging failed, a length limit): the
    Scanner's generator, closed, stops the decoder thread and closes the file."""
    scanner = Scanner(mixed.path, fps=mixed.fps, duration=mixed.duration, progress=lambda _: None)
    scenes = iter(scanner)
    next(scenes)
    assert len(decoder_threads()) == 1
    scenes.close()  # what a for loop's exception does to it (and garbage collection)
    assert decoder_threads() == []
    assert open_descriptors(mixed.path) == 0

    limited = Scanner(mixed.path, fps=mixed.fps, duration=0.0, progress=lambda _: None, max_seconds=3)
    with pytest.raises(InvalidInput, match="longer than the limit of 3 s"):
        for _ in limited:
            pass
    assert decoder_threads() == []
    assert open_descriptors(mixed.path) == 0


def test_an_unreadable_file_fails_in_the_consumer(tmp_path: Path) -> None:
    junk = tmp_path / "notes.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(InvalidInput, match=r"notes\.mp4 is not a readable video file"):
        frames(DecodeAhead(junk))
    assert decoder_threads() == []


def frames(ahead: DecodeAhead, into: list[tuple[int | None, str]] | None = None) -> None:
    """Take every frame of `ahead` in its with block, their fingerprints `into` a list."""
    with ahead:
        for frame in ahead:
            if into is not None:
                into.append(fingerprint(frame))


def all_frames(path: Path, into: list[tuple[int | None, str]]) -> None:
    for frame in decode(path, threads=1):
        into.append(fingerprint(frame))


def truncated(source: Path, out: Path, share: float) -> Path:
    """`source` remuxed with its index first (movflags=faststart) and cut off at `share`: the
    file opens, and decoding fails part-way, as with an interrupted upload."""
    whole = out.with_suffix(".whole.mp4")
    with av.open(str(source)) as src, av.open(str(whole), "w", options={"movflags": "faststart"}) as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    data = whole.read_bytes()
    out.write_bytes(data[: int(len(data) * share)])
    return out


def test_a_decoding_error_part_way_is_raised_in_the_consumer_after_the_frames_before_it(
    mixed: SyntheticVideo, tmp_path: Path
) -> None:
    """One decoder thread: FFmpeg's frame threads pass over the cut-off packet without an error
    (and skip_nonref may skip it), a single thread reports it."""
    broken = truncated(mixed.path, tmp_path / "broken.mp4", 0.6)
    before: list[tuple[int | None, str]] = []
    with pytest.raises(InvalidInput) as sequential:
        all_frames(broken, before)

    got: list[tuple[int | None, str]] = []
    with pytest.raises(InvalidInput) as ahead_error:
        frames(DecodeAhead(broken, depth=3, threads=1), got)

    assert 10 < len(before) < mixed.frames
    assert got == before
    assert str(ahead_error.value) == str(sequential.value)
    assert "cannot be decoded after" in str(ahead_error.value)
    assert decoder_threads() == []
    assert open_descriptors(broken) == 0


def test_an_error_in_the_consumer_leaves_nothing_running(mixed: SyntheticVideo) -> None:
    """The decoder blocked on a full queue when the consumer fails: it is stopped all the same."""
    ahead = DecodeAhead(mixed.path, depth=1)

    def analyse() -> None:
        with ahead:
            for _ in ahead:
                wait_for(lambda: ahead.decoded >= 2, 30, "the decoder to block on the full queue")
                raise RuntimeError("analysis failed")

    with pytest.raises(RuntimeError, match="analysis failed"):
        analyse()
    assert decoder_threads() == []
    assert open_descriptors(mixed.path) == 0


def test_depth_must_be_positive(mixed: SyntheticVideo) -> None:
    with pytest.raises(ValueError, match="depth"):
        DecodeAhead(mixed.path, depth=0)
    unused = DecodeAhead(mixed.path)
    with pytest.raises(RuntimeError, match="inside its with block"):
        list(unused)
    unused.close()


def test_the_dataset_is_the_same_ahead_or_in_turn(
    mixed: SyntheticVideo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole dataset stage, images byte for byte, with the decoder ahead or in turn."""
    from contentgen.pipeline import dataset
    from tests.harness.dataset import spec

    def images(folder: Path) -> list[tuple[float, str]]:
        built = dataset.build_dataset(mixed.path, spec(), "person", folder, lambda _: None)
        return [(image.time, hashlib.sha256(image.path.read_bytes()).hexdigest()) for image in built.images]

    ahead = images(tmp_path / "ahead")
    monkeypatch.setattr(dataset, "Scanner", functools.partial(Scanner, ahead=0))
    assert images(tmp_path / "in-turn") == ahead
    assert len(ahead) == 3  # the three face shots
