"""The cost of the cluster's own GPUs: a price per GPU-hour in the price table (the operator's
CONTENTGEN_PRICES, `cluster`), estimates before a run from the spec (startup, steps, images,
audio hours, times the kind's GPUs), the worker's measured GPU-seconds priced at the same price,
and budgets that count cluster work like any other."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contentgen.controller.budget import Admission, Limits, Spender, admit
from contentgen.controller.decide import World, decide
from contentgen.controller.settings import OperatorSettings
from contentgen.pricing import (
    ClusterPrices,
    PriceTable,
    cluster_usage,
    estimated,
    expected_usage,
    settled,
    stamped,
    without_evaluation,
)
from tests.harness.controller import NOW, resource

CLUSTER = ClusterPrices(
    gpu_hour_usd=3.0, startup_seconds=30, training_step_seconds=1.5, image_seconds=6, audio_hour_seconds=120
)
TABLE = PriceTable(as_of="2027-01-01", cluster=CLUSTER)
LORA = {"provider": "cluster", "training": {"steps": 800}, "evaluation": {"enabled": False}}


@pytest.mark.parametrize(
    ("kind", "spec", "seconds"),
    [
        ("ImageGeneration", {"provider": "cluster", "numImages": 4}, 30 + 4 * 6),
        ("LoraTraining", LORA, 30 + 800 * 1.5),
        ("Transcription", {"provider": "cluster"}, 30 + 1 * 120),  # assumedAudioHours: 1
    ],
)
def test_the_estimate_is_the_expected_gpu_time_at_the_gpu_hour_price(kind, spec, seconds):
    (line,) = expected_usage(kind, spec, TABLE)
    assert (line.provider, line.unit) == ("cluster", "gpu-hour")
    assert line.quantity == pytest.approx(seconds / 3600)
    cost = estimated(kind, spec, TABLE, None)
    assert cost.estimated_usd == pytest.approx(seconds / 3600 * 3.0, abs=1e-6)
    assert "gpu-hours" in cost.detail and "$3" in cost.detail


def test_a_transcription_estimate_follows_the_assumed_audio_hours():
    table = TABLE.model_copy(update={"assumed_audio_hours": 3.0})
    (line,) = expected_usage("Transcription", {"provider": "cluster"}, table)
    assert line.quantity == pytest.approx((30 + 3 * 120) / 3600)


def test_the_likeness_evaluation_adds_its_pictures_and_can_be_left_out():
    with_it = {**LORA, "evaluation": {"enabled": True, "promptSet": "likeness-v1", "seeds": [1, 2]}}
    full = expected_usage("LoraTraining", with_it, TABLE)[0].quantity
    alone = without_evaluation("LoraTraining", with_it)
    assert alone is not None
    training = expected_usage("LoraTraining", alone, TABLE)[0].quantity
    assert training == pytest.approx((30 + 800 * 1.5) / 3600)
    # a picture per prompt (6) and seed (2) with each checkpoint scored (checkpointEvery's default
    # 250 stores steps 250, 500, 750 and 800: all four scored), and once without a LoRA
    assert full == pytest.approx(training + (4 + 1) * 6 * 2 * 6 / 3600)


@pytest.mark.parametrize(
    ("training", "checkpoints", "scored"),
    [
        ({"steps": 1000, "checkpointEvery": 100}, None, 8),  # ten stored, the default 8 scored
        ({"steps": 1000, "checkpointEvery": 100}, 20, 10),  # no more than are stored
        ({"steps": 1000, "checkpointEvery": 100}, 3, 3),
        ({"steps": 1000, "checkpointEvery": 100}, 1, 1),  # the last only
        ({"steps": 1000, "checkpointEvery": 0}, 8, 1),  # only the last is stored
        ({"steps": 300, "checkpointEvery": 1000}, 8, 1),
        ({"steps": 1000, "checkpointEvery": 300}, 8, 4),  # 300, 600, 900 and 1000
    ],
)
def test_the_estimate_grows_with_the_checkpoints_scored(training, checkpoints, scored):
    evaluation = {"seeds": [1]} | ({"checkpoints": checkpoints} if checkpoints is not None else {})
    spec = {"provider": "cluster", "training": training, "evaluation": evaluation}
    alone = without_evaluation("LoraTraining", spec)
    assert alone is not None
    evaluated = (
        expected_usage("LoraTraining", spec, TABLE)[0].quantity
        - expected_usage("LoraTraining", alone, TABLE)[0].quantity
    )
    # six prompts, one seed: with each checkpoint scored, and the baseline once
    assert evaluated * 3600 == pytest.approx((scored + 1) * 6 * 6)


def test_a_fal_estimate_counts_one_lora_whatever_its_checkpoints_setting():
    """fal's trainers return the final LoRA only (docs/likeness.md#checkpoints)."""
    spec = {"provider": "fal", "training": {"steps": 1000}, "evaluation": {"seeds": [1], "checkpoints": 20}}
    pictures = [line for line in expected_usage("LoraTraining", spec, TABLE) if line.unit == "megapixel"]
    assert [(line.item, line.quantity) for line in pictures] == [("fal-ai/flux-lora", 12)]


def test_a_budget_that_covers_the_training_but_not_its_checkpoints_evaluation_skips_it():
    """The skip of controller/budget.py on the estimate that counts every checkpoint scored: the
    evaluation of one checkpoint would fit, that of eight does not, so the training starts alone."""
    spec = {"provider": "cluster", "training": {"steps": 800, "checkpointEvery": 100}, "evaluation": {}}
    training = without_evaluation("LoraTraining", spec)
    assert training is not None
    one = {**spec, "evaluation": {"checkpoints": 1}}
    alone, with_one, with_eight = (
        estimated("LoraTraining", s, TABLE, None).estimated_usd for s in (training, one, spec)
    )
    # (30 + 800 × 1.5) s of training; 6 prompts × 2 seeds × 6 s per LoRA scored and the baseline
    assert alone == pytest.approx(1230 / 3600 * 3.0, abs=1e-6)
    assert with_one == pytest.approx((1230 + 2 * 72) / 3600 * 3.0, abs=1e-6)
    assert with_eight == pytest.approx((1230 + 9 * 72) / 3600 * 3.0, abs=1e-6)
    limits = Limits(1.2, None, "the chart", "")  # $1.20 a month: training and one checkpoint's evaluation
    fits = admit("one", "team", "carol", with_one, "2027-01", [], limits, without_evaluation=alone)
    assert fits == Admission(left=(1.2, "namespace team"))
    admission = admit("eight", "team", "carol", with_eight, "2027-01", [], limits, without_evaluation=alone)
    assert admission.over == ""
    assert f"its likeness evaluation (${with_eight - alone:.2f} more)" in admission.skip_evaluation


def test_the_gpus_of_a_kind_multiply_its_estimate():
    settings = OperatorSettings(gpu_jobs={"LoraTraining": {"count": 4}}, prices=TABLE)
    assert settings.prices.cluster.gpus == {"LoraTraining": 4}
    one = expected_usage("LoraTraining", LORA, TABLE)[0].quantity
    four = expected_usage("LoraTraining", LORA, settings.prices)[0].quantity
    assert four == pytest.approx(4 * one)


@pytest.mark.parametrize(
    ("spec", "load", "gpus"),
    [
        ({}, 0, 4),  # the flux-dev pool draws it: no load, on its pod's 4 GPUs
        ({"model": "flux-schnell"}, 30, 2),  # no pool serves it: its Job loads, on the Job's 2
        ({"denoising": "job"}, 30, 2),  # the spec asks for its own Job
    ],
)
def test_a_pooled_run_is_counted_on_the_pool_pods_gpus_and_a_jobs_on_its_own(spec, load, gpus):
    pooled = CLUSTER.model_copy(
        update={
            "gpus": {"ImageGeneration": 2},
            "denoising": "pool",
            "pooled_models": ["flux-dev", "flux-lora"],
            "pool_gpus": {"flux-dev": 4, "flux-lora": 4},
        }
    )
    table = TABLE.model_copy(update={"cluster": pooled})
    (line,) = expected_usage("ImageGeneration", {"provider": "cluster", "numImages": 3, **spec}, table)
    assert line.quantity * 3600 == pytest.approx((load + 3 * 6) * gpus)


def test_the_price_comes_from_the_table_and_a_listed_item_wins():
    assert PriceTable().price("cluster", "lora-training", "gpu-hour") == ClusterPrices().gpu_hour_usd
    table = PriceTable.model_validate(
        {"cluster": {"gpuHourUsd": 2.5}, "items": {"cluster": {"image-generation": {"gpu-hour": 1.25}}}}
    )
    assert table.price("cluster", "lora-training", "gpu-hour") == 2.5
    assert table.price("cluster", "image-generation", "gpu-hour") == 1.25
    assert PriceTable().price("offline", "x", "gpu-hour") == 0.0


def test_measured_gpu_seconds_are_stamped_and_settled_at_the_gpu_hour_price():
    usage = cluster_usage("lora-training", 1800.0, "job-1")  # half an hour on one GPU
    (line,) = stamped(usage, {}, TABLE)
    assert (line.unit_price_usd, line.price_date) == (3.0, "2027-01-01")
    cost = estimated("LoraTraining", LORA, TABLE, None)
    started = datetime(2027, 1, 5, tzinfo=UTC)
    done = settled(cost, [line], TABLE, started)
    assert done.actual_usd == pytest.approx(1.5)
    assert done.by_month == {"2027-01": pytest.approx(1.5)}


def test_a_budget_holds_a_cluster_run_it_cannot_cover():
    estimate = estimated("LoraTraining", LORA, TABLE, None).estimated_usd  # (30 + 1200) s at $3/h
    spent = [Spender("old", "team", "carol", {"2027-01": 9.5}, 0.0)]
    limits = Limits(10.0, None, "the chart", "")
    assert (
        "this run is estimated at $1.02"
        in admit("new", "team", "carol", estimate, "2027-01", spent, limits).over
    )
    assert admit("new", "team", "carol", estimate, "2027-01", [], limits).over == ""


def test_a_cluster_run_starts_with_its_estimate_in_status_cost():
    res = resource("ImageGeneration", provider="cluster", numImages=2)
    d = decide(res, World(now=NOW, prices=TABLE))
    assert d.job is not None
    assert d.status["cost"]["estimatedUsd"] == pytest.approx((30 + 2 * 6) / 3600 * 3.0, abs=1e-6)
    assert d.status["cost"]["detail"].startswith("estimate: ")


def test_a_stored_baseline_leaves_its_pictures_out_of_a_trainings_estimate(tmp_path):
    """A LoraTraining's likeness baseline stored by an earlier version (likeness/baselines/) is
    not paid again, so its estimate leaves it out, on fal (pictures) and on the cluster (GPU
    time); the store says whether it is there (likeness/plan.estimate_baseline_cached)."""
    from contentgen.pipeline.likeness.plan import Plan, estimate_baseline_cached
    from contentgen.store import LocalStore, keys

    fal = {"provider": "fal", "evaluation": {"seeds": [1, 2]}}
    pictures = [
        line.quantity for line in expected_usage("LoraTraining", fal, TABLE) if line.unit == "megapixel"
    ]
    cached = expected_usage("LoraTraining", fal, TABLE, baseline_cached=True)
    assert sum(pictures) == 24 and sum(line.quantity for line in cached if line.unit == "megapixel") == 12
    with_it = {**LORA, "evaluation": {"enabled": True, "seeds": [1, 2], "checkpoints": 1}}
    full = expected_usage("LoraTraining", with_it, TABLE)[0].quantity
    less = expected_usage("LoraTraining", with_it, TABLE, baseline_cached=True)[0].quantity
    assert full - less == pytest.approx(6 * 2 * 6 / 3600)  # one picture per prompt and seed, 6 s each

    store = LocalStore(tmp_path / "store")
    assert not estimate_baseline_cached(store, "LoraTraining", fal)
    for _, seed, index, _ in Plan(seeds=(1, 2)).items():
        store.put_once_bytes(
            keys.likeness_baseline("fal", "flux-lora", "likeness-v1", seed, index), b"png", "image/png"
        )
    assert estimate_baseline_cached(store, "LoraTraining", fal)
    assert not estimate_baseline_cached(store, "LoraTraining", {**fal, "evaluation": {"seeds": [1, 3]}})
    assert not estimate_baseline_cached(store, "LoraTraining", {**fal, "evaluation": {"enabled": False}})
    assert not estimate_baseline_cached(store, "ImageGeneration", fal)
    assert estimate_baseline_cached(store, "LoraEvaluation", fal)


@pytest.mark.parametrize(
    ("directories", "pooled"),
    [
        (["Wan2.1-I2V-14B-480P-Diffusers", "Wan2.1-I2V-14B-720P-Diffusers"], True),
        # a 720p clip of it would still load its own checkpoint: its estimate keeps the load
        (["Wan2.1-I2V-14B-480P-Diffusers"], False),
    ],
)
def test_a_video_model_is_estimated_pooled_only_where_a_pool_serves_each_of_its_directories(
    directories, pooled
):
    pools = [
        {"name": f"wan-{n}", "baseModel": directory, "url": f"http://wan-{n}:8090"}
        for n, directory in enumerate(directories)
    ]
    settings = OperatorSettings(cluster_denoising="pool", cluster_pools=pools, prices=TABLE)
    assert ("wan-14b-i2v" in settings.prices.cluster.pooled_models) is pooled
    spec = {"provider": "cluster", "model": "wan-14b-i2v", "image": {"url": "https://e.com/a.png"}}
    own = expected_usage("VideoGeneration", {**spec, "denoising": "job"}, settings.prices)[0].quantity
    asked = expected_usage("VideoGeneration", spec, settings.prices)[0].quantity
    assert (asked < own) is pooled  # no load counted, where it is surely the pool's
