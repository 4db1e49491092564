"""`contentgen run` of a fal VideoGeneration whose delivery is not H.264 in an MP4 (fal's pages
promise a File, not a codec): the fal fake delivers VP9 in WebM or HEVC in MP4, and the stored
video.mp4 is H.264 (yuv420p) with its index first, at the delivered frames and rate; the delivered
file is stored first as original.webm / original.mp4, and the record says what each is. A transcode
that fails loses nothing that was paid for: the original is stored already, and the next run
transcodes it without paying again."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import av
import pytest

from contentgen.catalog import open_catalog
from contentgen.cli.main import main
from contentgen.errors import PermanentError
from contentgen.pipeline import clips
from contentgen.pipeline.clips import is_faststart
from tests.conftest import EXAMPLES
from tests.providers.fake_fal import FAL_KEY, FakeFal
from tests.providers.fake_fal_video import VideoVariant
from tests.providers.fakes import mocked, unslept_retries

VIDEO = str(EXAMPLES / "videogeneration.yaml")  # wan-2.2-t2v, 33 frames at 16 fps, 832x480, fal


@pytest.fixture
def fal_workspace(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FAL_KEY", FAL_KEY)
    unslept_retries(monkeypatch)
    return workspace


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["run", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def local(uri: str) -> Path:
    assert uri.startswith("file://"), uri
    return Path(uri.removeprefix("file://"))


def stream_of(path: Path) -> tuple[str, str, int, float, int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        context = stream.codec_context
        return (
            context.name,
            context.pix_fmt,
            frames,
            float(stream.average_rate),
            context.width,
            context.height,
        )


def delivered(fal: FakeFal) -> bytes:
    [data] = [d for u, d in fal.files.items() if u.endswith("/output.mp4")]
    return data


@pytest.mark.parametrize(
    ("codec", "original", "said"),
    [("webm", "original.webm", "vp9/yuv420p"), ("hevc", "original.mp4", "hevc/yuv420p")],
)
def test_a_delivery_in_another_codec_is_stored_as_delivered_and_transcoded_to_h264(
    fal_workspace: Path, capsys: pytest.CaptureFixture[str], codec: str, original: str, said: str
) -> None:
    fal = FakeFal()
    fal.variant.video = VideoVariant(codec=codec)
    with mocked(fal):
        code, out = run(capsys, "--result", "r.json", VIDEO)
    assert code == 0, out
    assert (fal.accepted, fal.billed) == (1, 1)
    result = json.loads((fal_workspace / "r.json").read_text())
    video = result["video"]
    path = local(video["uri"])
    assert path.name == "video.mp4" and is_faststart(path)
    assert stream_of(path) == ("h264", "yuv420p", 33, 16.0, 852, 480)  # the fake's 16:9 at 480p
    assert (video["codec"], video["frames"], video["fps"]) == ("h264", 33, 16.0)
    # the paid file, byte for byte, beside it under the same version
    kept = local(video["originalUri"])
    assert kept.name == original and kept.parent == path.parent
    assert kept.read_bytes() == delivered(fal) and video["originalCodec"] == said
    assert stream_of(kept)[0] == ("vp9" if codec == "webm" else "hevc")
    uris = {a["uri"] for a in result["artifacts"]}
    assert video["originalUri"] in uris and video["uri"] in uris
    record = open_catalog().get(result["uid"])
    assert record is not None and record["versions"][-1]["video"]["originalCodec"] == said


def test_an_h264_delivery_is_only_remuxed_and_keeps_no_second_copy(
    fal_workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fal = FakeFal()  # H.264 in MP4, its index at the end
    with mocked(fal):
        code, out = run(capsys, "--result", "r.json", VIDEO)
    assert code == 0, out
    video = json.loads((fal_workspace / "r.json").read_text())["video"]
    path = local(video["uri"])
    assert is_faststart(path) and (video["originalUri"], video["originalCodec"]) == ("", "")
    assert [p.name for p in path.parent.iterdir() if p.name.startswith("original")] == []
    # remuxed: the same coded frames as delivered, not re-encoded
    with av.open(str(path)) as ours, av.open(_saved(fal_workspace, delivered(fal))) as theirs:
        mine = [bytes(p) for p in ours.demux(ours.streams.video[0]) if p.size]
        given = [bytes(p) for p in theirs.demux(theirs.streams.video[0]) if p.size]
    assert hashlib.sha256(b"".join(mine)).digest() == hashlib.sha256(b"".join(given)).digest()


def _saved(folder: Path, data: bytes) -> str:
    path = folder / "delivered.mp4"
    path.write_bytes(data)
    return str(path)


def test_a_transcode_that_fails_keeps_what_was_paid_for_and_the_next_run_pays_nothing(
    fal_workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fal = FakeFal()
    fal.variant.video = VideoVariant(codec="webm")
    transcode = clips.transcode

    def failing(path: Path, out: Path) -> Path:
        raise PermanentError(
            "the delivered video cannot be transcoded to H.264: boom", reason="ProviderError"
        )

    monkeypatch.setattr("contentgen.pipeline.videos.transcode", failing)
    with mocked(fal):
        code, out = run(capsys, VIDEO)
    assert code != 0 and "cannot be transcoded to H.264" in out and "Traceback" not in out
    [stored] = list(fal_workspace.rglob("generated-videos/*/*/v1/original.webm"))
    assert stored.read_bytes() == delivered(fal)  # stored before the conversion failed
    assert not list(fal_workspace.rglob("generated-videos/*/*/v1/video.mp4"))

    monkeypatch.setattr("contentgen.pipeline.videos.transcode", transcode)
    asked = len(fal.requests)
    with mocked(fal):
        code, out = run(capsys, "--result", "r.json", VIDEO)
    assert code == 0, out
    assert (fal.accepted, fal.billed) == (1, 1) and {k for k, _ in fal.requests[asked:]} == {"download"}
    video = json.loads((fal_workspace / "r.json").read_text())["video"]
    assert stream_of(local(video["uri"]))[:3] == ("h264", "yuv420p", 33)


def test_a_transcode_writes_the_same_bytes_every_time(tmp_path: Path) -> None:
    """A retried pod transcodes again, and video.mp4 is written once: it must be the same file."""
    from tests.providers.fake_fal_video import encode

    source = tmp_path / "delivered.webm"
    source.write_bytes(encode(17, 16, 320, 180, 3, "webm"))
    assert clips.needs_transcode(source) and clips.delivered_codec(source) == ("vp9", "yuv420p", False)
    first = clips.transcode(source, tmp_path / "a.mp4").read_bytes()
    assert first == clips.transcode(source, tmp_path / "b.mp4").read_bytes()
    assert not clips.needs_transcode(tmp_path / "a.mp4")
