"""fal bills each request that succeeds; these tests count them. Every case goes over HTTP through
fal-client against the fake (fake_fal.py), with the failures that cost money in real life: an
answer lost after the queue took the request, an upload answer lost, a dataset link fal can no
longer fetch, a result fal no longer keeps, and answers that make no sense."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import fal_client
import httpx
import pytest

from contentgen.api.lora.plan import plan_for
from contentgen.errors import InvalidInput, PermanentError
from contentgen.providers.base import ImageRequest, MemoryCheckpoint, TrainingRequest
from contentgen.providers.fal import FalProvider

from .fake_fal import FAL_KEY, FakeFal
from .fakes import Crash, FakeSleep, Progress, after, dataset_zip, failure, html, mocked, retry, truncated

TRAINING_APP = "fal-ai/flux-lora-fast-training"


@pytest.fixture
def fal() -> FakeFal:
    return FakeFal()


def provider(sleep: FakeSleep | None = None) -> FalProvider:
    return FalProvider(FAL_KEY, retry=retry(sleep or FakeSleep()), poll_interval=2.0)


def training(tmp_path: Path) -> TrainingRequest:
    zip_path = tmp_path / "dataset.zip"
    if not zip_path.exists():
        dataset_zip(zip_path)
    return TrainingRequest(
        dataset_zip=zip_path,
        trigger_word="dmavatar",
        plan=plan_for(app=TRAINING_APP, steps=1000, provider="fal"),
    )


def work(tmp_path: Path, name: str = "work") -> Path:
    path = tmp_path / name
    path.mkdir(exist_ok=True)
    return path


IMAGE = ImageRequest(prompt="a red fox", model="flux-dev", num_images=2, image_size="square", seed=7)


# --- a submit whose answer is lost ----------------------------------------------------------------


@pytest.mark.parametrize(
    "lost",
    [
        after(httpx.ReadTimeout),
        after(httpx.RemoteProtocolError),
        after(html(502)),
        after(truncated({"a": 1})),
    ],
    ids=["read-timeout", "disconnect", "html-502", "truncated-200"],
)
def test_a_submit_whose_answer_is_lost_is_found_not_sent_again(tmp_path, fal, lost, caplog):
    caplog.set_level(logging.INFO)
    fal.fail("submit", lost)
    checkpoint = MemoryCheckpoint()
    with mocked(fal):
        images = provider().generate_images(IMAGE, work(tmp_path), Progress(), checkpoint)
    assert fal.count("submit") == 1  # one POST, never repeated
    assert (fal.accepted, fal.billed) == (1, 1)
    assert fal.count("list") >= 1 and len(images) == 2
    assert "found the lost submit in fal's request list: request req-1" in caplog.text
    assert checkpoint.load()["request_id"] == "req-1" and "sent" not in checkpoint.load()


def test_a_submit_that_never_left_is_simply_sent(tmp_path, fal):
    fal.fail("submit", httpx.ConnectError, httpx.ConnectTimeout)
    with mocked(fal):
        provider().generate_images(IMAGE, work(tmp_path), Progress(), MemoryCheckpoint())
    # the SDK falls back to queue.falrun.com on a connect error: every attempt is counted
    assert (fal.accepted, fal.billed) == (1, 1)
    assert fal.count("list") == 0


def test_a_lost_submit_that_fal_cannot_show_fails_without_a_second_submit(tmp_path, fal):
    fal.store_payloads = False  # the request list shows no inputs: nothing to recognise ours by
    fal.fail("submit", after(httpx.ReadTimeout))
    checkpoint = MemoryCheckpoint()
    before = datetime.now(UTC)
    with mocked(fal), pytest.raises(PermanentError) as raised:
        provider().generate_images(IMAGE, work(tmp_path), Progress(), checkpoint)
    assert raised.value.reason == "ProviderOutcomeUnknown"
    message = str(raised.value)
    sent = checkpoint.load()["sent"]["at"]
    assert datetime.fromisoformat(sent) >= before
    assert f"fal may have accepted a request to fal-ai/flux/dev sent at {sent}" in message
    assert "ReadTimeout" in message and "without their input" in message
    assert "Nothing was submitted again" in message and "https://fal.ai/dashboard" in message
    assert fal.count("submit") == 1 and (fal.accepted, fal.billed) == (1, 1)

    # a later attempt looks again rather than submitting
    with mocked(fal), pytest.raises(PermanentError, match=r"fal may have accepted"):
        provider().generate_images(IMAGE, work(tmp_path), Progress(), checkpoint)
    assert fal.count("submit") == 1 and fal.accepted == 1


def test_a_crash_between_submit_and_saving_its_answer_is_resolved_by_the_next_attempt(tmp_path, fal):
    fal.fail("submit", after(Crash))  # the queue took it; the pod died before the answer was saved
    checkpoint = MemoryCheckpoint()
    with mocked(fal):
        with pytest.raises(Crash):
            provider().train_lora(training(tmp_path), work(tmp_path), Progress(), checkpoint)
        assert "sent" in checkpoint.load() and "request_id" not in checkpoint.load()
        out = provider().train_lora(training(tmp_path), work(tmp_path), Progress(), checkpoint)
    assert out.request_id == "req-1"
    assert fal.count("submit") == 1 and (fal.accepted, fal.billed) == (1, 1)
    assert len(fal.uploads) == 1


def test_two_requests_with_the_same_inputs_are_not_guessed_between(tmp_path, fal):
    # someone else (another resource, the same key) submitted the same inputs in the same minutes
    with mocked(fal):
        fal_client.SyncClient(key=FAL_KEY).submit(
            "fal-ai/flux/dev", {"prompt": "a red fox", "image_size": "square", "num_images": 2, "seed": 7}
        )
        fal.fail("submit", after(httpx.ReadTimeout))
        with pytest.raises(PermanentError) as raised:
            provider().generate_images(IMAGE, work(tmp_path), Progress(), MemoryCheckpoint())
    assert raised.value.reason == "ProviderOutcomeUnknown"
    assert "lists 2 requests that fit equally well (req-" in str(raised.value)
    assert fal.accepted == 2  # the other one and ours; nothing more


# --- uploads and dataset links --------------------------------------------------------------------


def test_a_lost_upload_answer_is_uploaded_again_which_costs_nothing(tmp_path, fal):
    fal.fail("upload", after(httpx.ReadTimeout))
    with mocked(fal):
        out = provider().train_lora(training(tmp_path), work(tmp_path), Progress(), MemoryCheckpoint())
    assert len(fal.uploads) == 2  # the first copy is orphaned on fal's CDN; uploads are not billed
    [(_, arguments)] = fal.submitted
    assert arguments["images_data_url"] == "https://v3.fal.media/files/fake/2-dataset.zip"
    assert (fal.accepted, fal.billed) == (1, 1) and out.weights.exists()


def test_a_dead_dataset_link_heals_by_one_upload_and_one_more_submit(tmp_path, fal, caplog):
    caplog.set_level(logging.WARNING)
    checkpoint = MemoryCheckpoint()
    request = training(tmp_path)
    with mocked(fal):
        # fal's CDN drops the dataset right after the upload (an expired upload)
        original = fal._upload

        def upload_then_expire(req: httpx.Request) -> httpx.Response:
            response = original(req)
            if len(fal.uploads) == 1:
                fal.kill(json.loads(response.content)["access_url"])
            return response

        fal._upload = upload_then_expire  # type: ignore[method-assign]
        out = provider().train_lora(request, work(tmp_path), Progress(), checkpoint)
    assert len(fal.uploads) == 2
    assert fal.accepted == 2 and fal.billed == 1  # the failed request is not billed
    assert [a["images_data_url"] for _, a in fal.submitted] == [
        "https://v3.fal.media/files/fake/1-dataset.zip",
        "https://v3.fal.media/files/fake/2-dataset.zip",
    ]
    assert "could not fetch the dataset of request req-1; uploading it again" in caplog.text
    assert out.request_id == "req-2" and checkpoint.load()["failed"] == ["req-1"]


def test_a_dataset_link_that_stays_dead_fails_after_the_second_upload(tmp_path, fal):
    original = fal._upload

    def upload_dead(req: httpx.Request) -> httpx.Response:
        response = original(req)
        fal.kill(json.loads(response.content)["access_url"])
        return response

    fal._upload = upload_dead  # type: ignore[method-assign]
    with mocked(fal), pytest.raises(PermanentError) as raised:
        provider().train_lora(training(tmp_path), work(tmp_path), Progress(), MemoryCheckpoint())
    assert raised.value.reason == "ProviderJobFailed" and "file_download_error" not in str(raised.value)
    assert "images_data_url: Failed to download the file" in str(raised.value)
    assert len(fal.uploads) == 2 and (fal.accepted, fal.billed) == (2, 0)


# --- results ----------------------------------------------------------------------------------------


def test_the_result_is_saved_before_the_downloads_so_a_retry_pays_nothing(tmp_path, fal):
    fal.fail("download", Crash)  # the pod dies while downloading the first image
    checkpoint = MemoryCheckpoint()
    with mocked(fal):
        with pytest.raises(Crash):
            provider().generate_images(IMAGE, work(tmp_path), Progress(), checkpoint)
        assert [i["url"] for i in checkpoint.load()["result"]["images"]] == [
            "https://v3.fal.media/files/out/req-1/0.jpg",
            "https://v3.fal.media/files/out/req-1/1.jpg",
        ]
        asked = len(fal.requests)
        images = provider().generate_images(IMAGE, work(tmp_path, "again"), Progress(), checkpoint)
    assert {kind for kind, _ in fal.requests[asked:]} == {"download"}
    assert (fal.accepted, fal.billed) == (1, 1) and len(images) == 2


def test_a_result_fal_no_longer_keeps_is_taken_from_its_request_list(tmp_path, fal):
    fal.fail("result", failure(404, {"detail": "Request req-1 not found"}))  # kept 6 minutes at most
    with mocked(fal):
        images = provider().generate_images(IMAGE, work(tmp_path), Progress(), MemoryCheckpoint())
    assert len(images) == 2 and fal.count("list") == 1
    assert (fal.accepted, fal.billed) == (1, 1)


def test_a_request_fal_forgot_entirely_is_not_submitted_again(tmp_path, fal):
    checkpoint = MemoryCheckpoint()
    with mocked(fal):
        with pytest.raises(Crash):  # the pod dies while waiting
            provider(FakeSleep(crash_at=1)).generate_images(IMAGE, work(tmp_path), Progress(), checkpoint)
        fal.purge("req-1")  # the queue and the request list no longer know it
        with pytest.raises(PermanentError) as raised:
            provider().generate_images(IMAGE, work(tmp_path), Progress(), checkpoint)
    assert raised.value.reason == "ProviderOutcomeUnknown"
    assert "fal's queue no longer knows request req-1" in str(raised.value)
    assert fal.accepted == 1


def test_a_paid_output_the_cdn_no_longer_serves_is_reported_not_regenerated(tmp_path, fal):
    checkpoint = MemoryCheckpoint()
    with mocked(fal):
        provider().generate_images(IMAGE, work(tmp_path), Progress(), checkpoint)
        fal.kill("https://v3.fal.media/files/out/req-1/0.jpg")
        with pytest.raises(PermanentError) as raised:
            provider().generate_images(IMAGE, work(tmp_path, "again"), Progress(), checkpoint)
    assert raised.value.reason == "ProviderOutputExpired"
    assert "succeeded and was paid for, but fal's CDN no longer serves an image" in str(raised.value)
    assert (fal.accepted, fal.billed) == (1, 1)


# --- answers that make no sense -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "answer", "words"),
    [
        ("status", html(200), "the status of fal request req-1"),
        ("status", truncated({"status": "IN_QUEUE", "queue_position": 0}, status=202), "the status of"),
        ("result", html(200), "the result of fal request req-1"),
        ("result", truncated({"images": []}), "the result of fal request req-1"),
        ("result", httpx.Response(200, json={"images": []}), "a result without images"),
    ],
    ids=["status-html", "status-truncated", "result-html", "result-truncated", "result-without-images"],
)
def test_nonsense_fails_clearly_once_and_keeps_the_request(tmp_path, fal, kind, answer, words):
    fal.fail(kind, answer)
    checkpoint = MemoryCheckpoint()
    sleep = FakeSleep()
    with mocked(fal), pytest.raises(PermanentError) as raised:
        provider(sleep).generate_images(IMAGE, work(tmp_path), Progress(), checkpoint)
    assert raised.value.reason == "ProviderBadResponse"
    assert str(raised.value).startswith("fal answered") and words in str(raised.value)
    assert fal.count("submit") == 1 and fal.accepted == 1
    assert 0.5 not in sleep.waits  # no retry backoff: nonsense is not retried
    assert checkpoint.load()["request_id"] == "req-1"  # a later attempt asks about the same request


# --- bounds and what the fake itself checks ---------------------------------------------------------


@pytest.mark.parametrize("count", [0, 5, 8])
def test_more_images_than_fal_makes_per_request_are_refused_before_any_call(tmp_path, fal, count):
    with mocked(fal), pytest.raises(InvalidInput, match=r"numImages: fal's FLUX apps make 1 to 4 images"):
        provider().generate_images(
            ImageRequest(prompt="p", model="flux-dev", num_images=count),
            work(tmp_path),
            Progress(),
            MemoryCheckpoint(),
        )
    assert fal.requests == []


def test_the_fake_validates_like_fal_so_it_cannot_hide_our_mistakes(fal):
    """The fake is a double of fal, not of our code: it takes what the queue takes and lets the
    model refuse what the model refuses, unbilled, with fal's 422 detail."""
    client = fal_client.SyncClient(key=FAL_KEY)
    with mocked(fal):
        handle = client.submit("fal-ai/flux/dev", {"prompt": "p", "num_images": 5, "output_format": "gif"})
        states = [handle.status(with_logs=True) for _ in range(3)]
        with pytest.raises(fal_client.FalClientHTTPError) as raised:
            handle.get()
    assert isinstance(states[0], fal_client.Queued) and isinstance(states[-1], fal_client.Completed)
    assert raised.value.status_code == 422
    detail = raised.value.response.json()["detail"]
    assert [(d["loc"], d["type"]) for d in detail] == [
        (["body", "num_images"], "less_than_equal"),
        (["body", "output_format"], "enum"),
    ]
    assert (fal.accepted, fal.billed) == (1, 0)
    statuses = [r for k, r in fal.requests if k == "status"]
    assert fal.count("status") >= 3 and all(r.headers["authorization"] == f"Key {FAL_KEY}" for r in statuses)


def test_status_is_202_until_completed_and_images_are_jpeg_by_default(fal):
    with mocked(fal):
        client = fal_client.SyncClient(key=FAL_KEY)
        handle = client.submit("fal-ai/flux/schnell", {"prompt": "p"})
        codes = [
            httpx.get(handle.status_url, headers={"Authorization": f"Key {FAL_KEY}"}).status_code
            for _ in range(3)
        ]
        result = handle.get()
    assert codes == [202, 202, 200]
    assert result["images"][0]["content_type"] == "image/jpeg" and result["images"][0]["url"].endswith(".jpg")


def test_keys_stay_out_of_checkpoints_logs_and_messages(tmp_path, fal, caplog):
    caplog.set_level(logging.DEBUG)
    fal.store_payloads = False
    fal.fail("submit", after(httpx.ReadTimeout))
    checkpoint = MemoryCheckpoint()
    with mocked(fal), pytest.raises(PermanentError) as raised:
        provider().train_lora(training(tmp_path), work(tmp_path), Progress(), checkpoint)
    assert FAL_KEY not in json.dumps(checkpoint.load())
    assert FAL_KEY not in caplog.text and FAL_KEY not in str(raised.value)
    # the key went to fal's API and nowhere else
    for kind, request in fal.requests:
        if kind in ("download", "upload"):
            assert FAL_KEY not in request.headers.get("authorization", "")


def test_several_paid_requests_share_one_checkpoint_by_parts(fal):
    """What a provider making one request per item (a caption per image) does: each request has
    its own part of the checkpoint, with its own intent, id and output."""
    from contentgen.providers.billing import Part
    from contentgen.providers.fal.history import History
    from contentgen.providers.fal.queue import FalQueue, Waiting

    policy = retry(FakeSleep())
    queue = FalQueue(
        fal_client.SyncClient(key=FAL_KEY),
        FAL_KEY,
        policy,
        History(FAL_KEY, policy),
        poll_interval=1,
        max_wait=60,
    )
    checkpoint = MemoryCheckpoint()
    # the first submit cannot connect; fal-client tries the backup host, where the answer is lost
    fal.fail("submit", httpx.ConnectError, after(httpx.ReadTimeout))
    waiting = Waiting(lambda position: None, lambda logs: None, resolve_wait=60)
    with mocked(fal):
        for item in ("0001", "0002"):
            part = Part(checkpoint, item)
            queue.run(
                "fal-ai/flux/schnell",
                lambda item=item: {"prompt": f"item {item}"},
                part.load(),
                part,
                waiting,
            )
        # a rerun pays nothing: every part holds its output
        asked = len(fal.requests)
        for item in ("0001", "0002"):
            part = Part(checkpoint, item)
            _, result = queue.run("fal-ai/flux/schnell", lambda: {}, part.load(), part, waiting)
            assert result["prompt"] == f"item {item}"
    assert (fal.accepted, fal.billed) == (2, 2) and len(fal.requests) == asked
    saved = checkpoint.load()
    assert sorted(saved) == ["0001", "0002"]
    assert (saved["0001"]["request_id"], saved["0002"]["request_id"]) == ("req-1", "req-2")
    assert fal.count("list") >= 1  # the lost one was found in fal's request list, once it had ended
