"""What a media file holds, read from its container header with PyAV (nothing is decoded)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from contentgen.errors import InvalidInput


@dataclass(frozen=True)
class MediaInfo:
    """The streams of an audio or video file.

    `duration` is in seconds (0.0 when the container does not say); `frames` is an estimate
    (the container's count, else duration × fps). The video fields are 0 without a video
    stream; `codec` names the video codec, or the audio codec of an audio-only file.
    """

    path: Path
    duration: float
    width: int
    height: int
    fps: float
    frames: int
    has_video: bool
    has_audio: bool
    codec: str
    audio_codec: str = ""
    container: str = ""


def probe(path: Path, *, require_video: bool = False) -> MediaInfo:
    """Read `path`'s streams; raise `InvalidInput` when it is no usable audio or video file.

    Audio-only files probe fine (has_video False) unless `require_video`, for stages that need
    pictures. Every error names the file and says what to do, in one line.
    """
    path = Path(path)
    name = path.name or str(path)
    with _opened(path, name) as container:
        video, audio = _streams(container, name, require_video)
        duration = _duration(container, video or audio)
        audio_codec = audio.codec_context.name if audio is not None and audio.codec_context else ""
        if video is None:
            return MediaInfo(
                path, duration, 0, 0, 0.0, 0, False, True, audio_codec, audio_codec, container.format.name
            )
        return _of_video(path, name, container, video, duration, audio is not None, audio_codec)


def _opened(path: Path, name: str) -> av.container.InputContainer:
    if not path.is_file():
        raise InvalidInput(f"{name}: no such file; check the source URL")
    try:
        return av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
        raise InvalidInput(
            f"{name} is not a readable audio or video file ({_ffmpeg_reason(error)}); "
            "point the source at a video such as an MP4 (H.264) or an audio file"
        ) from error


def _streams(
    container: av.container.InputContainer, name: str, require_video: bool
) -> tuple[av.video.stream.VideoStream | None, av.audio.stream.AudioStream | None]:
    """The first video and audio streams; refused where there is neither, or no video is wanted."""
    video = container.streams.video[0] if container.streams.video else None
    audio = container.streams.audio[0] if container.streams.audio else None
    if video is None and audio is None:
        raise InvalidInput(f"{name} has no audio or video stream; point the source at a video or audio file")
    if video is None and require_video:
        raise InvalidInput(
            f"{name} has no video stream (it holds only audio); a LoRA is trained from the "
            "pictures of a video: point the source at a video file"
        )
    return video, audio


def _of_video(
    path: Path,
    name: str,
    container: av.container.InputContainer,
    video: av.video.stream.VideoStream,
    duration: float,
    has_audio: bool,
    audio_codec: str,
) -> MediaInfo:
    if video.codec_context is None:
        raise InvalidInput(
            f"{name}: its video codec cannot be decoded here; re-encode it as H.264 (MP4) and retry"
        )
    rate = video.average_rate or video.guessed_rate or video.base_rate
    fps = float(rate) if rate else 0.0
    return MediaInfo(
        path=path,
        duration=duration,
        width=video.codec_context.width,
        height=video.codec_context.height,
        fps=fps,
        frames=video.frames if video.frames > 0 else round(duration * fps),
        has_video=True,
        has_audio=has_audio,
        codec=video.codec_context.name,
        audio_codec=audio_codec,
        container=container.format.name,
    )


def _duration(container: av.container.InputContainer, stream: av.stream.Stream | None) -> float:
    if stream is not None and stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


def _ffmpeg_reason(error: Exception) -> str:
    """FFmpeg's own words without the errno and path PyAV adds around them."""
    if isinstance(error, av.FFmpegError) and error.strerror:
        return str(error.strerror).lower()
    return str(error).splitlines()[0] if str(error) else type(error).__name__
