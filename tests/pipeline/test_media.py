"""probe(): what a media file holds, and one clear line when it is unusable."""

from __future__ import annotations

from pathlib import Path

import pytest

from contentgen.errors import InvalidInput
from contentgen.pipeline.media import probe
from scripts.synthetic_video import SyntheticVideo


def test_video_with_audio(shots: SyntheticVideo) -> None:
    info = probe(shots.path)

    assert info.has_video and info.has_audio
    assert (info.width, info.height) == (320, 180)
    assert info.fps == pytest.approx(24)
    assert info.duration == pytest.approx(shots.duration, abs=0.1)
    assert abs(info.frames - shots.frames) <= 1
    assert info.codec == "h264" and info.audio_codec == "aac"


def test_video_without_audio(random_shots: SyntheticVideo) -> None:
    info = probe(random_shots.path, require_video=True)

    assert info.has_video and not info.has_audio
    assert info.fps == pytest.approx(30)


def test_audio_only_probes_fine(audio_only: Path) -> None:
    info = probe(audio_only)

    assert info.has_audio and not info.has_video
    assert info.codec == "aac"
    assert info.duration == pytest.approx(2.0, abs=0.1)
    assert (info.width, info.height, info.frames) == (0, 0, 0)


def test_audio_only_refused_where_pictures_are_needed(audio_only: Path) -> None:
    with pytest.raises(InvalidInput, match=r"voice\.m4a has no video stream") as caught:
        probe(audio_only, require_video=True)

    assert caught.value.reason == "InvalidInput"


@pytest.mark.parametrize(
    "content",
    [b"these are my notes, not a video\n" * 20, b"", bytes(range(256)) * 64],
    ids=["text", "empty", "noise"],
)
def test_not_media(tmp_path: Path, content: bytes) -> None:
    fake = tmp_path / "holiday.mp4"
    fake.write_bytes(content)

    with pytest.raises(InvalidInput) as caught:
        probe(fake)

    message = str(caught.value)
    assert message.startswith("holiday.mp4 is not a readable audio or video file")
    assert "MP4" in message  # says what to do
    assert "\n" not in message
    assert str(tmp_path) not in message  # names the file, not the worker's scratch path


def test_truncated_video(tmp_path: Path, shots: SyntheticVideo) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(shots.path.read_bytes()[:2000])

    with pytest.raises(InvalidInput, match=r"cut\.mp4"):
        probe(cut)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"gone\.mp4: no such file"):
        probe(tmp_path / "gone.mp4")
