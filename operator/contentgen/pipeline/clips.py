"""A generated video as users get it, whatever provider made it: checked by decoding it (its frames,
rate, size and codec measured, not taken on trust), its index moved to the front when it is not
(`faststart`, remuxed without re-encoding), anything but H.264 (yuv420p) in an MP4 transcoded to
it, and the pictures a gallery shows of it: a poster (its first frame, JPEG) and a strip of frames
across it (one JPEG)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
import cv2
import numpy as np

from contentgen import h264
from contentgen.errors import PermanentError

STRIP_FRAMES = 8
STRIP_HEIGHT = 120  # pixels, each frame of the strip
JPEG_QUALITY = 88


@dataclass(frozen=True)
class ClipInfo:
    frames: int
    fps: float
    duration_seconds: float
    width: int
    height: int
    codec: str
    pix_fmt: str
    audio_codec: str = ""  # its first sound stream's codec; "" silent


def top_level_boxes(path: Path) -> list[str]:
    """The types of an MP4's top-level boxes, in file order (ftyp, moov, mdat, ...)."""
    boxes: list[str] = []
    size_total = path.stat().st_size
    with path.open("rb") as f:
        offset = 0
        while offset + 8 <= size_total:
            f.seek(offset)
            header = f.read(8)
            size, kind = struct.unpack(">I4s", header)
            if size == 1:  # a 64-bit size follows
                size = struct.unpack(">Q", f.read(8))[0]
            elif size == 0:  # to the end of the file
                size = size_total - offset
            if size < 8:
                break
            boxes.append(kind.decode("latin-1"))
            offset += size
    return boxes


def is_faststart(path: Path) -> bool:
    """Whether the index (moov) comes before the media (mdat): a player starts before the end."""
    boxes = top_level_boxes(path)
    return "moov" in boxes and "mdat" in boxes and boxes.index("moov") < boxes.index("mdat")


def with_faststart(path: Path, out: Path) -> Path:
    """`path` itself when its index comes first, else a copy remuxed so that it does (the same
    packets, no re-encoding) at `out`."""
    if is_faststart(path):
        return path
    try:
        with (
            av.open(str(path)) as src,
            av.open(str(out), "w", format="mp4", options={"movflags": "+faststart"}) as dst,
        ):
            source = src.streams.video[0]
            stream = dst.add_stream_from_template(source)
            for packet in src.demux(source):
                if packet.dts is None:
                    continue
                packet.stream = stream
                dst.mux(packet)
    except (av.error.FFmpegError, IndexError) as exc:
        raise PermanentError(
            f"the video cannot be remuxed with its index first: {exc}", reason="ProviderError"
        ) from None
    return out


# What a browser plays from an MP4 everywhere: H.264 in 8-bit 4:2:0. Anything else a provider
# delivers (VP9 or AV1 in WebM, HEVC, 10-bit) is transcoded to it.
PLAYABLE = ("h264", "yuv420p")
CRF = "18"  # a transcode of a paid video: visually lossless, not the placeholders' 28


class Delivered(NamedTuple):
    """The first video stream's codec and pixel format, and whether the file is an MP4."""

    codec: str
    pix_fmt: str
    mp4: bool

    @property
    def playable(self) -> bool:
        return self.mp4 and (self.codec, self.pix_fmt) == PLAYABLE


def delivered_codec(path: Path) -> Delivered:
    """What `path` holds, read from its headers without decoding; codec and pixel format "" when
    it cannot be read."""
    mp4 = top_level_boxes(path)[:1] == ["ftyp"]
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return Delivered("", "", mp4)
            context = container.streams.video[0].codec_context
            return Delivered(context.name, context.pix_fmt or "", mp4)
    except av.error.FFmpegError:
        return Delivered("", "", mp4)


def needs_transcode(path: Path) -> bool:
    """Whether the file is anything but H.264 (yuv420p) in an MP4."""
    return not delivered_codec(path).playable


def transcode(path: Path, out: Path) -> Path:
    """Every frame of `path`'s first video stream re-encoded as H.264 (yuv420p, even sides) in an
    MP4 whose index comes first, at its average frame rate, the same bytes every time (h264.py), so
    a retried pod writes what the first wrote (the stored video is written once)."""
    try:
        with (
            av.open(str(path)) as src,
            av.open(str(out), "w", format="mp4", options={"movflags": "+faststart"}) as dst,
        ):
            source = src.streams.video[0]
            width = source.codec_context.width // 2 * 2
            height = source.codec_context.height // 2 * 2
            rate = Fraction(source.average_rate or source.guessed_rate or 24)
            stream = h264.add_stream(dst, rate, width, height, CRF, "medium")
            for n, frame in enumerate(src.decode(source)):
                image = frame.reformat(width=width, height=height, format="yuv420p")
                image.pts, image.time_base = n, 1 / rate  # numbered again at the stream's rate
                for packet in stream.encode(image):
                    dst.mux(packet)
            for packet in stream.encode():
                dst.mux(packet)
    except (av.error.FFmpegError, IndexError, ValueError) as exc:
        raise PermanentError(
            f"the delivered video cannot be transcoded to H.264: {exc}", reason="ProviderError"
        ) from None
    return out


def describe(path: Path) -> ClipInfo:
    """What the video holds, by decoding every frame of its first video stream."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise PermanentError("the delivered file holds no video stream", reason="ProviderError")
            stream = container.streams.video[0]
            frames = sum(1 for _ in container.decode(stream))
            rate = float(stream.average_rate or stream.guessed_rate or 0)
            codec = stream.codec_context.name
            width, height = stream.codec_context.width, stream.codec_context.height
            pix_fmt = stream.codec_context.pix_fmt or ""
            audio = container.streams.audio[0].codec_context.name if container.streams.audio else ""
    except av.error.FFmpegError as exc:
        raise PermanentError(
            f"the delivered video cannot be decoded: {exc}", reason="ProviderError"
        ) from None
    if frames == 0:
        raise PermanentError("the delivered video has no frames", reason="ProviderError")
    duration = frames / rate if rate > 0 else 0.0
    return ClipInfo(frames, rate, round(duration, 4), width, height, codec, pix_fmt, audio)


def frames_at(path: Path, wanted: list[int]) -> dict[int, np.ndarray]:
    """The decoded frames (BGR) whose numbers (from 0) are in `wanted`."""
    found: dict[int, np.ndarray] = {}
    wanted_set = set(wanted)
    with av.open(str(path)) as container:
        for n, frame in enumerate(container.decode(container.streams.video[0])):
            if n in wanted_set:
                found[n] = frame.to_ndarray(format="bgr24")
            if len(found) == len(wanted_set):
                break
    return found


def jpeg(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise PermanentError("could not encode a JPEG of the video", reason="InvalidImage")
    return bytes(encoded.tobytes())


def strip_indexes(frames: int, count: int = STRIP_FRAMES) -> list[int]:
    """`count` frame numbers spread evenly from the first frame to the last."""
    if frames <= count:
        return list(range(frames))
    return sorted({round(i * (frames - 1) / (count - 1)) for i in range(count)})


def poster_and_strip(path: Path, info: ClipInfo) -> tuple[bytes, bytes]:
    """The poster (the first frame) and the strip (frames across the video, side by side) as JPEGs."""
    indexes = strip_indexes(info.frames)
    decoded = frames_at(path, [0, *indexes])
    poster = decoded[0]
    tiles = []
    for n in indexes:
        frame = decoded[n]
        h, w = frame.shape[:2]
        tiles.append(
            cv2.resize(
                frame, (max(1, round(w * STRIP_HEIGHT / h)), STRIP_HEIGHT), interpolation=cv2.INTER_AREA
            )
        )
    return jpeg(poster), jpeg(np.hstack(tiles))
