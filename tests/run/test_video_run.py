"""`contentgen run` of a VideoGeneration on the offline provider: a real MP4 (H.264, yuv420p, its
index before its media) that PyAV decodes at the asked frames and rate, its poster, thumbnail and
strip beside it under its version, the result, status-like version and catalog record describing
it; an imageRef to an ImageGeneration's picture resolved and kept as lineage; no key written twice."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import av
import cv2
import pytest
import yaml

from contentgen.api import RunResult
from contentgen.catalog import open_catalog
from contentgen.cli.main import main
from contentgen.pipeline.clips import is_faststart, top_level_boxes
from tests.conftest import EXAMPLES


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out + out.err


def local(uri: str) -> Path:
    assert uri.startswith("file://"), uri
    return Path(uri.removeprefix("file://"))


def test_a_text_to_video_run_makes_a_playable_mp4(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, "run", "--offline", "--result", "r.json", str(EXAMPLES / "videogeneration.yaml"))
    assert code == 0, out
    result = RunResult.model_validate_json((workspace / "r.json").read_text())
    assert (result.kind, result.provider, result.placeholder, result.version) == (
        "VideoGeneration",
        "offline",
        True,
        1,
    )
    video = result.video
    assert video is not None
    path = local(video.uri)
    assert "/generated-videos/demo-user/" in video.uri and video.uri.endswith(f"/{result.uid}/v1/video.mp4")
    assert is_faststart(path) and top_level_boxes(path)[:1] == ["ftyp"]  # moov before mdat
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert float(stream.average_rate) == 16
        frames = sum(1 for _ in container.decode(stream))
    assert (video.frames, frames, video.fps, video.duration_seconds) == (33, 33, 16, pytest.approx(33 / 16))
    assert (video.width, video.height, video.codec) == (832, 480, "h264")
    data = path.read_bytes()
    assert (len(data), hashlib.sha256(data).hexdigest()) == (video.size_bytes, video.sha256)
    poster = cv2.imread(str(local(video.poster_uri)))
    thumb = cv2.imread(str(local(video.thumbnail_uri)))
    strip = cv2.imread(str(local(video.strip_uri)))
    assert poster.shape[:2] == (480, 832) and max(thumb.shape[:2]) == 320
    assert strip.shape[0] == 120 and strip.shape[1] > 8 * 200  # eight frames side by side
    assert video.thumbnail_uri.endswith("/v1/thumbs/poster.jpg")
    derived = {video.poster_uri, video.thumbnail_uri, video.strip_uri}
    assert {a.uri for a in result.artifacts} == {video.uri, *derived}
    assert result.usage == [] or all(line.quantity == pytest.approx(33 / 16) for line in result.usage or [])

    record = open_catalog().get(result.uid)
    assert record is not None and record["type"] == "video-generation" and record["status"] == "Succeeded"
    assert record["durationSeconds"] == pytest.approx(33 / 16) and record["video"]["uri"] == video.uri
    assert record["versions"][0]["video"]["frames"] == 33

    # a second run is a new version, under its own keys: nothing is written twice
    code, out = run(capsys, "run", "--offline", "--result", "r2.json", str(EXAMPLES / "videogeneration.yaml"))
    assert code == 0, out
    second = RunResult.model_validate_json((workspace / "r2.json").read_text())
    assert second.version == 2 and second.video is not None and "/v2/video.mp4" in second.video.uri
    assert path.read_bytes() == data  # v1 untouched

    code, out = run(capsys, "assets", "list", "--type", "video-generation", "-o", "table")
    assert code == 0 and "video-generation" in out and "2.1 s 832x480 video" in out


def test_an_image_ref_animates_the_picture_and_keeps_the_lineage(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, "run", "--offline", str(EXAMPLES / "imagegeneration.yaml"))
    assert code == 0, out
    manifest = yaml.safe_load((EXAMPLES / "videogeneration-portrait.yaml").read_text())
    manifest["spec"]["imageRef"] = {"name": "demo-landscape", "image": 2}
    (workspace / "clip.yaml").write_text(yaml.safe_dump(manifest))
    code, out = run(capsys, "run", "--offline", "--result", "r.json", "clip.yaml")
    assert code == 0, out
    result = RunResult.model_validate_json((workspace / "r.json").read_text())
    assert result.image is not None and result.video is not None
    assert (result.image.name, result.image.version, result.image.image) == ("demo-landscape", 1, 2)
    assert result.image.uri.endswith("/v1/image_2.png")
    # the landscape_4_3 picture (1024x768) sets the frame's aspect: 4:3 at 480p
    assert (result.video.width, result.video.height, result.video.frames) == (640, 480, 32)

    code, out = run(capsys, "assets", "get", "demo-avatar-clip", "-o", "table")
    assert code == 0 and "2.0 s video (32 frames at 16 fps, 640x480 h264)" in out
    assert "animates demo-landscape v1 image 2" in out

    code, out = run(capsys, "assets", "lineage", "demo-avatar-clip")
    assert code == 0, out
    lineage = json.loads(out)
    (picture,) = lineage["pictures"]
    assert picture["found"] and picture["imageGeneration"]["name"] == "demo-landscape"
    assert picture["prompt"].startswith("A lighthouse")

    manifest["spec"]["imageRef"] = {"name": "demo-landscape", "image": 3}  # it made two
    (workspace / "clip.yaml").write_text(yaml.safe_dump(manifest))
    code, out = run(capsys, "run", "--offline", "clip.yaml")
    assert code != 0 and "image 3" in out and "has 2 images" in out


def test_a_video_of_a_lora_picture_measures_the_likeness_over_time(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """make demo's chain: the LoRA, a picture made with it, the picture animated. The picture's
    LoRAs ride with it (lineage), and the video is measured against that LoRA's person, frame by
    frame: the offline picture shows the LoRA's simulated likeness (providers/offline_subject.py),
    which the clip keeps, and the report says the frames show the picture, nothing generated."""
    sample = str(EXAMPLES / "media" / "sample.mp4")
    code, out = run(capsys, "run", "--offline", "--source", sample, str(EXAMPLES / "loratraining.yaml"))
    assert code == 0, out
    code, out = run(capsys, "run", "--offline", str(EXAMPLES / "imagegeneration-lora.yaml"))
    assert code == 0, out
    code, out = run(
        capsys, "run", "--offline", "--result", "r.json", str(EXAMPLES / "videogeneration-portrait.yaml")
    )
    assert code == 0, out
    result = RunResult.model_validate_json((workspace / "r.json").read_text())
    assert result.image is not None and [lora.name for lora in result.image.loras] == ["demo-avatar"]
    assert result.video is not None and result.video.likeness is not None
    likeness = result.video.likeness
    assert likeness.lora is not None and likeness.lora.name == "demo-avatar"
    assert likeness.verdict == "good" and likeness.median is not None and likeness.median > likeness.threshold
    assert len(likeness.samples) == 16 and all(s.faces == 1 and s.score is not None for s in likeness.samples)
    assert "made by the offline provider" in likeness.reasons[-1]
    assert re.search(r"stages: .*, likeness \d+\.\ds", out), out  # the stage is timed
    # the run says where its video is, and how alike it measured
    assert f"  video 480x640, 2.0 s: {result.video.uri}\n" in out
    assert f"  likeness over time: good: the face is the person: median {likeness.median:.2f}" in out

    code, out = run(capsys, "assets", "get", "demo-avatar-clip", "-o", "table")
    assert code == 0 and f"likeness over time good, median {likeness.median:.2f}" in out
    record = open_catalog().get(result.uid)
    assert record is not None and record["versions"][-1]["video"]["likeness"]["verdict"] == "good"


def test_a_video_of_a_picture_made_with_a_promoted_checkpoint_keeps_its_likeness(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """make demo promotes a checkpoint before it draws the portrait: the picture's LoRA is then the
    checkpoint's file (checkpoints/step-000500.safetensors, not the version's model.safetensors),
    and the clip is still measured against the LoRA version's person (its faces.json). Lineage
    names which checkpoint each version of the picture was made with, and who had chosen it."""
    sample = str(EXAMPLES / "media" / "sample.mp4")
    code, out = run(capsys, "run", "--offline", "--source", sample, str(EXAMPLES / "loratraining.yaml"))
    assert code == 0, out
    code, out = run(capsys, "run", "--offline", str(EXAMPLES / "imagegeneration-lora.yaml"))  # v1
    assert code == 0, out
    code, out = run(capsys, "assets", "promote", "demo-avatar", "--step", "500", "--note", "less burnt")
    assert code == 0, out
    code, out = run(capsys, "run", "--offline", str(EXAMPLES / "imagegeneration-lora.yaml"))  # v2
    assert code == 0, out
    code, out = run(
        capsys, "run", "--offline", "--result", "r.json", str(EXAMPLES / "videogeneration-portrait.yaml")
    )
    assert code == 0, out
    result = RunResult.model_validate_json((workspace / "r.json").read_text())
    assert result.video is not None and result.video.likeness is not None
    likeness = result.video.likeness
    assert likeness.lora is not None and likeness.lora.uri.endswith("/v1/checkpoints/step-000500.safetensors")
    assert likeness.verdict in ("good", "poor") and likeness.median is not None, likeness.reasons
    assert all(s.faces == 1 for s in likeness.samples)

    code, out = run(capsys, "assets", "lineage", "demo-avatar-portrait")
    assert code == 0, out
    uses = {use["step"]: use for use in json.loads(out)["loras"]}
    automatic = uses[next(s for s in uses if s != 500)]
    assert automatic["usedBy"] == [1] and automatic["promotion"] is None
    assert automatic["uri"].endswith("/v1/model.safetensors")
    assert automatic["step"] == automatic["trained"]["chosenStep"]  # the run's choice
    promoted = uses[500]
    assert promoted["usedBy"] == [2] and promoted["uri"].endswith("/v1/checkpoints/step-000500.safetensors")
    assert (promoted["promotion"]["promotion"], promoted["promotion"]["note"]) == (1, "less burnt")
    code, out = run(capsys, "assets", "lineage", "demo-avatar-portrait", "-o", "table")
    assert code == 0, out
    lines = [line.strip() for line in out.splitlines() if "made with LoRA" in line]
    lora, by = f"made with LoRA demo-avatar {promoted['uid']} v1", promoted["promotion"]["by"]
    assert lines == [
        f"{lora} step 500 (promoted by {by}, p1) (scale 0.8), by its v2",
        f"{lora} step {automatic['step']} (the automatic choice) (scale 0.8), by its v1",
    ]


def test_a_lora_training_lora_is_refused_before_anything_is_made(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A FLUX.1 LoRA (a LoraTraining's by default), which no video model loads: by loraRef the run is
    refused as the reference resolves, by its stored file's URL it stops before the provider (what the
    file is made for read from its version's stored result)."""
    sample = str(EXAMPLES / "media" / "sample.mp4")
    code, out = run(
        capsys,
        "run",
        "--offline",
        "--source",
        sample,
        "--result",
        "lora.json",
        str(EXAMPLES / "loratraining.yaml"),
    )
    assert code == 0, out
    trained = RunResult.model_validate_json((workspace / "lora.json").read_text())
    assert trained.lora is not None
    manifest = yaml.safe_load((EXAMPLES / "videogeneration.yaml").read_text())
    manifest["spec"]["loras"] = [{"loraRef": {"name": "demo-avatar"}}]
    (workspace / "clip.yaml").write_text(yaml.safe_dump(manifest))
    code, out = run(capsys, "run", "--offline", "clip.yaml")
    assert code != 0 and "LoraIncompatible" in out and "FLUX.1" in out and "Traceback" not in out
    # the same file in an S3 store (a laptop's own store's file:// links are no LoRA URLs)
    stored = "s3://bucket/" + trained.lora.model_uri[trained.lora.model_uri.index("loras/") :]
    manifest["spec"]["loras"] = [{"url": stored, "scale": 0.8}]
    (workspace / "clip.yaml").write_text(yaml.safe_dump(manifest))
    code, out = run(capsys, "run", "--offline", "clip.yaml")
    assert code != 0 and "Traceback" not in out, out
    [line] = [line for line in out.splitlines() if "loras[0]:" in line]
    assert f"loras[0]: {stored} is a FLUX.1 LoRA (its training.baseModel flux.1)" in line
    assert "training.baseModel wan-2.2-t2v-a14b" in line and "InvalidInput" in out
    assert not list(workspace.rglob("generated-videos/*/*/v1/video.mp4"))
