"""A flow's stages declared once with their shares of the run's progress (pipeline/progress.py:
Stages): each stage's window, and a stage the flow does not declare is
an error naming those it does."""

from __future__ import annotations

import pytest

from contentgen.pipeline import lora
from contentgen.pipeline.progress import Stages


def test_a_stage_fills_its_share_of_the_window() -> None:
    stages = Stages(("fetch", 1), ("train", 3))
    assert stages.window("fetch") == (0.0, 25.0) and stages.window("train") == (25.0, 100.0)
    assert Stages(("a", 1), ("b", 1), start=50, end=70).window("b") == (60.0, 70.0)
    with pytest.raises(KeyError, match="'evaluate' is not one of fetch, train"):
        stages.window("evaluate")


def test_the_lora_flow_keeps_the_windows_its_runs_reported_before() -> None:
    """What a watcher saw: the training from 50 to 88 %, the evaluation last."""
    assert lora.STAGES.window("train") == (50.0, 88.0)
    assert lora.STAGES.window("evaluate") == (90.0, 100.0)
