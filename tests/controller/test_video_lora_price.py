"""What a video LoRA's run is estimated to cost before it starts, and what its usage bills (pricing.py
with api/base_models.py): fal's Wan trainers per step, at least the 100 steps they bill; the Wan
2.2 video trainers, whose page was not read, at the table's dearest step until fal's pricing API
says; captions for the clips too; no FLUX pictures for a video LoRA's likeness."""

from __future__ import annotations

import pytest

from contentgen.pricing import PriceTable, expected_usage, priced, training_usage

PRICES = PriceTable()


def spec(**training: object) -> dict[str, object]:
    return {"owner": "u", "provider": "fal", "training": training}


def test_each_trainer_is_priced_per_step_as_its_page_says() -> None:
    lines = expected_usage("LoraTraining", spec(baseModel="wan-2.1-i2v-14b", steps=400), PRICES)
    assert [(line.item, line.unit, line.quantity) for line in lines] == [("fal-ai/wan-trainer", "step", 400)]
    assert priced(lines, PRICES)[0] == pytest.approx(400 * 0.005)
    image = expected_usage(
        "LoraTraining",
        spec(baseModel="wan-2.2-t2v-a14b", model="fal-ai/wan-22-image-trainer", steps=1000),
        PRICES,
    )
    assert priced(image, PRICES)[0] == pytest.approx(4.5)  # "For $4.5 ... 1000 steps"
    # not on a page read: the dearest step the table has, never less than it may cost
    video = expected_usage("LoraTraining", spec(baseModel="wan-2.2-t2v-a14b", steps=1000), PRICES)
    assert [line.item for line in video] == ["fal-ai/wan-22-trainer/t2v-a14b"]
    assert priced(video, PRICES)[0] == pytest.approx(1000 * 0.005)


def test_a_wan_22_trainer_bills_at_least_100_steps() -> None:
    [line] = training_usage("fal", "fal-ai/wan-22-image-trainer", 60)
    assert line.quantity == 100
    [flux] = training_usage("fal", "fal-ai/flux-lora-fast-training", 60)
    assert flux.quantity == 60
    [offline] = training_usage("offline", "fal-ai/wan-22-image-trainer", 60)
    assert offline.quantity == 60  # fal's minimum is fal's


def test_a_video_loras_captions_count_its_clips_and_its_likeness_draws_no_pictures() -> None:
    dataset = {"captioning": "auto", "maxFrames": 10, "clips": {"maxClips": 5}}
    lines = expected_usage("LoraTraining", {**spec(baseModel="wan-2.2-t2v-a14b"), "dataset": dataset}, PRICES)
    captions = [line for line in lines if line.unit == "request"]
    assert [line.quantity for line in captions] == [15]
    assert not [line for line in lines if line.unit == "megapixel"]  # no likeness pictures
    stills = expected_usage(
        "LoraTraining",
        {**spec(baseModel="wan-2.2-t2v-a14b"), "dataset": {**dataset, "media": "stills"}},
        PRICES,
    )
    assert [line.quantity for line in stills if line.unit == "request"] == [10]
    flux = expected_usage("LoraTraining", {**spec(), "dataset": dataset}, PRICES)
    assert [line.quantity for line in flux if line.unit == "request"] == [10]
    assert [line for line in flux if line.unit == "megapixel"]  # FLUX.1's likeness pictures


def test_every_app_fal_bills_has_a_default_price() -> None:
    """The price table's defaults are each provider's row (api/providers.py) and the trainers of the
    base models' table: every app the product sends to fal is priced without a chart's `prices`,
    the captioner (api/lora's FAL_CAPTION_APP, priced in fal's row) and each image model's app."""
    from contentgen.api.lora import FAL_CAPTION_APP
    from contentgen.api.providers import FAL

    fal = PRICES.items["fal"]
    assert fal[FAL_CAPTION_APP] == {"request": 0.001}
    assert set(FAL.draws.values()) <= set(fal)
