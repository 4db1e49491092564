"""The fal video provider: the real fal-client against the fal fake's video apps (fake_fal_video.py),
every request counted: what each app is sent, the picture uploaded once, a video paid once
whatever happens around it, and what comes back measured rather than trusted."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import httpx
import numpy as np
import pytest

from contentgen.errors import InvalidInput, MissingCredentials, PermanentError
from contentgen.providers import video_generator
from contentgen.providers.base import LoraWeights, MemoryCheckpoint, VideoRequest
from contentgen.providers.cancel import NOT_BILLED, FalCanceller, pending
from contentgen.providers.fal import FalProvider
from contentgen.providers.fal.video import FalVideoGenerator

from . import fake_fal_video as apps
from .fake_fal import FAL_KEY, FakeFal
from .fakes import Crash, FakeSleep, Progress, after, mocked, retry

LORA = "https://bucket.s3.amazonaws.com/loras/u/1/model.safetensors?X-Amz-Signature=s3cr3t&X-Amz-Expires=3600"


@pytest.fixture
def fal() -> FakeFal:
    return FakeFal()


def generator(sleep: FakeSleep | None = None) -> FalVideoGenerator:
    sleep = sleep or FakeSleep()
    return FalVideoGenerator(FalProvider(FAL_KEY, retry=retry(sleep), poll_interval=2.0))


def picture(tmp_path: Path) -> Path:
    path = tmp_path / "picture.png"
    image = np.zeros((480, 640, 3), np.uint8)
    image[100:300, 200:400] = (40, 160, 220)
    cv2.imwrite(str(path), image)
    return path


def request(**fields) -> VideoRequest:
    base = dict(
        prompt="a lighthouse at dusk, waves rolling in",
        model="wan-2.2-t2v",
        app=apps.WAN_T2V,
        frames=33,
        fps=16,
        width=832,
        height=480,
        resolution="480p",
        aspect_ratio="16:9",
    )
    return VideoRequest(**{**base, **fields})


def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir(exist_ok=True)
    return path


def measured(path: Path) -> tuple[int, float, int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return frames, float(stream.average_rate or 0), stream.width, stream.height


# --- what each app is sent -------------------------------------------------------------------------


def test_wan_text_to_video_sends_the_documented_fields_and_delivers_the_frames_asked(tmp_path, fal):
    progress, checkpoint = Progress(), MemoryCheckpoint()
    with mocked(fal):
        out = generator().generate_video(
            request(seed=7, negative_prompt="blurry", loras=(LoraWeights(LORA, 0.8),)),
            work(tmp_path),
            progress,
            checkpoint,
        )

    [(app, sent)] = fal.submitted
    assert app == apps.WAN_T2V
    assert sent == {
        "prompt": "a lighthouse at dusk, waves rolling in",
        "negative_prompt": "blurry",
        "num_frames": 33,
        "frames_per_second": 16,
        "resolution": "480p",
        "aspect_ratio": "16:9",
        "seed": 7,
        # fal's default interpolates a frame between each pair and doubles the rate: not the video asked
        "num_interpolated_frames": 0,
        "loras": [{"path": LORA, "scale": 0.8}],
    }
    assert (fal.accepted, fal.billed) == (1, 1)
    assert out.request_id == "req-1" and out.seed == 7 and not out.placeholder
    assert out.content_type == "video/mp4" and out.path.suffix == ".mp4"
    frames, fps, _, height = measured(out.path)
    assert (frames, fps) == (33, 16.0) and height == 480
    # the checkpoint holds what providers/cancel.py and the bill read, the presigned link unsigned
    saved = checkpoint.load()
    assert saved["provider"] == "fal" and saved["app"] == apps.WAN_T2V and saved["request_id"] == "req-1"
    assert saved["result"]["video"]["url"].endswith("/req-1/output.mp4")
    assert "s3cr3t" not in json.dumps(saved)
    assert progress.monotonic and progress[-1] == 100
    assert any(10 < p < 85 for p in progress)  # the steps in fal's logs


def test_without_the_interpolation_field_wan_would_double_the_frames_and_rate():
    # the fake plays out the page's rule the provider's num_interpolated_frames=0 avoids
    args = {"prompt": "p", "num_frames": 33, "frames_per_second": 16}
    assert apps.shape(apps.WAN_T2V, args, "listed")[:2] == (65, 32)


def test_wan_image_to_video_uploads_the_picture_to_fals_cdn_once(tmp_path, fal):
    pic = picture(tmp_path)
    presigned = "https://minio.contentgen.svc:9000/b/generated-images/x.png?X-Amz-Signature=s"
    req = request(
        model="wan-2.2-i2v", app=apps.WAN_I2V, aspect_ratio="auto", image_path=pic, image_url=presigned
    )
    checkpoint = MemoryCheckpoint()
    with mocked(fal):
        out = generator().generate_video(req, work(tmp_path), Progress(), checkpoint)
        again = generator().generate_video(req, work(tmp_path), Progress(), checkpoint)

    assert fal.uploads == [("picture.png", pic.read_bytes())]
    [(app, sent)] = fal.submitted
    assert app == apps.WAN_I2V
    assert sent["image_url"] == "https://v3.fal.media/files/fake/1-picture.png"  # never the store's link
    assert "loras" not in sent and sent["aspect_ratio"] == "auto"
    assert (fal.accepted, fal.billed) == (1, 1)
    assert again.request_id == out.request_id == "req-1"


def test_a_picture_fal_could_not_fetch_is_uploaded_once_more(tmp_path, fal):
    pic = picture(tmp_path)
    req = request(model="wan-2.2-i2v", app=apps.WAN_I2V, aspect_ratio="16:9", image_path=pic)
    checkpoint = MemoryCheckpoint()
    with mocked(fal):
        first = FalVideoGenerator(FalProvider(FAL_KEY, retry=retry(FakeSleep()), poll_interval=2.0))
        # the upload expired before fal fetched it
        fal.kill("https://v3.fal.media/files/fake/1-picture.png")
        out = first.generate_video(req, work(tmp_path), Progress(), checkpoint)

    assert [name for name, _ in fal.uploads] == ["picture.png", "picture.png"]
    assert [a["image_url"] for _, a in fal.submitted] == [
        "https://v3.fal.media/files/fake/1-picture.png",
        "https://v3.fal.media/files/fake/2-picture.png",
    ]
    assert (fal.accepted, fal.billed) == (2, 1) and out.request_id == "req-2"


def test_ltx_sends_no_frame_rate_and_takes_loras_in_both_modes(tmp_path, fal):
    with mocked(fal):
        out = generator().generate_video(
            request(
                model="ltx-video-13b",
                app=apps.LTX_I2V,
                frames=25,
                fps=24,
                resolution="480p",
                image_path=picture(tmp_path),
                loras=(LoraWeights(LORA),),
            ),
            work(tmp_path),
            Progress(),
            MemoryCheckpoint(),
        )
    [(app, sent)] = fal.submitted
    assert app == apps.LTX_I2V
    assert "frames_per_second" not in sent and "frame_rate" not in sent
    assert sent["loras"] == [{"path": LORA, "scale": 1.0}] and sent["num_frames"] == 25
    assert measured(out.path)[:2] == (25, 24.0)


@pytest.mark.parametrize(("seconds", "sent"), [(None, "5"), (10.0, "10")])
def test_kling_is_sent_a_duration_as_the_string_its_page_documents(tmp_path, fal, seconds, sent):
    fal.variant.video.returns_seed = False  # Kling's output has no seed
    with mocked(fal):
        out = generator().generate_video(
            request(
                model="kling-2.5-turbo",
                app=apps.KLING_T2V,
                frames=120 if seconds is None else 240,
                fps=24,
                duration_seconds=seconds,
                resolution="720p",
                seed=3,
            ),
            work(tmp_path),
            Progress(),
            MemoryCheckpoint(),
        )
    [(_, arguments)] = fal.submitted
    assert arguments == {"prompt": request().prompt, "duration": sent, "aspect_ratio": "16:9"}
    assert out.seed == 3  # fal named none: the one asked for
    assert measured(out.path)[0] == int(sent) * 24


def test_kling_image_to_video_sends_no_aspect_ratio(tmp_path, fal):
    with mocked(fal):
        generator().generate_video(
            request(
                model="kling-2.5-turbo", app=apps.KLING_I2V, frames=120, fps=24, image_path=picture(tmp_path)
            ),
            work(tmp_path),
            Progress(),
            MemoryCheckpoint(),
        )
    [(_, arguments)] = fal.submitted
    assert set(arguments) == {"prompt", "duration", "image_url"}


# --- refused before anything is paid --------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"loras": (LoraWeights("file:///data/loras/a.safetensors"),)}, "loras: fal can only fetch"),
        (
            {
                "model": "wan-2.2-i2v",
                "app": apps.WAN_I2V,
                "image_path": Path("p.png"),
                "loras": (LoraWeights(LORA),),
            },
            "takes none",
        ),
        ({"model": "wan-1.3b-t2v"}, "model: fal runs"),
        ({"app": apps.LTX_T2V}, "runs on fal's"),
        ({"model": "wan-2.2-i2v", "app": apps.WAN_I2V}, "animates a picture"),
        ({"model": "kling-2.5-turbo", "app": apps.KLING_T2V, "duration_seconds": 7.0}, "durationSeconds"),
    ],
)
def test_a_request_fal_would_refuse_is_refused_first(tmp_path, fal, fields, message):
    with mocked(fal), pytest.raises(InvalidInput, match=message):
        generator().generate_video(request(**fields), work(tmp_path), Progress(), MemoryCheckpoint())
    assert fal.requests == []


# --- paid once, whatever happens around it --------------------------------------------------------


def test_a_pod_that_dies_while_waiting_polls_the_same_request(tmp_path, fal):
    checkpoint = MemoryCheckpoint()
    with mocked(fal):
        with pytest.raises(Crash):
            generator(FakeSleep(crash_at=3)).generate_video(request(), work(tmp_path), Progress(), checkpoint)
        out = generator().generate_video(request(), work(tmp_path), Progress(), checkpoint)
    assert (fal.accepted, fal.billed) == (1, 1) and out.request_id == "req-1"


def test_a_video_in_fals_queue_when_its_resource_is_deleted_is_cancelled_unbilled(tmp_path, fal):
    checkpoint = MemoryCheckpoint()
    with mocked(fal):
        with pytest.raises(Crash):  # the pod dies while the request is still queued
            generator(FakeSleep(crash_at=1)).generate_video(request(), work(tmp_path), Progress(), checkpoint)
        [waiting] = pending([checkpoint.load()])
        assert (waiting.provider, waiting.app, waiting.request_id) == ("fal", apps.WAN_T2V, "req-1")
        cancelled = FalCanceller(FAL_KEY).cancel(waiting)
    assert cancelled.billing == NOT_BILLED and fal.billed == 0


@pytest.mark.parametrize("rewrites", [False, True])
def test_a_lost_submit_answer_is_found_in_fals_request_list_not_sent_again(tmp_path, fal, rewrites):
    fal.variant.rewrites_urls = rewrites  # fal may show the picture's URL as its own copy
    fal.variant.in_flight = True  # and list the request while it is still queued
    fal.fail("submit", after(httpx.ReadTimeout))
    req = request(model="wan-2.2-i2v", app=apps.WAN_I2V, image_path=picture(tmp_path))
    with mocked(fal):
        out = generator().generate_video(req, work(tmp_path), Progress(), MemoryCheckpoint())
    assert (fal.accepted, fal.billed) == (1, 1) and out.request_id == "req-1"
    assert fal.count("list") >= 1


def test_a_finished_video_is_downloaded_again_not_paid_again(tmp_path, fal):
    checkpoint = MemoryCheckpoint()
    with mocked(fal):
        generator().generate_video(request(), work(tmp_path), Progress(), checkpoint)
        asked = len(fal.requests)
        generator().generate_video(request(), work(tmp_path), Progress(), checkpoint)
    assert {kind for kind, _ in fal.requests[asked:]} == {"download"}
    assert (fal.accepted, fal.billed) == (1, 1)


def test_other_inputs_are_a_new_request(tmp_path, fal):
    checkpoint = MemoryCheckpoint()
    with mocked(fal):
        generator().generate_video(request(), work(tmp_path), Progress(), checkpoint)
        generator().generate_video(request(seed=9), work(tmp_path), Progress(), checkpoint)
    assert (fal.accepted, fal.billed) == (2, 2)


def test_a_video_the_cdn_no_longer_serves_names_the_paid_request(tmp_path, fal):
    checkpoint = MemoryCheckpoint()
    with mocked(fal):
        generator().generate_video(request(), work(tmp_path), Progress(), checkpoint)
        fal.kill(checkpoint.load()["result"]["video"]["url"])
        with pytest.raises(PermanentError, match=r"req-1 .*paid for") as err:
            generator().generate_video(request(), work(tmp_path), Progress(), checkpoint)
    assert err.value.reason == "ProviderOutputExpired" and fal.accepted == 1


def test_a_delivery_that_is_not_a_video_is_refused_with_its_result_kept(tmp_path, fal):
    checkpoint = MemoryCheckpoint()
    with mocked(fal):
        generator().generate_video(request(), work(tmp_path), Progress(), checkpoint)
        url = checkpoint.load()["result"]["video"]["url"]
        fal.files[url] = b"<html>not a video</html>"
        with pytest.raises(PermanentError, match="not an MP4 or WebM"):
            generator().generate_video(request(), work(tmp_path), Progress(), checkpoint)
    assert checkpoint.load()["result"]["video"]["url"] == url and fal.accepted == 1


@pytest.mark.parametrize(
    "variant",
    [
        apps.VideoVariant(file_fields=False),
        apps.VideoVariant(returns_seed=False),
        apps.VideoVariant(sizes="rounded"),
    ],
)
def test_every_documented_shape_of_the_result_is_taken(tmp_path, fal, variant):
    fal.variant.video = variant
    with mocked(fal):
        out = generator().generate_video(request(), work(tmp_path), Progress(), MemoryCheckpoint())
    assert measured(out.path)[0] == 33
    assert out.seed == (1234 if variant.returns_seed else None)


# --- the registry ---------------------------------------------------------------------------------


def test_the_registry_builds_it_from_fal_key_and_refuses_without_one():
    assert isinstance(video_generator("fal", env={"FAL_KEY": FAL_KEY}), FalVideoGenerator)
    with pytest.raises(MissingCredentials, match="FAL_KEY is not set"):
        video_generator("fal", env={})
