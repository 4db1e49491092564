"""Contract tests of the fal provider: the real fal-client against a local fake of fal's HTTP API."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import httpx
import pytest

from contentgen.api.lora.plan import plan_for
from contentgen.errors import InvalidInput, MissingCredentials, PermanentError, TransientError
from contentgen.providers import image_generator, trainer
from contentgen.providers.base import ImageRequest, LoraWeights, MemoryCheckpoint, TrainingRequest
from contentgen.providers.fal import FalProvider, Limits

from .fake_fal import FAL_KEY, FakeFal, log
from .fake_fal import status as _queue_status
from .fakes import Crash, FakeSleep, Progress, dataset_zip, failure, mocked, retry

TRAINING_APP = "fal-ai/flux-lora-fast-training"
SIGNED_LORA = (
    "https://bucket.s3.amazonaws.com/loras/u/1/model.safetensors?X-Amz-Signature=s3cr3tsig&X-Amz-Expires=3600"
)


@pytest.fixture
def fal() -> FakeFal:
    return FakeFal()


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


def provider(sleep: FakeSleep, **kwargs) -> FalProvider:
    return FalProvider(FAL_KEY, retry=retry(sleep), poll_interval=2.0, **kwargs)


def training(tmp_path: Path, **kwargs) -> TrainingRequest:
    zip_path = tmp_path / "dataset.zip"
    if not zip_path.exists():
        dataset_zip(zip_path)
    app = kwargs.pop("model", TRAINING_APP)
    plan = plan_for(app=app, steps=1000, provider="fal", **kwargs)
    return TrainingRequest(dataset_zip=zip_path, trigger_word="dmavatar", plan=plan)


def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir(exist_ok=True)
    return path


# --- training -------------------------------------------------------------------------------------


def test_training_uploads_submits_polls_and_downloads(tmp_path, fal, sleep):
    progress, checkpoint = Progress(), MemoryCheckpoint()
    request = training(tmp_path)
    with mocked(fal):
        out = provider(sleep).train_lora(request, work(tmp_path), progress, checkpoint)

    # the dataset went to fal's CDN as it is, and the submit names it with the documented arguments
    assert fal.uploads == [("dataset.zip", request.dataset_zip.read_bytes())]
    [(app, arguments)] = fal.submitted
    assert app == TRAINING_APP
    assert arguments == {
        "images_data_url": "https://v3.fal.media/files/fake/1-dataset.zip",
        "trigger_word": "dmavatar",
        "steps": 1000,
    }
    # every API call carried the key; the CDN downloads did not
    assert fal.unauthorized == 0
    assert all("authorization" not in r.headers for k, r in fal.requests if k == "download")

    assert out.weights == work(tmp_path) / "model.safetensors"
    assert out.weights.read_bytes() == fal.weights
    assert out.config is not None and json.loads(out.config.read_text()) == {
        "trigger_word": "dmavatar",
        "steps": 1000,
    }
    assert out.request_id == "req-1" and not out.placeholder
    assert out.details["app"] == TRAINING_APP
    assert sorted(p.name for p in work(tmp_path).iterdir()) == ["config.json", "model.safetensors"]

    # queue position, then the training steps from the logs, then the downloads
    assert progress.monotonic and progress[-1] == 100
    assert any(5 < p <= 10 for p in progress)  # queued
    assert 10 + 80 * 0.25 in progress and 10 + 80 * 0.75 in progress  # "Steps: 25%", "Steps: 75%"
    assert not any(80 < p < 90 for p in progress)  # the 100 % shard-loading bar is not training
    assert sleep.waits == [2.0] * 5  # polled every poll_interval, never really slept

    saved = checkpoint.load()
    assert saved["request_id"] == "req-1"
    assert saved["dataset_url"] == "https://v3.fal.media/files/fake/1-dataset.zip"


def test_learning_rate_is_sent_when_set(tmp_path, fal, sleep):
    with mocked(fal):
        provider(sleep).train_lora(
            training(tmp_path, learning_rate=0.0004, model="fal-ai/flux-lora-portrait-trainer"),
            work(tmp_path),
            Progress(),
            MemoryCheckpoint(),
        )
    [(app, arguments)] = fal.submitted
    assert app == "fal-ai/flux-lora-portrait-trainer"
    assert arguments["learning_rate"] == 0.0004


def test_resumes_after_a_crash_mid_poll_without_a_second_submit(tmp_path, fal):
    checkpoint = MemoryCheckpoint()
    request = training(tmp_path)
    with mocked(fal):
        with pytest.raises(Crash):  # the pod dies while waiting for the third status
            provider(FakeSleep(crash_at=3)).train_lora(request, work(tmp_path), Progress(), checkpoint)
        assert checkpoint.load()["request_id"] == "req-1"
        polled_before = fal.polled("req-1")

        out = provider(FakeSleep()).train_lora(request, work(tmp_path), Progress(), checkpoint)

    assert len(fal.submitted) == 1 and len(fal.uploads) == 1
    assert out.request_id == "req-1"
    assert fal.polled("req-1") > polled_before
    assert out.weights.read_bytes() == fal.weights


def test_a_finished_run_is_not_asked_about_again(tmp_path, fal, sleep):
    # the checkpoint holds the result: a rerun downloads what was paid for, nothing more
    request = training(tmp_path)
    checkpoint = MemoryCheckpoint()
    with mocked(fal):
        provider(sleep).train_lora(request, work(tmp_path), Progress(), checkpoint)
        asked = len(fal.requests)
        out = provider(sleep).train_lora(request, work(tmp_path), Progress(), checkpoint)
    assert {kind for kind, _ in fal.requests[asked:]} == {"download"}
    assert (fal.accepted, fal.billed) == (1, 1)
    assert out.request_id == "req-1" and out.weights.read_bytes() == fal.weights


def test_a_checkpoint_of_other_inputs_is_not_resumed(tmp_path, fal, sleep):
    checkpoint = MemoryCheckpoint({"app": TRAINING_APP, "fingerprint": "other", "request_id": "req-9"})
    with mocked(fal):
        provider(sleep).train_lora(training(tmp_path), work(tmp_path), Progress(), checkpoint)
    assert fal.polled("req-9") == 0
    assert len(fal.submitted) == 1


def test_rejected_key_fails_at_once_naming_the_variable(tmp_path, fal, sleep, caplog):
    caplog.set_level(logging.DEBUG)
    with mocked(fal), pytest.raises(MissingCredentials) as raised:
        FalProvider("wrong-key", retry=retry(sleep)).train_lora(
            training(tmp_path), work(tmp_path), Progress(), MemoryCheckpoint()
        )
    message = str(raised.value)
    assert "FAL_KEY" in message and "--offline" in message and "401" in message
    assert raised.value.reason == "MissingCredentials"
    assert sleep.waits == []  # not retried
    assert "wrong-key" not in message and "wrong-key" not in caplog.text


def test_rate_limit_honours_retry_after_then_succeeds(tmp_path, fal, sleep):
    fal.fail("submit", failure(429, {"detail": "Too many requests"}, retry_after="7"))
    with mocked(fal):
        out = provider(sleep).train_lora(training(tmp_path), work(tmp_path), Progress(), MemoryCheckpoint())
    assert fal.count("submit") == 2 and len(fal.submitted) == 1
    assert sleep.waits[0] == 7.0
    assert out.request_id == "req-1"


def test_server_errors_are_retried_with_backoff(tmp_path, fal, sleep):
    fal.fail("status", failure(503), failure(502))
    with mocked(fal):
        out = provider(sleep).train_lora(training(tmp_path), work(tmp_path), Progress(), MemoryCheckpoint())
    assert sleep.waits[:2] == [0.5, 1.0]  # full jitter with the draw fixed at 0.5: 0.5 * 1, 0.5 * 2
    assert out.weights.exists()


def test_persistent_server_errors_are_transient_and_keep_the_request(tmp_path, fal, sleep):
    fal.fail("status", *[failure(500)] * 3)
    checkpoint = MemoryCheckpoint()
    with mocked(fal), pytest.raises(TransientError) as raised:
        provider(sleep).train_lora(training(tmp_path), work(tmp_path), Progress(), checkpoint)
    assert "gave up after 3 attempts" in str(raised.value) and "HTTP 500" in str(raised.value)
    assert raised.value.reason == "ProviderUnavailable"
    assert checkpoint.load()["request_id"] == "req-1"  # a later attempt resumes it


def test_timeouts_are_retried(tmp_path, fal, sleep):
    fal.fail("result", httpx.ReadTimeout)
    fal.fail("download", httpx.ConnectError)
    with mocked(fal):
        out = provider(sleep).train_lora(training(tmp_path), work(tmp_path), Progress(), MemoryCheckpoint())
    assert out.weights.read_bytes() == fal.weights
    assert fal.count("result") == 2


def test_a_failed_cdn_upload_is_retried_not_sent_to_fal_clients_fallback(tmp_path, fal, sleep):
    # fal-client would fall back to a signed storage URL, sending the fal key along: not used
    fal.fail("upload", failure(500, {"detail": "CDN down"}))
    request = training(tmp_path)
    with mocked(fal):
        provider(sleep).train_lora(request, work(tmp_path), Progress(), MemoryCheckpoint())
    assert fal.count("upload") == 2 and sleep.waits[0] == 0.5
    assert fal.uploads == [("dataset.zip", request.dataset_zip.read_bytes())]
    assert {r.url.host for _, r in fal.requests} == {"rest.fal.ai", "v3.fal.media", "queue.fal.run"}


def test_persistent_timeouts_are_transient(tmp_path, fal, sleep):
    fal.fail("token", *[httpx.ConnectTimeout] * 3)
    with mocked(fal), pytest.raises(TransientError) as raised:
        provider(sleep).train_lora(training(tmp_path), work(tmp_path), Progress(), MemoryCheckpoint())
    assert raised.value.reason == "ProviderTimeout"
    assert fal.submitted == []


def test_a_failed_training_is_permanent_with_fals_reason(tmp_path, fal, sleep):
    fal.fail_job(
        TRAINING_APP,
        _queue_status("COMPLETED", error="Input validation failed", error_type=None, metrics={}),
        failure(
            422,
            {
                "detail": [
                    {
                        "loc": ["body", "images_data_url"],
                        "msg": "the archive holds 1 image, at least 4 are needed",
                        "type": "value_error",
                    }
                ]
            },
        ),
    )
    checkpoint = MemoryCheckpoint()
    with mocked(fal), pytest.raises(PermanentError) as raised:
        provider(sleep).train_lora(training(tmp_path), work(tmp_path), Progress(), checkpoint)
    assert raised.value.reason == "ProviderJobFailed"
    assert "images_data_url: the archive holds 1 image, at least 4 are needed" in str(raised.value)
    assert "request_id" not in checkpoint.load()  # a new attempt submits anew
    assert (fal.accepted, fal.billed) == (1, 0)  # fal bills successful outputs only


def test_a_failed_result_fetch_reports_the_validation_detail(tmp_path, fal, sleep):
    # fal's status does not always carry the error: then the result says it
    fal.fail_job(
        TRAINING_APP,
        _queue_status("COMPLETED", metrics={}),
        failure(
            422,
            {
                "detail": [
                    {
                        "loc": ["body", "steps"],
                        "msg": "ensure this value is less than 10001",
                        "type": "value_error",
                    }
                ]
            },
        ),
    )
    with mocked(fal), pytest.raises(PermanentError) as raised:
        provider(sleep).train_lora(training(tmp_path), work(tmp_path), Progress(), MemoryCheckpoint())
    assert "steps: ensure this value is less than 10001" in str(raised.value)
    assert fal.count("result") == 1  # not retried


def test_an_infrastructure_failure_is_transient_and_forgets_the_request(tmp_path, fal, sleep):
    fal.fail_job(
        TRAINING_APP,
        _queue_status("COMPLETED", error="Runner disconnected", error_type="runner_disconnected", metrics={}),
        failure(
            503,
            {"detail": "Runner disconnected", "error_type": "runner_disconnected"},
            x_fal_error_type="runner_disconnected",
        ),
    )
    checkpoint = MemoryCheckpoint()
    with mocked(fal), pytest.raises(TransientError) as raised:
        provider(sleep).train_lora(training(tmp_path), work(tmp_path), Progress(), checkpoint)
    assert "runner_disconnected" in str(raised.value)
    assert "request_id" not in checkpoint.load()


@pytest.mark.parametrize("declared", [True, False])
def test_downloads_bigger_than_the_cap_fail_and_leave_nothing(tmp_path, fal, sleep, declared):
    fal.weights = b"\0" * 5000
    if not declared:  # streamed without a length, and fal's file_size understated
        fal.files["https://v3.fal.media/files/out/req-1/pytorch_lora_weights.safetensors"] = lambda: (
            httpx.Response(200, content=iter([b"\0" * 1000] * 5))
        )
    with mocked(fal), pytest.raises(PermanentError) as raised:
        provider(sleep, limits=Limits(weights_bytes=4096)).train_lora(
            training(tmp_path), work(tmp_path), Progress(), MemoryCheckpoint()
        )
    assert raised.value.reason == "ProviderOutputTooLarge"
    assert list(work(tmp_path).iterdir()) == []


def test_weights_that_are_not_safetensors_are_refused(tmp_path, fal, sleep):
    fal.weights = b"<html>Access denied</html>"
    with mocked(fal), pytest.raises(PermanentError, match="not a safetensors file"):
        provider(sleep).train_lora(training(tmp_path), work(tmp_path), Progress(), MemoryCheckpoint())
    assert list(work(tmp_path).iterdir()) == []


def test_waiting_too_long_is_transient_and_keeps_the_request(tmp_path, fal, sleep):
    fal.scripts[TRAINING_APP] = [_queue_status("IN_QUEUE", queue_position=40)]
    checkpoint = MemoryCheckpoint()
    with mocked(fal), pytest.raises(TransientError, match="has not finished"):
        provider(sleep, max_wait=10.0).train_lora(training(tmp_path), work(tmp_path), Progress(), checkpoint)
    assert sleep.waits == [2.0] * 5
    assert checkpoint.load()["request_id"] == "req-1"


def test_a_missing_key_fails_at_once(monkeypatch):
    monkeypatch.delenv("FAL_KEY", raising=False)
    for factory in (trainer, image_generator):
        with pytest.raises(MissingCredentials) as raised:
            factory("fal")
        assert str(raised.value) == (
            "FAL_KEY is not set: set it (in the cluster, through the chart's fal.existingSecret) "
            "or run with --offline"
        )
    assert isinstance(trainer("fal", env={"FAL_KEY": "k"}), FalProvider)
    with pytest.raises(MissingCredentials):
        trainer("fal", env={"FAL_KEY": "  "})


# --- images ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "app"),
    [
        ("flux-dev", "fal-ai/flux/dev"),
        ("flux-schnell", "fal-ai/flux/schnell"),
        ("flux-pro", "fal-ai/flux-pro/v1.1"),
    ],
)
def test_image_models_map_to_fal_apps_with_the_documented_arguments(tmp_path, fal, sleep, model, app):
    request = ImageRequest(
        prompt="a red fox", model=model, num_images=2, image_size="square", negative_prompt="blur", seed=7
    )
    progress = Progress()
    with mocked(fal):
        images = provider(sleep).generate_images(request, work(tmp_path), progress, MemoryCheckpoint())
    assert fal.submitted == [
        (app, {"prompt": "a red fox", "image_size": "square", "num_images": 2, "seed": 7})
    ]
    # fal's FLUX apps answer JPEG unless output_format says png
    assert [(i.width, i.height, i.content_type, i.seed) for i in images] == [(512, 512, "image/jpeg", 7)] * 2
    assert [i.path.name for i in images] == ["image-01.jpg", "image-02.jpg"]
    for image in images:
        decoded = cv2.imread(str(image.path))
        assert decoded.shape == (512, 512, 3)
    assert progress.monotonic and progress[-1] == 100
    assert fal.unauthorized == 0


def test_flux_lora_sends_the_loras_and_keeps_signatures_out_of_logs(tmp_path, fal, sleep, caplog):
    caplog.set_level(logging.DEBUG)
    request = ImageRequest(
        prompt="dmavatar on a beach",
        model="flux-lora",
        image_size="landscape_16_9",
        loras=(LoraWeights(url=SIGNED_LORA, scale=0.8),),
    )
    with mocked(fal):
        images = provider(sleep).generate_images(request, work(tmp_path), Progress(), MemoryCheckpoint())
    [(app, arguments)] = fal.submitted
    assert app == "fal-ai/flux-lora"
    assert arguments == {
        "prompt": "dmavatar on a beach",
        "image_size": "landscape_16_9",
        "num_images": 1,
        "loras": [{"path": SIGNED_LORA, "scale": 0.8}],
    }
    assert (images[0].width, images[0].height, images[0].seed) == (1024, 576, fal.seed)
    assert "s3cr3tsig" not in caplog.text and FAL_KEY not in caplog.text


def test_a_rejected_lora_url_is_reported_without_its_signature(tmp_path, fal, sleep, caplog):
    caplog.set_level(logging.DEBUG)
    fal.fail_job(
        "fal-ai/flux-lora",
        _queue_status("COMPLETED", metrics={}),
        failure(
            422,
            {
                "detail": [
                    {
                        "loc": ["body", "loras", 0, "path"],
                        "msg": f"could not download {SIGNED_LORA}",
                        "type": "file_download_error",
                    }
                ]
            },
        ),
    )
    request = ImageRequest(prompt="x", model="flux-lora", loras=(LoraWeights(url=SIGNED_LORA),))
    with mocked(fal), pytest.raises(PermanentError) as raised:
        provider(sleep).generate_images(request, work(tmp_path), Progress(), MemoryCheckpoint())
    message = str(raised.value)
    assert (
        "could not download https://bucket.s3.amazonaws.com/loras/u/1/model.safetensors?<redacted>" in message
    )
    assert "s3cr3tsig" not in message and "s3cr3tsig" not in caplog.text
    assert raised.value.__cause__ is None  # the SDK's exception, holding the raw URL, is not chained


def test_image_generation_resumes_without_a_second_submit(tmp_path, fal):
    checkpoint = MemoryCheckpoint()
    # the presigned LoRA URL is signed anew by the second attempt: still the same request
    first = ImageRequest(prompt="p", model="flux-lora", loras=(LoraWeights(url=SIGNED_LORA),))
    second = ImageRequest(
        prompt="p", model="flux-lora", loras=(LoraWeights(url=SIGNED_LORA.replace("s3cr3tsig", "other")),)
    )
    with mocked(fal):
        with pytest.raises(Crash):
            provider(FakeSleep(crash_at=2)).generate_images(first, work(tmp_path), Progress(), checkpoint)
        images = provider(FakeSleep()).generate_images(second, work(tmp_path), Progress(), checkpoint)
    assert len(fal.submitted) == 1
    assert len(images) == 1 and images[0].path.exists()


def test_the_files_own_header_wins_over_the_response(tmp_path, fal, sleep, caplog):
    original = fal._output

    def lying_output(job):
        result = original(job)
        result["images"][0].update(width=1, height=1, content_type="image/png")
        return result

    fal._output = lying_output
    with mocked(fal):
        [image] = provider(sleep).generate_images(
            ImageRequest(prompt="p", model="flux-dev", image_size="portrait_4_3"),
            work(tmp_path),
            Progress(),
            MemoryCheckpoint(),
        )
    assert (image.content_type, image.width, image.height) == ("image/jpeg", 768, 1024)
    assert image.path.suffix == ".jpg"
    assert "keeping the file's" in caplog.text


def test_a_file_that_is_not_an_image_is_refused(tmp_path, fal, sleep):
    with mocked(fal):
        fal.files["https://v3.fal.media/files/out/req-1/0.jpg"] = b"not an image at all"
        with pytest.raises(PermanentError, match="not a PNG, JPEG or WebP"):
            provider(sleep).generate_images(
                ImageRequest(prompt="p", model="flux-dev"), work(tmp_path), Progress(), MemoryCheckpoint()
            )
    assert list(work(tmp_path).iterdir()) == []


def test_inputs_fal_cannot_take_are_refused_before_any_call(tmp_path, fal, sleep):
    p = provider(sleep)
    with mocked(fal):
        with pytest.raises(InvalidInput, match=r"loras need a model that loads them \(flux-lora, "):
            p.generate_images(
                ImageRequest(prompt="p", model="flux-dev", loras=(LoraWeights(url="https://x/l"),)),
                tmp_path,
                Progress(),
                MemoryCheckpoint(),
            )
        with pytest.raises(InvalidInput, match="file://"):
            p.generate_images(
                ImageRequest(prompt="p", model="flux-lora", loras=(LoraWeights(url="file:///s/l"),)),
                tmp_path,
                Progress(),
                MemoryCheckpoint(),
            )
        with pytest.raises(InvalidInput, match="no app"):
            p.generate_images(
                ImageRequest(prompt="p", model="sdxl"), tmp_path, Progress(), MemoryCheckpoint()
            )
    assert fal.requests == []


def test_in_progress_without_progress_lines_creeps_forward(tmp_path, fal, sleep):
    fal.scripts["fal-ai/flux/dev"] = [
        _queue_status("IN_PROGRESS", logs=[log("warming up")]),
        _queue_status("IN_PROGRESS"),
        _queue_status("IN_PROGRESS"),
        _queue_status("COMPLETED", metrics={}),
    ]
    progress = Progress()
    with mocked(fal):
        provider(sleep).generate_images(
            ImageRequest(prompt="p", model="flux-dev"), work(tmp_path), progress, MemoryCheckpoint()
        )
    running = [p for p in progress if 10 <= p < 70]
    assert len(running) == 3 and running == sorted(running)


@pytest.mark.parametrize(
    ("ext", "params", "content_type"),
    [
        (".png", [], "image/png"),
        (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 80], "image/jpeg"),
        (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1], "image/jpeg"),
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80], "image/webp"),
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101], "image/webp"),  # lossless
    ],
)
def test_image_headers_are_read_from_the_file(tmp_path, ext, params, content_type):
    import numpy as np

    from contentgen.providers.fal.outputs import image_header as _image_header

    ok, data = cv2.imencode(ext, np.full((333, 517, 3), 90, np.uint8), params)
    assert ok
    path = tmp_path / f"image{ext}"
    path.write_bytes(data.tobytes())
    assert _image_header(path) == (content_type, 517, 333)
