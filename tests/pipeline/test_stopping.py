"""When a training stops before its last step, and what that saves (pipeline/likeness/stopping.py,
pure): the likeness plateau, the budget and the savings."""

from __future__ import annotations

import pytest

from contentgen.pipeline.likeness.checkpoints import Scored
from contentgen.pipeline.likeness.stopping import Plateau, Rates, over_budget, plateau, saved


def curve(*points: tuple[int, str, float | None]) -> list[Scored]:
    return [Scored(step, verdict, median) for step, verdict, median in points]


PATIENT = Plateau(patience=2, min_gain=0.01)


def test_a_plateau_stops_patience_checkpoints_after_the_best() -> None:
    rising = curve((100, "poor", 0.2), (200, "good", 0.4), (300, "good", 0.5))
    assert plateau(rising, PATIENT) == ""
    flat = [*rising, Scored(400, "good", 0.505), Scored(500, "good", 0.49)]  # +0.005 is no gain
    assert plateau(flat[:4], PATIENT) == ""
    why = plateau(flat, PATIENT)
    assert why.startswith("the likeness has not bettered step 300's (good, median 0.50) by 0.01")
    assert "in the 2 checkpoints scored since (patience 2)" in why
    # a rise of min_gain or more starts the count again
    assert plateau([*flat[:4], Scored(500, "good", 0.52), Scored(600, "good", 0.5)], PATIENT) == ""


def test_a_good_checkpoint_beats_a_poor_one_whatever_its_median() -> None:
    # a late checkpoint that copies a training image: the highest median, poor for it; no improvement
    copies = curve((100, "good", 0.5), (200, "poor", 0.8), (300, "poor", 0.85))
    assert plateau(copies, PATIENT).startswith("the likeness has not bettered step 100's")
    # and a good one after poor ones is one, even with a lower median
    assert plateau(curve((100, "poor", 0.6), (200, "good", 0.4), (300, "good", 0.41)), PATIENT) == ""


def test_nothing_measured_never_stops_a_training_but_counts_once_something_was() -> None:
    faceless = curve((100, "no-faces", None), (200, "no-faces", None), (300, "no-faces", None))
    assert plateau(faceless, Plateau(1, 0.0)) == ""
    assert plateau(curve((100, "good", 0.5), (200, "no-faces", None), (300, "no-faces", None)), PATIENT)
    assert (
        plateau(curve((300, "good", 0.5), (100, "good", 0.2), (200, "good", 0.4)), PATIENT) == ""
    )  # by step


@pytest.mark.parametrize(
    ("rates", "cap", "ahead", "scored", "stops"),
    [
        (Rates(1.0, 0.01, 0.5), None, 100, True, False),  # no budget
        (Rates(1.0, 0.01, 0.5), 3.0, 100, True, False),  # 1 + 1 + 0.5 = 2.5 fits
        (Rates(1.0, 0.01, 0.5), 2.4, 100, True, True),
        (Rates(1.0, 0.01, 0.5), 2.4, 100, False, False),  # 2.0 without its pictures
        (Rates(2.39, 0.01, 0.5), 2.4, 1, False, False),  # between checkpoints: one more step
        (Rates(2.395, 0.01, 0.5), 2.4, 1, False, True),
    ],
)
def test_a_budget_stops_before_the_next_steps_would_pass_it(
    rates: Rates, cap: float | None, ahead: int, scored: bool, stops: bool
) -> None:
    why = over_budget(rates, cap, ahead, scored)
    assert bool(why) == stops
    if stops:
        assert cap is not None and why.startswith(
            f"the run has cost ${rates.spent_usd:.2f} of its budget, ${cap:.2f}"
        )


def test_what_a_stop_saves() -> None:
    kept = saved(500, 1000, 2.0, 24, 10.0, 2.0 / 3600)
    assert (kept.steps, kept.gpu_seconds) == (500, 1240.0)
    assert kept.usd == pytest.approx(1240 * 2 / 3600, abs=1e-4)
    assert saved(500, 1000, None, 24, 10.0, 2.0 / 3600) == type(kept)(500, None, None)  # no GPU time
    assert saved(1000, 1000, 2.0, 0, None, None).steps == 0
