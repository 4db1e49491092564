"""A training's loss as a curve people can read (api/lora.loss_curve): at most 64 points, each
the mean of a run of consecutive steps at the last of them."""

from __future__ import annotations

import pytest

from contentgen.api.lora import loss_curve


def test_a_long_training_becomes_64_means() -> None:
    steps = [(s, float(s % 10)) for s in range(1, 1001)]
    curve = loss_curve(steps)
    assert len(curve) == 63 and curve[0].step == 16 and curve[-1].step == 1000  # 16 steps a point
    assert curve[0].loss == pytest.approx(sum(s % 10 for s in range(1, 17)) / 16)


def test_a_short_one_keeps_every_step() -> None:
    steps = [(1, 0.5), (2, 0.25)]
    assert [(p.step, p.loss) for p in loss_curve(steps)] == steps
    assert loss_curve([]) == []
