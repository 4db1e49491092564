"""Contract tests of dataset captioning on fal: the real fal-client against the HTTP fake of fal's
queue, CDN and the openrouter/router/vision app (tests/providers/fakes.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from contentgen.errors import MissingCredentials, PermanentError
from contentgen.providers import captioner
from contentgen.providers.base import CaptionRequest, MemoryCheckpoint
from contentgen.providers.fal import FalProvider
from contentgen.providers.fal.captions import APP, MODEL, FalCaptioner, clean

from .fakes import FAL_KEY, VISION_APP, Crash, FakeFal, FakeSleep, Progress, failure, mocked, retry


@pytest.fixture
def fal() -> FakeFal:
    return FakeFal()


def images(tmp_path: Path, count: int = 3) -> CaptionRequest:
    paths = []
    for i in range(count):
        path = tmp_path / f"{i + 1:04d}.jpg"
        ok, data = cv2.imencode(".jpg", np.full((64, 64, 3), 30 * (i + 1), np.uint8))
        assert ok
        path.write_bytes(data.tobytes())
        paths.append(path)
    return CaptionRequest(images=tuple(paths))


def captions_on(sleep: FakeSleep) -> FalCaptioner:
    return FalCaptioner(FalProvider(FAL_KEY, retry=retry(sleep), poll_interval=1.0))


def test_every_image_is_uploaded_and_described_with_the_documented_arguments(tmp_path, fal):
    request, progress, checkpoint = images(tmp_path), Progress(), MemoryCheckpoint()
    with mocked(fal):
        out = captions_on(FakeSleep()).caption_images(request, tmp_path, progress, checkpoint)

    assert APP == VISION_APP
    assert [name for name, _ in fal.uploads] == ["0001.jpg", "0002.jpg", "0003.jpg"]
    assert [data for _, data in fal.uploads] == [p.read_bytes() for p in request.images]
    assert len(fal.submitted) == 3
    for (app, arguments), (name, _) in zip(fal.submitted, fal.uploads, strict=True):
        assert app == "openrouter/router/vision"
        assert arguments["model"] == MODEL and arguments["image_urls"][0].endswith(name)
        assert "Do not name or identify the person" in arguments["prompt"]
        assert arguments["max_tokens"] > 0 and 0 <= arguments["temperature"] <= 2
    # markdown marks removed, one description per image, in order
    assert out.descriptions == [
        f"The person smiles at the camera, head and shoulders, soft light ({i}-{i:04d}.jpg)"
        for i in (1, 2, 3)
    ]
    assert out.cost_usd == pytest.approx(0.0012) and not out.placeholder
    assert progress.monotonic and progress[-1] == 100
    assert fal.unauthorized == 0


def test_a_retried_pod_pays_only_for_images_without_a_caption(tmp_path, fal):
    request, checkpoint = images(tmp_path), MemoryCheckpoint()
    fal.scripts[VISION_APP] = [
        {"status": "IN_QUEUE", "queue_position": 0, "logs": []},
        {"status": "IN_PROGRESS", "logs": []},
        {"status": "COMPLETED", "logs": []},
    ]
    with mocked(fal):
        with pytest.raises(Crash):  # dies while waiting: image 1 done, image 2 submitted
            captions_on(FakeSleep(crash_at=4)).caption_images(request, tmp_path, Progress(), checkpoint)
        assert len(fal.submitted) == 2
        out = captions_on(FakeSleep()).caption_images(request, tmp_path, Progress(), checkpoint)

    assert len(fal.submitted) == 3  # image 2's request was polled again, not sent again
    assert len(fal.uploads) == 3
    assert len(out.descriptions) == 3
    assert out.cost_usd == pytest.approx(0.0008)  # this attempt's requests only: images 2 and 3

    with mocked(fal):  # all done: a third attempt sends nothing at all
        again = captions_on(FakeSleep()).caption_images(request, tmp_path, Progress(), checkpoint)
    assert len(fal.submitted) == 3 and again.descriptions == out.descriptions


def test_a_refusal_fails_the_whole_call_with_the_providers_reason(tmp_path, fal):
    fal.fail_job(
        VISION_APP,
        {
            "status": "COMPLETED",
            "logs": [],
            "error": "content policy",
            "error_type": "content_policy_violation",
        },
        failure(422, {"detail": [{"loc": ["body", "image_urls"], "msg": "image refused by the model"}]}),
    )
    with mocked(fal), pytest.raises(PermanentError, match="content policy") as caught:
        captions_on(FakeSleep()).caption_images(images(tmp_path), tmp_path, Progress(), MemoryCheckpoint())
    assert caught.value.reason == "ProviderJobFailed"
    assert len(fal.submitted) == 1  # nothing more is paid for after the first refusal


def test_an_empty_answer_is_a_failure_not_an_empty_caption(tmp_path, fal):
    fal.caption = lambda url: "  **  "
    with mocked(fal), pytest.raises(PermanentError, match=r"no caption for dataset image 0001\.jpg"):
        captions_on(FakeSleep()).caption_images(images(tmp_path, 1), tmp_path, Progress(), MemoryCheckpoint())


def test_a_wrong_key_names_the_variable(tmp_path):
    wrong = FakeFal(key="another-key")
    with mocked(wrong), pytest.raises(MissingCredentials, match="FAL_KEY"):
        captions_on(FakeSleep()).caption_images(images(tmp_path, 1), tmp_path, Progress(), MemoryCheckpoint())


def test_the_factory_needs_the_key():
    with pytest.raises(MissingCredentials, match="FAL_KEY"):
        captioner("fal", env={})
    assert isinstance(captioner("fal", env={"FAL_KEY": FAL_KEY}), FalCaptioner)
    assert captioner("offline").name == "offline"


def test_clean() -> None:
    assert clean('  "A **person**\n in a `red` coat."  ') == "A person in a red coat."
    assert len(clean("word " * 200)) <= 400 and not clean("word " * 200).endswith(" ")
