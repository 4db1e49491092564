"""Budgets and prices: the pure parts (controller/budget.py, pricing/)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contentgen.api import Cost, UsageLine
from contentgen.controller.budget import (
    Admission,
    Budgets,
    Limits,
    Spender,
    admit,
    annotation_problem,
    limits_for,
    parse_annotation,
    spender,
)
from contentgen.pricing import (
    PriceTable,
    estimated,
    expected_usage,
    headroom,
    megapixels,
    priced,
    settled,
    without_evaluation,
)

NOV = "2026-11"


def over_budget(
    uid: str, namespace: str, owner: str, estimate: float, month: str, spenders: list[Spender], limits: Limits
) -> str:
    """Why a run may not start this month ("" when it may): admit's refusal alone."""
    return admit(uid, namespace, owner, estimate, month, spenders, limits).over


# --- the annotation and the limits ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("250", (250.0, None)),
        (" $12.50 ", (12.5, None)),
        ("namespace=250,owner=40", (250.0, 40.0)),
        ("owner=0", (None, 0.0)),
        ("namespace=1, owner=2", (1.0, 2.0)),
    ],
)
def test_the_annotation_reads_a_namespace_and_an_owner_budget(value, expected):
    assert parse_annotation(value) == expected


@pytest.mark.parametrize("value", ["lots", "team=5", "namespace=-1", "namespace=inf", "owner=x", ""])
def test_an_unreadable_annotation_is_named(value):
    with pytest.raises(ValueError, match=r"contentgen.io/budget|not a budget|could not convert"):
        parse_annotation(value)
    assert annotation_problem(value) or value == ""


def test_limits_come_from_settings_and_the_annotation_overrides_them():
    budgets = Budgets(
        namespace_monthly_usd=100, owner_monthly_usd=20, namespaces={"big": 1000}, owners={"vip": 50}
    )
    assert limits_for("team", "alice", budgets) == Limits(100, 20, "operator settings", "operator settings")
    assert limits_for("big", "vip", budgets) == Limits(1000, 50, "operator settings", "operator settings")
    annotated = limits_for("team", "alice", budgets, "namespace=7")
    assert (annotated.namespace, annotated.owner) == (7, 20)
    assert annotated.namespace_from == "annotation contentgen.io/budget on namespace team"
    # a broken annotation leaves the settings in force
    assert limits_for("team", "alice", budgets, "seven").namespace == 100
    assert limits_for("team", "alice", Budgets()) == Limits(
        None, None, "operator settings", "operator settings"
    )


# --- spend and the decision ---------------------------------------------------------------------------


def body(uid: str, ns: str, owner: str, reason: str, estimated_usd: float, **by_month: float) -> dict:
    return {
        "metadata": {"uid": uid, "namespace": ns},
        "spec": {"owner": owner},
        "status": {
            "conditions": [{"type": "Ready", "status": "False", "reason": reason}],
            "cost": {
                "estimatedUsd": estimated_usd,
                "byMonth": {k.replace("_", "-"): v for k, v in by_month.items()},
            },
        },
    }


def test_a_resource_counts_its_months_and_the_estimate_of_a_run_under_way():
    done = spender(body("a", "ns", "alice", "Succeeded", 3.0, **{"2026_11": 3.0}))
    running = spender(body("b", "ns", "alice", "Running", 2.0, **{"2026_10": 1.0}))
    waiting = spender(body("c", "ns", "alice", "BudgetExceeded", 9.0))
    assert (done.under_way, dict(done.by_month)) == (0.0, {NOV: 3.0})
    assert (running.under_way, dict(running.by_month)) == (2.0, {"2026-10": 1.0})
    assert waiting.under_way == 0.0
    assert spender({"metadata": {}}) == Spender("", "", "", {}, 0.0)


SPENDERS = [
    Spender("a", "team", "alice", {NOV: 6.0, "2026-10": 50.0}, 0.0),
    Spender("b", "team", "bob", {}, 2.0),  # under way
    Spender("c", "other", "alice", {NOV: 3.0}, 0.0),
]


def test_within_the_budget_it_may_start():
    limits = Limits(10.0, None, "operator settings", "operator settings")
    assert over_budget("new", "team", "carol", 2.0, NOV, SPENDERS, limits) == ""  # 6 + 2 + 2 = 10


def test_over_the_namespace_budget_it_waits_with_the_numbers():
    limits = Limits(10.0, None, "annotation contentgen.io/budget on namespace team", "operator settings")
    message = over_budget("new", "team", "carol", 2.5, NOV, SPENDERS, limits)
    assert message.startswith(
        "the monthly budget of namespace team is $10.00 (annotation contentgen.io/budget on namespace team); "
        "2026-11 has spent $8.00 and this run is estimated at $2.50 ($10.50 in all)."
    )
    assert "It starts by itself when the budget allows" in message
    # last month's spend does not count
    assert over_budget("new", "team", "carol", 2.5, "2026-12", SPENDERS, limits) == ""


def test_the_owner_budget_counts_every_namespace_and_the_resources_own_earlier_runs():
    limits = Limits(None, 10.0, "operator settings", "operator settings")
    message = over_budget("a", "team", "alice", 1.5, NOV, SPENDERS, limits)
    assert "owner alice is $10.00" in message and "has spent $9.00" in message  # 6 (its own) + 3
    assert over_budget("a", "team", "alice", 1.0, NOV, SPENDERS, limits) == ""


def test_no_limits_no_check():
    assert over_budget("x", "team", "alice", 1e9, NOV, SPENDERS, Limits(None, None, "", "")) == ""


# --- prices ------------------------------------------------------------------------------------------


def test_megapixels_round_up_per_image_as_fal_bills():
    # a megapixel is 10^6 pixels: fal does not say which, and the larger count never under-counts
    assert [
        megapixels(w, h) for w, h in [(1024, 1024), (1024, 768), (512, 512), (1000, 1000), (2048, 2048)]
    ] == [2, 1, 1, 1, 5]


def test_estimates_follow_the_spec():
    prices = PriceTable()
    four_dev = {"provider": "fal", "model": "flux-dev", "numImages": 4, "imageSize": "square_hd"}
    # square_hd (1024x1024) is 2 megapixels of 10^6 each
    assert priced(expected_usage("ImageGeneration", four_dev, prices), prices)[0] == pytest.approx(0.2)
    lora = {"provider": "fal", "training": {"model": "fal-ai/flux-lora-fast-training", "steps": 1000}}
    # with the likeness evaluation (on by default): 6 prompts × 2 seeds, with the LoRA and
    # without, on flux-lora at 512 × 512 (1 megapixel, $0.035 each)
    assert priced(expected_usage("LoraTraining", lora, prices), prices)[0] == pytest.approx(2.0 + 24 * 0.035)
    one_seed = {**lora, "evaluation": {"seeds": [7]}}
    assert priced(expected_usage("LoraTraining", one_seed, prices), prices)[0] == pytest.approx(
        2.0 + 12 * 0.035
    )
    off = {**lora, "evaluation": {"enabled": False}}
    assert priced(expected_usage("LoraTraining", off, prices), prices)[0] == pytest.approx(2.0)
    speech = {"provider": "assemblyai", "speakerLabels": True, "speechModels": ["universal-2"]}
    cost = estimated("Transcription", speech, prices, None)
    assert cost.estimated_usd == pytest.approx(0.17) and "assuming 1 h of audio" in cost.detail
    # the dearest of the models it may run on; no model named: the dearest the table knows
    both = {**speech, "speechModels": ["universal-3-5-pro", "universal-2"]}
    assert estimated("Transcription", both, prices, None).estimated_usd == pytest.approx(0.23)
    assert estimated(
        "Transcription", {"provider": "assemblyai"}, prices, None
    ).estimated_usd == pytest.approx(0.21)
    assert estimated("ImageGeneration", {**four_dev, "provider": "offline"}, prices, None).estimated_usd == 0


def test_an_unlisted_item_is_priced_at_its_providers_dearest():
    prices = PriceTable()
    # the dearest step: fal-ai/wan-trainer's $0.005 (a Wan 2.2 video trainer, whose page was not read, too)
    assert prices.price("fal", "fal-ai/some-new-trainer", "step") == 0.005
    assert prices.price("fal", "fal-ai/flux/ultra", "megapixel") == 0.04
    assert prices.price("offline", "flux-dev", "megapixel") == 0.0


def test_settling_adds_the_actual_to_the_month_once_per_request():
    prices = PriceTable()
    start = datetime(2026, 11, 3, tzinfo=UTC)
    cost = estimated(
        "ImageGeneration", {"provider": "fal", "model": "flux-dev", "numImages": 2}, prices, None
    )
    usage = [UsageLine(provider="fal", item="fal-ai/flux/dev", unit="megapixel", quantity=2, request="req-1")]
    first = settled(cost, usage, prices, start)
    assert first.actual_usd == pytest.approx(0.05) and first.by_month == {NOV: pytest.approx(0.05)}
    # a later attempt delivers the same paid request: not counted again
    again = settled(first, usage, prices, start)
    assert again.by_month == {NOV: pytest.approx(0.05)} and "counted then" in again.detail
    # a run whose bill is unknown counts its estimate
    unknown = settled(Cost(estimated_usd=1.5), None, prices, start)
    assert unknown.actual_usd is None and unknown.by_month == {NOV: 1.5}


# --- a LoraTraining whose budget covers the training but not its likeness evaluation ----------------


def test_the_training_starts_without_its_evaluation_when_only_the_training_fits():
    limits = Limits(10.0, None, "operator settings", "operator settings")  # 8 spent: 2 left
    admission = admit("new", "team", "carol", 2.84, NOV, SPENDERS, limits, without_evaluation=2.0)
    assert admission.over == ""
    assert admission.skip_evaluation.startswith(
        "budget: the monthly budget of namespace team is $10.00 (operator settings); 2026-11 has spent "
        "$8.00, the training ($2.00) fits but not its likeness evaluation ($0.84 more)"
    )
    # the old rule held the whole run: the same numbers without the split wait
    assert admit("new", "team", "carol", 2.84, NOV, SPENDERS, limits).over.startswith("the monthly budget")
    assert over_budget("new", "team", "carol", 2.84, NOV, SPENDERS, limits) != ""


def test_when_the_training_alone_does_not_fit_it_waits_with_the_trainings_numbers():
    limits = Limits(None, 10.0, "operator settings", "operator settings")  # alice: 9 spent
    admission = admit("a", "team", "alice", 2.84, NOV, SPENDERS, limits, without_evaluation=2.0)
    assert admission.skip_evaluation == ""
    assert "owner alice is $10.00" in admission.over
    assert "estimated at $2.00 ($11.00 in all)" in admission.over


def test_what_the_budgets_leave_a_run_is_the_least_of_them():
    """A run that starts is told what its budgets leave it (issue 67: a live training stops within
    it); its own earlier spend and the runs under way count as in the check that admits it."""
    both = Limits(10.0, 12.0, "operator settings", "operator settings")
    # namespace team: 6 + 2 (under way) spent of 10; owner alice: 6 (its own) + 3 of 12
    assert headroom("a", "team", "alice", NOV, SPENDERS, both) == (2.0, "namespace team")
    assert headroom("a", "team", "alice", NOV, SPENDERS, Limits(None, 12.0, "", "")) == (3.0, "owner alice")
    assert headroom("a", "team", "alice", NOV, SPENDERS, Limits(None, None, "", "")) is None
    assert admit("new", "team", "carol", 1.0, NOV, SPENDERS, both).left == (2.0, "namespace team")
    skipped = admit("new", "team", "carol", 2.84, NOV, SPENDERS, both, without_evaluation=2.0)
    assert skipped.skip_evaluation and skipped.left == (2.0, "namespace team")


def test_within_the_budget_the_evaluation_runs():
    limits = Limits(100.0, 100.0, "operator settings", "operator settings")
    assert admit("new", "team", "carol", 2.84, NOV, SPENDERS, limits, without_evaluation=2.0) == Admission(
        left=(92.0, "namespace team")
    )
    assert admit("x", "team", "alice", 1e9, NOV, SPENDERS, Limits(None, None, "", "")) == Admission()


def test_a_spec_without_an_evaluation_has_none_to_skip():
    spec = {"owner": "a", "provider": "fal", "source": {"url": "s3://b/v.mp4"}, "triggerWord": "tw"}
    off = without_evaluation("LoraTraining", spec)
    assert off is not None and off["evaluation"] == {"enabled": False} and "evaluation" not in spec
    prices = PriceTable()
    assert (
        estimated("LoraTraining", off, prices, None).estimated_usd
        < estimated("LoraTraining", spec, prices, None).estimated_usd
    )
    assert without_evaluation("LoraTraining", {**spec, "evaluation": {"enabled": False}}) is None
    assert without_evaluation("ImageGeneration", {"prompt": "p"}) is None
