"""Contract tests of dataset captioning on fal: the real fal-client against the HTTP fake of fal's
queue, CDN, request list and the openrouter/router/vision app (fake_fal.py). fal bills each
request that succeeds; these tests count them, with the failures that cost money in real life."""

from __future__ import annotations

from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from contentgen.errors import MissingCredentials, PermanentError
from contentgen.providers import captioner
from contentgen.providers.base import CaptionRequest, MemoryCheckpoint
from contentgen.providers.fal import FalProvider
from contentgen.providers.fal.captions import APP, MODEL, FalCaptioner, clean

from .fake_fal import FAL_KEY, VISION_APP, VISION_COST, FakeFal
from .fakes import Crash, FakeSleep, Progress, after, failure, mocked, retry


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


class Bill(list[tuple[str, str]]):
    def __call__(self, item: str, request_id: str) -> None:
        self.append((item, request_id))


def test_every_image_is_uploaded_and_described_with_the_documented_arguments(tmp_path, fal):
    request, progress, checkpoint, bill = images(tmp_path), Progress(), MemoryCheckpoint(), Bill()
    with mocked(fal):
        out = captions_on(FakeSleep()).caption_images(request, tmp_path, progress, checkpoint, bill)

    assert APP == VISION_APP
    assert [name for name, _ in fal.uploads] == ["0001.jpg", "0002.jpg", "0003.jpg"]
    assert [data for _, data in fal.uploads] == [p.read_bytes() for p in request.images]
    assert (fal.accepted, fal.billed) == (3, 3)
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
    assert out.cost_usd == pytest.approx(3 * VISION_COST) and not out.placeholder
    assert bill == [(VISION_APP, "req-1"), (VISION_APP, "req-2"), (VISION_APP, "req-3")]
    # one part of the checkpoint per image, each with its request and result
    saved = checkpoint.load()
    assert sorted(saved) == ["0000", "0001", "0002"]
    assert [saved[name]["request_id"] for name in sorted(saved)] == ["req-1", "req-2", "req-3"]
    assert all("result" in part and "sent" not in part for part in saved.values())
    assert progress.monotonic and progress[-1] == 100
    assert fal.unauthorized == 0


def test_a_retried_pod_pays_only_for_images_without_a_caption(tmp_path, fal):
    request, checkpoint = images(tmp_path), MemoryCheckpoint()
    with mocked(fal):
        with pytest.raises(Crash):  # dies while waiting: image 1 done, image 2 submitted
            captions_on(FakeSleep(crash_at=4)).caption_images(request, tmp_path, Progress(), checkpoint)
        assert fal.accepted == 2
        bill = Bill()
        out = captions_on(FakeSleep()).caption_images(request, tmp_path, Progress(), checkpoint, bill)

    assert (fal.accepted, fal.billed) == (3, 3)  # image 2's request was polled again, not sent again
    assert len(fal.uploads) == 3
    assert len(out.descriptions) == 3
    assert out.cost_usd == pytest.approx(2 * VISION_COST)  # this attempt's requests: images 2 and 3
    assert [r for _, r in bill] == ["req-1", "req-2", "req-3"]  # all of them billed for this run

    with mocked(fal):  # all done: a third attempt sends nothing at all
        again = captions_on(FakeSleep()).caption_images(request, tmp_path, Progress(), checkpoint)
    assert fal.accepted == 3 and fal.count("upload") == 3 and again.descriptions == out.descriptions


@pytest.mark.parametrize("lost", [after(httpx.ReadTimeout), after(httpx.RemoteProtocolError)])
def test_a_lost_answer_after_the_submit_is_found_not_paid_twice(tmp_path, fal, lost):
    fal.fail("submit", httpx.ConnectError, lost)  # image 1: never left, sent again; image 2: lost
    checkpoint = MemoryCheckpoint()
    with mocked(fal):
        out = captions_on(FakeSleep()).caption_images(images(tmp_path), tmp_path, Progress(), checkpoint)
    assert fal.count("submit") == 4  # image 1 twice (the first never reached fal), then 2 and 3
    assert (fal.accepted, fal.billed) == (3, 3)
    assert fal.count("list") >= 1  # image 2's request found in fal's request list
    assert checkpoint.load()["0001"]["request_id"] == "req-2"
    assert len(out.descriptions) == 3


def test_a_crash_between_submit_and_answer_is_resolved_from_the_request_list(tmp_path, fal):
    request, checkpoint = images(tmp_path, 2), MemoryCheckpoint()
    fal.fail("submit", after(Crash))  # the pod dies with the submit on the wire
    with mocked(fal), pytest.raises(Crash):
        captions_on(FakeSleep()).caption_images(request, tmp_path, Progress(), checkpoint)
    assert "sent" in checkpoint.load()["0000"] and fal.accepted == 1
    with mocked(fal):
        out = captions_on(FakeSleep()).caption_images(request, tmp_path, Progress(), checkpoint)
    assert (fal.accepted, fal.billed) == (2, 2) and len(out.descriptions) == 2


def test_a_refusal_fails_the_whole_call_with_the_providers_reason(tmp_path, fal):
    fal.fail_job(
        VISION_APP,
        {"status": "COMPLETED", "logs": [], "error": "content policy", "error_type": None},
        failure(422, {"detail": [{"loc": ["body", "image_urls"], "msg": "content policy", "type": "x"}]}),
    )
    bill = Bill()
    with mocked(fal), pytest.raises(PermanentError, match="content policy") as caught:
        captions_on(FakeSleep()).caption_images(
            images(tmp_path), tmp_path, Progress(), MemoryCheckpoint(), bill
        )
    assert caught.value.reason == "ProviderJobFailed"
    assert fal.accepted == 1 and fal.billed == 0  # nothing more is sent after the first refusal
    assert bill == []


def test_an_image_fal_cannot_fetch_is_uploaded_once_more(tmp_path, fal):
    fal.kill("https://v3.fal.media/files/fake/3-0003.jpg")  # image 3's upload expired
    with mocked(fal):
        out = captions_on(FakeSleep()).caption_images(
            images(tmp_path), tmp_path, Progress(), MemoryCheckpoint()
        )
    assert [name for name, _ in fal.uploads] == ["0001.jpg", "0002.jpg", "0003.jpg", "0003.jpg"]
    assert (fal.accepted, fal.billed) == (4, 3)  # the failed request was not billed
    assert len(out.descriptions) == 3


def test_a_failure_after_billed_images_reports_those(tmp_path, fal):
    for n in (3, 4):  # image 3's upload and its second upload are gone: the model fails, unbilled
        fal.kill(f"https://v3.fal.media/files/fake/{n}-0003.jpg")
    bill = Bill()
    with mocked(fal), pytest.raises(PermanentError, match="Failed to download") as caught:
        captions_on(FakeSleep()).caption_images(
            images(tmp_path), tmp_path, Progress(), MemoryCheckpoint(), bill
        )
    assert caught.value.reason == "ProviderJobFailed"
    assert (fal.accepted, fal.billed) == (4, 2)
    assert [r for _, r in bill] == ["req-1", "req-2"]  # what a failed run still reports as spent


def test_an_empty_answer_is_a_failure_not_an_empty_caption(tmp_path, fal):
    fal.caption = lambda url: "  **  "
    with mocked(fal), pytest.raises(PermanentError, match=r"no caption for dataset image 0001\.jpg"):
        captions_on(FakeSleep()).caption_images(images(tmp_path, 1), tmp_path, Progress(), MemoryCheckpoint())


def test_a_wrong_key_names_the_variable(tmp_path):
    wrong = FakeFal(key="another-key")
    with mocked(wrong), pytest.raises(MissingCredentials, match="FAL_KEY"):
        captions_on(FakeSleep()).caption_images(images(tmp_path, 1), tmp_path, Progress(), MemoryCheckpoint())
    assert wrong.accepted == 0


def test_the_factory_needs_the_key():
    with pytest.raises(MissingCredentials, match="FAL_KEY"):
        captioner("fal", env={})
    assert isinstance(captioner("fal", env={"FAL_KEY": FAL_KEY}), FalCaptioner)
    assert captioner("offline").name == "offline"


def test_clean() -> None:
    assert clean('  "A **person**\n in a `red` coat."  ') == "A person in a red coat."
    assert len(clean("word " * 200)) <= 400 and not clean("word " * 200).endswith(" ")
