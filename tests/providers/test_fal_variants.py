"""Every billing path on fal (an image submit, a training submit after its upload, a caption
submit after its upload) against every behaviour fal's documentation allows where it is silent
(fake_fal.Variant), with the submit's answer lost or the pod dying with the submit on the wire.

Whatever the variant: the request is sent once and billed at most once, and the run either
delivers the paid output or ends in ProviderOutcomeUnknown; never any other failure, and never a
failure while the request may still be running."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from contentgen.api.lora.plan import plan_for
from contentgen.providers.base import CaptionRequest, ImageRequest, MemoryCheckpoint, TrainingRequest
from contentgen.providers.fal import FalProvider
from contentgen.providers.fal.captions import FalCaptioner

from .fake_fal import FAL_KEY, FakeFal, Variant
from .fakes import (
    DELIVERED,
    UNKNOWN,
    Crash,
    FakeSleep,
    Progress,
    after,
    dataset_zip,
    jpeg,
    mocked,
    retry,
    run_to_the_end,
)

# (variant, what the caller can know): every documented freedom, alone and together
VARIANTS: dict[str, tuple[Variant, str]] = {
    "ended-only": (Variant(), DELIVERED),
    "in-flight-listed": (Variant(in_flight=True), DELIVERED),
    "defaults-filled": (Variant(fills_defaults=True), DELIVERED),
    "urls-rewritten": (Variant(rewrites_urls=True), DELIVERED),
    "normalised-and-in-flight": (Variant(in_flight=True, fills_defaults=True, rewrites_urls=True), DELIVERED),
    "account-stores-nothing": (Variant(account_stores_io=False), DELIVERED),  # our X-Fal-Store-IO: 1
    "rerouted-listed-under-ours": (
        Variant(reroute="original", honours_no_fallback=False, in_flight=True),
        DELIVERED,
    ),
    "rerouted-listed-elsewhere": (Variant(reroute="fallback", honours_no_fallback=False), UNKNOWN),
    "fallback-declined": (Variant(reroute="fallback"), DELIVERED),
    "list-lags": (Variant(lag=3), DELIVERED),
}

LOST = {"lost-answer": after(httpx.ReadTimeout), "crash": after(Crash)}


def provider(**options: Any) -> FalProvider:
    return FalProvider(FAL_KEY, retry=retry(FakeSleep()), poll_interval=2.0, **options)


def image(tmp_path: Path, fal: FakeFal, **options: Any) -> Any:
    request = ImageRequest(prompt="a red fox", model="flux-dev", num_images=1, image_size="square", seed=7)
    return lambda checkpoint: provider(**options).generate_images(
        request, _dir(tmp_path), Progress(), checkpoint
    )


def training(tmp_path: Path, fal: FakeFal, **options: Any) -> Any:
    zip_path = dataset_zip(tmp_path / "dataset.zip")
    request = TrainingRequest(
        zip_path, "dmavatar", plan=plan_for(app="fal-ai/flux-lora-fast-training", steps=1000, provider="fal")
    )
    return lambda checkpoint: provider(**options).train_lora(request, _dir(tmp_path), Progress(), checkpoint)


def caption(tmp_path: Path, fal: FakeFal, **options: Any) -> Any:
    paths = []
    for i in range(3):
        path = tmp_path / f"{i + 1:04d}.jpg"
        path.write_bytes(jpeg(32 + i, 32))
        paths.append(path)
    request = CaptionRequest(tuple(paths))
    return lambda checkpoint: FalCaptioner(provider(**options)).caption_images(
        request, _dir(tmp_path), Progress(), checkpoint
    )


PATHS: dict[str, Callable[..., Any]] = {"image": image, "training": training, "caption": caption}
OUTPUTS = {"image": 1, "training": 1, "caption": 3}


def _dir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir(exist_ok=True)
    return path


@pytest.mark.parametrize("lost", list(LOST), ids=list(LOST))
@pytest.mark.parametrize("variant", list(VARIANTS), ids=list(VARIANTS))
@pytest.mark.parametrize("path", list(PATHS), ids=list(PATHS))
def test_a_lost_submit_is_paid_once_and_delivered_or_unknown(tmp_path, path, variant, lost):
    fal = FakeFal()
    fal.variant, expected = VARIANTS[variant]
    fal.fail("submit", LOST[lost])
    with mocked(fal):
        outcome, _ = run_to_the_end(PATHS[path](tmp_path, fal))
        assert outcome == expected
    assert fal.count("submit") == fal.accepted  # every submit was taken: the lost one never sent again
    assert fal.billed <= fal.accepted
    if outcome == DELIVERED:
        assert fal.accepted == fal.billed == OUTPUTS[path]


@pytest.mark.parametrize("path", list(PATHS), ids=list(PATHS))
def test_with_payload_storage_turned_off_a_lost_submit_is_unknown(tmp_path, path):
    fal = FakeFal()
    fal.fail("submit", after(httpx.ReadTimeout))
    with mocked(fal):
        outcome, error = run_to_the_end(PATHS[path](tmp_path, fal, store_io=False))
    assert outcome == UNKNOWN and "without their input" in str(error)
    assert fal.count("submit") == fal.accepted == 1
    assert all(r.headers["x-fal-store-io"] == "0" for k, r in fal.requests if k == "submit")


@pytest.mark.parametrize("path", list(PATHS), ids=list(PATHS))
def test_every_submit_asks_fal_to_keep_its_payloads_and_declines_fallbacks(tmp_path, path):
    fal = FakeFal()
    with mocked(fal):
        run_to_the_end(PATHS[path](tmp_path, fal))
    submits = [r for k, r in fal.requests if k == "submit"]
    assert submits and all(r.headers["x-fal-store-io"] == "1" for r in submits)
    assert all(r.headers["x-fal-disable-fallbacks"] == "true" for r in submits)


def test_other_workloads_on_the_account_are_told_apart_by_time_and_input(tmp_path):
    fal = FakeFal()
    fal.variant = Variant(in_flight=True)
    args = {"prompt": "a red fox", "image_size": "square", "num_images": 1, "seed": 7}
    fal.neighbour("fal-ai/flux/dev", args, ago=timedelta(hours=2))  # the same input, long before
    fal.neighbour("fal-ai/flux/dev", {**args, "prompt": "a grey wolf"})  # at the same time, another input
    fal.fail("submit", after(httpx.ReadTimeout))
    with mocked(fal):
        outcome, images = run_to_the_end(image(tmp_path, fal))
    ours = [job.request_id for job in fal.ours]
    assert outcome == DELIVERED and [i.request_id for i in images] == ours
    assert (fal.accepted, fal.billed) == (1, 1)


def test_another_workloads_identical_request_at_the_same_time_is_not_guessed_between(tmp_path):
    fal = FakeFal()
    fal.variant = Variant(in_flight=True)
    fal.neighbour(
        "fal-ai/flux/dev", {"prompt": "a red fox", "image_size": "square", "num_images": 1, "seed": 7}
    )
    fal.fail("submit", after(httpx.ReadTimeout))
    with mocked(fal):
        outcome, error = run_to_the_end(image(tmp_path, fal))
    assert outcome == UNKNOWN and "2 requests that fit equally well" in str(error)
    assert fal.count("submit") == 1


def test_a_lost_submit_found_still_queued_is_waited_on_not_failed(tmp_path):
    # the bug this guards against: an in-flight item (status_code null) ended the run as "HTTP None"
    fal = FakeFal()
    fal.variant = Variant(in_flight=True)
    fal.fail("submit", after(httpx.ReadTimeout))
    with mocked(fal):
        request = TrainingRequest(
            dataset_zip(tmp_path / "d.zip"),
            "dmavatar",
            plan=plan_for(app="fal-ai/flux-lora-fast-training", steps=1000, provider="fal"),
        )
        out = provider().train_lora(request, _dir(tmp_path), Progress(), MemoryCheckpoint())
    listed = [r for k, r in fal.requests if k == "list"]
    assert listed and out.request_id == "req-1" and fal.polled("req-1") >= 1
    assert (fal.accepted, fal.billed) == (1, 1)


def test_a_platform_api_key_without_the_scope_says_so_and_how_to_fix_it(tmp_path):
    from .fakes import failure

    fal = FakeFal()
    fal.fail("submit", after(httpx.ReadTimeout))
    fal.fail("list", failure(403, {"detail": "Forbidden"}))
    with mocked(fal):
        outcome, error = run_to_the_end(image(tmp_path, fal))
    assert outcome == UNKNOWN
    assert "lacks the scope" in str(error) and "ADMIN scope" in str(error) and "FAL_KEY" in str(error)
    assert fal.count("submit") == 1


@pytest.mark.parametrize(
    ("app", "sent"),
    [
        ("fal-ai/flux-lora-fast-training", {"trigger_word": "dmavatar"}),
        ("fal-ai/flux-lora-portrait-trainer", {"trigger_phrase": "dmavatar", "learning_rate": 0.0002}),
    ],
)
def test_each_trainer_gets_its_own_input_names(tmp_path, app, sent):
    fal = FakeFal()
    request = TrainingRequest(
        dataset_zip(tmp_path / "d.zip"),
        "dmavatar",
        plan=plan_for(app=app, steps=1000, learning_rate=0.0002, provider="fal"),
    )
    with mocked(fal):
        provider().train_lora(request, _dir(tmp_path), Progress(), MemoryCheckpoint())
    [(submitted_app, arguments)] = fal.submitted
    assert submitted_app == app and {k: arguments[k] for k in sent} == sent
    assert set(arguments) == {"images_data_url", "steps", *sent} and fal.billed == 1
