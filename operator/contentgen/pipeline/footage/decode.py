"""One multithreaded decode pass with PyAV, and cheap views of the decoded frames.

`DecodeAhead` runs the decode on a thread of its own, a few frames ahead of the analysis, so
that FFmpeg's decoder threads are not left waiting while a frame is analysed.

The analysis works on luma only: for the usual 8-bit YUV formats the Y plane is read in place
(no copy, no colour conversion) and shrunk with OpenCV's area filter. Full colour is made only
for the few frames that end up in the dataset (`to_bgr`).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Generator, Iterator
from pathlib import Path
from types import TracebackType

import av
import cv2
import numpy as np

from contentgen.errors import InvalidInput

# 8-bit formats whose first plane is the luma plane, one byte per pixel.
_LUMA_PLANE_FORMATS = frozenset(
    {
        *("yuv420p", "yuv422p", "yuv444p", "yuv440p", "yuv411p", "yuv410p"),
        *("yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p"),
        *("yuva420p", "yuva422p", "yuva444p"),
        *("nv12", "nv21", "nv16", "nv24", "nv42", "gray"),
    }
)
_FULL_RANGE_FORMATS = frozenset({"yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p", "gray"})
# Frames DecodeAhead may hold for the analysis: 8 frames of 1080p 4:2:0 are 25 MB.
AHEAD = 8


def decode(
    path: Path, *, threads: int = 0, skip_nonref: bool = False
) -> Generator[av.VideoFrame, None, None]:
    """Every frame of the first video stream, decoded with frame and slice threads.

    `threads=0` picks the number: FFmpeg's own choice (one per core, and one more), or with
    `skip_nonref` two per core (`decoder_threads`). `skip_nonref` has the decoder drop the frames
    no other frame is predicted from (FFmpeg's skip_frame=NONREF): for x264's usual output
    that is 4 in 10 frames, and skipping them costs the others nothing. Intra-only and
    B-frame-free streams (many phone recordings) lose none. Decoding errors become `InvalidInput`.
    """
    name = path.name
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as error:
        raise InvalidInput(f"{name} is not a readable video file ({error}); check the source") from error
    with container:
        if not container.streams.video:
            raise InvalidInput(f"{name} has no video stream; point the source at a video file")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.thread_count = threads or decoder_threads(skip_nonref)
        if skip_nonref:
            stream.codec_context.skip_frame = "NONREF"
        last_time = 0.0
        try:
            for frame in container.decode(stream):
                if frame.time is not None:
                    last_time = frame.time
                yield frame
        except av.FFmpegError as error:
            raise InvalidInput(
                f"{name} cannot be decoded after {last_time:.1f} s ({error.strerror or error}); "
                "the file is damaged or truncated: upload it again or re-encode it"
            ) from error


def decoder_threads(skip_nonref: bool) -> int:
    """Frame threads for a decode: 0 (FFmpeg's choice: one per core and one more), or with
    `skip_nonref` two per core (at most 16). Each frame thread holds one packet; a skipped
    packet's thread is done at once, so with FFmpeg's number the cores are left idle part of the
    time: on 2 cores a 1080p decode without the non-reference frames took 7.0 s with 4 threads
    against 8.2-9.0 s with 3, for the same CPU time (bench/README.md)."""
    if not skip_nonref:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(16, 2 * cores)


class _End:
    """The decoder thread's last word: the end of the stream, or the error that ended it."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class DecodeAhead:
    """`decode(path)` on a thread of its own, up to `depth` frames ahead of the consumer.

    PyAV releases the GIL while it demuxes and decodes, so the decoder (and FFmpeg's frame
    threads behind it) keeps working while the consumer analyses a frame, instead of waiting
    for its next call. Memory is bounded: at most `depth` decoded frames wait in the queue, and
    one more is in the decoder thread's hand while the queue is full (`depth` + 1 frames beyond
    the consumer's own; 3.1 MB each at 1080p 4:2:0). The frames come out in the same order and
    are the same frames as `decode`'s; an error of the decode (`InvalidInput` for an unreadable
    or damaged file) is raised in the consumer, at the point in the stream where it happened.

    Use it as a context manager: leaving the block (at the end, on an error, or when the
    consumer stops early) stops the thread, which closes the container, and waits for it.
    """

    def __init__(
        self, path: Path, *, depth: int = AHEAD, threads: int = 0, skip_nonref: bool = False
    ) -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, not {depth}")
        self.path, self.depth = path, depth
        self.decoded = 0  # frames the decoder thread has taken from the decoder so far
        self._frames = decode(path, threads=threads, skip_nonref=skip_nonref)
        self._queue: queue.Queue[av.VideoFrame | _End] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, name=f"decode-{path.name}", daemon=True)

    def __enter__(self) -> DecodeAhead:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[av.VideoFrame]:
        if self._thread.ident is None:
            raise RuntimeError("DecodeAhead is iterated inside its with block only")
        while not self._done:
            item = self._queue.get()
            if isinstance(item, _End):
                self._done = True
                if item.error is not None:
                    raise item.error
                return
            yield item

    def _run(self) -> None:
        frames = self._frames
        try:
            for frame in frames:
                self.decoded += 1
                if self._stop.is_set():
                    return
                self._queue.put(frame)  # waits while `depth` frames wait: the bound
            self._queue.put(_End())
        except BaseException as error:  # handed to the consumer, raised there
            self._queue.put(_End(error))
        finally:
            frames.close()  # closes the container

    def close(self) -> None:
        """Stop the decoder thread and wait for it (it closes the container); frames it had
        decoded and the consumer had not taken are let go. Idempotent."""
        self._stop.set()
        self._done = True
        while self._thread.is_alive():
            # Make room, so that a thread blocked on a full queue sees the stop (it puts at
            # most one more item after each emptying).
            self._drain()
            self._thread.join(timeout=0.05)
        self._drain()
        if not self._thread.ident:  # never started: the generator never opened the file
            self._frames.close()

    def _drain(self) -> None:
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass


def luma(frame: av.VideoFrame, long_side: int) -> tuple[np.ndarray, bool]:
    """The frame's luma as a 2-D uint8 array, and whether it spans 0-255 (else 16-235).

    For 8-bit YUV it is a view of the Y plane, full size, no copy. Other formats (10-bit,
    RGB) go through libswscale, which also halves the size while the long side stays at
    least `long_side` (no need to convert pixels the analysis drops) and outputs 0-255.
    """
    if frame.format.name in _LUMA_PLANE_FORMATS:
        plane = frame.planes[0]
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
        return rows[:, : plane.width], is_full_range(frame)
    width, height = frame.width, frame.height
    while max(width, height) // 2 >= long_side:
        width, height = width // 2, height // 2
    gray = frame.reformat(width=width, height=height, format="gray", interpolation="AREA")
    return gray.to_ndarray(), True


def is_full_range(frame: av.VideoFrame) -> bool:
    """True when the frame's luma spans 0-255 (JPEG range), False for video's usual 16-235."""
    return frame.format.name in _FULL_RANGE_FORMATS or frame.color_range == 2


def reduce(gray: np.ndarray, long_side: int) -> np.ndarray:
    """Halve `gray` (2×2 area averages) while its long side stays at least `long_side`.

    OpenCV's area filter has a fast path for exactly half the size, so analysis sizes are the
    source's size over a power of two: a long side in [long_side, 2 × long_side).
    """
    while max(gray.shape) // 2 >= long_side:
        height, width = gray.shape
        even = gray[: height - height % 2, : width - width % 2]
        gray = cv2.resize(even, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    return gray


def thumbnail(gray: np.ndarray, long_side: int) -> np.ndarray:
    """`gray` shrunk by a power of two f to a long side in [long_side, 2 × long_side), cheaply.

    Each output pixel averages f neighbouring pixels of every f-th row, so only 1/f of the
    rows are read: the frame was just written by a decoder thread on another core, so memory
    reads are what costs (~60 µs for 720p instead of ~250 µs for a full area reduction).
    """
    height, width = gray.shape
    factor = 1
    while max(height, width) // (factor * 2) >= long_side:
        factor *= 2
    if factor == 1:
        return np.ascontiguousarray(gray)
    height, width = height - height % factor, width - width % factor
    rows = gray[:height:factor, :width]
    return cv2.resize(rows, (width // factor, height // factor), interpolation=cv2.INTER_AREA)


def expand_range(gray: np.ndarray) -> np.ndarray:
    """Map video-range luma (16-235) to 0-255, so exposure limits mean the same for every source."""
    return cv2.convertScaleAbs(gray, alpha=255 / 219, beta=-16 * 255 / 219)


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a frame's display rotation (PyAV's `frame.rotation`, degrees counter-clockwise)."""
    turns = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def to_bgr(frame: av.VideoFrame) -> np.ndarray:
    """The frame in full colour (BGR, for OpenCV), the right way up."""
    return upright(frame.to_ndarray(format="bgr24"), frame.rotation)
