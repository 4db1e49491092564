"""Thumbnails beside the originals, and the lineage a run records."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from contentgen.api import GeneratedImage, LoraVersion, ResolvedLora, RunResult, SpecSnapshot, now
from contentgen.errors import PermanentError
from contentgen.pipeline.runner import with_lineage
from contentgen.pipeline.thumbnails import add_thumbnails, thumbnail_jpeg
from contentgen.store import LocalStore, keys


def png(width: int, height: int, colour: tuple[int, int, int], channels: int = 3) -> bytes:
    picture = np.zeros((height, width, channels), np.uint8)
    picture[:, :, :3] = colour
    if channels == 4:
        picture[:, :, 3] = 0  # fully transparent
    ok, data = cv2.imencode(".png", picture)
    assert ok
    return data.tobytes()


def decode(data: bytes) -> np.ndarray:
    picture = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None
    return picture


def test_thumbnails_keep_the_aspect_and_never_enlarge() -> None:
    wide = decode(thumbnail_jpeg(png(1024, 512, (0, 0, 255))))
    assert wide.shape[:2] == (160, 320)
    assert abs(int(wide[80, 160, 2]) - 255) < 8 and int(wide[80, 160, 0]) < 8  # still red (BGR)
    small = decode(thumbnail_jpeg(png(100, 50, (0, 255, 0))))
    assert small.shape[:2] == (50, 100)
    # Transparency becomes white, as a gallery on a light page shows it.
    assert decode(thumbnail_jpeg(png(64, 64, (0, 0, 0), channels=4))).min() > 240


def test_a_broken_picture_is_a_clear_error() -> None:
    with pytest.raises(PermanentError, match="cannot be decoded"):
        thumbnail_jpeg(b"not a picture")


def image(store: LocalStore, n: int, colour: tuple[int, int, int]) -> GeneratedImage:
    artifact = store.put_bytes(keys.image("alice", "uid1", 2, n), png(640, 480, colour), "image/png")
    return GeneratedImage(
        uri=artifact.uri, width=640, height=480, size_bytes=artifact.size_bytes, sha256=artifact.sha256
    )


def test_generated_images_get_thumbnails_beside_them_listed_as_artifacts(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    images = [image(store, 1, (255, 0, 0)), image(store, 2, (0, 0, 255))]
    earlier = store.put_bytes("generated-images/alice/uid1/v1/thumbs/image_3.jpg", b"old", "image/jpeg")
    result = RunResult(kind="ImageGeneration", provider="offline", images=images)
    done = add_thumbnails(store, result)
    assert done.images is not None
    thumbs = [i.thumbnail_uri for i in done.images]
    assert thumbs == [
        store.uri("generated-images/alice/uid1/v2/thumbs/image_1.jpg"),
        store.uri("generated-images/alice/uid1/v2/thumbs/image_2.jpg"),
    ]
    assert [a.uri for a in done.artifacts] == thumbs
    blue = decode(store.get_bytes(store.key_of(thumbs[0])))
    assert blue.shape[:2] == (240, 320) and blue[120, 160, 0] > 240
    assert store.get_bytes(store.key_of(earlier.uri)) == b"old"  # an earlier version's: never touched


def test_a_contact_sheet_gets_a_thumbnail(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    sheet = store.put_bytes(
        "datasets/alice/uid1/v1/contact-sheet.jpg", png(1200, 900, (9, 9, 9)), "image/jpeg"
    )
    lora = LoraVersion(
        version=1,
        model_uri=store.uri("loras/alice/uid1/v1/model.safetensors"),
        size_bytes=1,
        sha256="0" * 64,
        provider="offline",
        trigger_word="tw",
        contact_sheet_uri=sheet.uri,
        created_at=now(),
    )
    done = add_thumbnails(store, RunResult(kind="LoraTraining", provider="offline", lora=lora))
    assert done.lora is not None
    assert done.lora.contact_sheet_thumbnail_uri == store.uri(
        "datasets/alice/uid1/v1/thumbs/contact-sheet.jpg"
    )
    assert decode(store.get_bytes(store.key_of(done.lora.contact_sheet_thumbnail_uri))).shape[:2] == (
        240,
        320,
    )
    # Nothing to do for a run without pictures.
    plain = RunResult(kind="Transcription", provider="offline")
    assert add_thumbnails(store, plain) is plain


def test_lineage_names_the_loras_used_and_the_source_video() -> None:
    lora = ResolvedLora(uri="s3://b/loras/alice/u9/v2/model.safetensors", name="style", uid="u9", version=2)
    snap = SpecSnapshot(kind="ImageGeneration", name="img", uid="u1", spec={"owner": "alice"}, loras=[lora])
    result = with_lineage(RunResult(kind="ImageGeneration", provider="offline", images=[]), snap)
    assert result.loras == [lora]
    version = LoraVersion(
        version=1,
        model_uri="m",
        size_bytes=1,
        sha256="0" * 64,
        provider="offline",
        trigger_word="t",
        created_at=now(),
    )
    snap = SpecSnapshot(
        kind="LoraTraining",
        name="l",
        uid="u9",
        version=1,
        spec={"owner": "alice", "source": {"url": "https://example.com/v.mp4"}},
    )
    result = with_lineage(RunResult(kind="LoraTraining", provider="offline", lora=version), snap)
    assert result.lora is not None and result.lora.source_url == "https://example.com/v.mp4"
    status: dict[str, object] = {}
    RunResult(kind="ImageGeneration", provider="offline", images=[], loras=[lora]).merge_outputs(status)
    assert status["loras"] == [lora.wire()]
