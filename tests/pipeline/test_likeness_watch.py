"""The LoRA run's watch (pipeline/likeness/watch.py) between a trainer's steps, without a trainer: a
budget (stopWhen.maxCostUsd, priced with the price table's GPU-hour price) stops it before the next
checkpoint's steps would pass it; a person's stop from the run's live channel stops it at once and
says who; another value of the annotation stops nothing; a provider that bills no GPU time is never
stopped by a budget; and the live view reports the step a checkpoint was stored at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from contentgen.api import SpecSnapshot
from contentgen.api.lora import LoraTrainingSpec
from contentgen.api.run import RunBudget
from contentgen.pipeline.context import RunContext
from contentgen.pipeline.likeness.stopping import budget_cap
from contentgen.pipeline.likeness.watch import LikenessWatch
from contentgen.pipeline.settings import PipelineSettings
from contentgen.providers.watch import Planned, SoFar
from contentgen.store import LocalStore


class Channel:
    def __init__(self) -> None:
        self.asked: tuple[str, str] | None = None
        self.reports: list[Any] = []

    def report(self, training: Any, *, now_: bool = False) -> None:
        self.reports.append(training)

    def stop_asked(self) -> tuple[str, str] | None:
        return self.asked


def watch(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    provider: str = "cluster",
    budget: RunBudget | None = None,
    **stop: Any,
) -> LikenessWatch:
    monkeypatch.setenv("CONTENTGEN_PRICES", '{"cluster": {"gpuHourUsd": 3.6}}')  # $0.001 a GPU-second
    spec = {
        "owner": "u",
        "provider": provider,
        "source": {"url": "https://e/v.mp4"},
        "triggerWord": "jx",
        "training": {"steps": 1000, "checkpointEvery": 100, "stopWhen": stop},
    }
    snapshot = SpecSnapshot(kind="LoraTraining", name="jx", uid="uid-1", version=1, spec=spec, budget=budget)
    ctx = RunContext(
        snapshot,
        LocalStore(tmp_path / "store"),
        PipelineSettings(),
        tmp_path,
        lambda *_: None,
        provider=provider,
    )
    ctx.live = Channel()
    parsed = snapshot.parsed_spec()
    assert isinstance(parsed, LoraTrainingSpec)
    cap, whose = budget_cap(parsed.training.stop_when, snapshot.budget)
    made = LikenessWatch(ctx, parsed, None, cap_usd=cap, cap_whose=whose, spent_before_usd=0.5)
    made.begin(Planned(0, 1000, tuple(range(100, 1001, 100))))
    return made


def test_a_budget_stops_before_the_next_checkpoints_steps_would_pass_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    budget = watch(tmp_path, monkeypatch, maxCostUsd=1.0)
    # $0.5 of captions, 200 GPU-s spent ($0.2), 1 s a step: the next 100 steps ($0.1) fit
    assert budget.checkpoint(200, "file:///s200", None) is None
    assert budget.step_ended(SoFar(200, 200.0, 1.0, 300)) is None
    # at 300, $0.8 spent: the next 100 steps would make $0.9: they fit; at 400, $1.0 would be passed
    budget.checkpoint(300, "file:///s300", None)
    assert budget.step_ended(SoFar(300, 300.0, 1.0, 400)) is None
    budget.checkpoint(400, "file:///s400", None)
    stop = budget.step_ended(SoFar(400, 401.0, 1.0, 500))
    assert stop is not None and stop.how == "budget"
    assert (
        stop.why
        == "the run has cost $0.90 of its budget (spec.training.stopWhen.maxCostUsd), $1.00, and the next "
        "100 steps would cost $0.10 more"
    )
    assert budget.live().step == 400


def test_what_the_monthly_budget_left_the_run_stops_it_the_same_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A budget that would be exceeded stops the training keeping what it has, not failing: the
    operator hands the run what the namespace's monthly budget leaves it (SpecSnapshot.budget), the
    lesser of that and maxCostUsd being the one it stops within."""
    left = RunBudget(usd=0.8, whose="namespace team")
    monthly = watch(tmp_path, monkeypatch, budget=left, maxCostUsd=5.0)
    monthly.checkpoint(200, "file:///s200", None)
    assert monthly.step_ended(SoFar(200, 200.0, 1.0, 300)) is None  # $0.7 then: 100 steps fit
    monthly.checkpoint(300, "file:///s300", None)
    stop = monthly.step_ended(SoFar(300, 300.0, 1.0, 400))
    assert stop is not None and stop.how == "budget"
    assert stop.why.startswith(
        "the run has cost $0.80 of what the monthly budget of namespace team left it, $0.80"
    )
    alone = watch(tmp_path / "alone", monkeypatch, budget=RunBudget(usd=0.8, whose="owner u"))
    alone.checkpoint(300, "file:///s300", None)
    assert alone.step_ended(SoFar(300, 300.0, 1.0, 400)) is not None  # no maxCostUsd: the budget alone


def test_a_person_stops_it_and_only_keep_best_is_a_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = watch(tmp_path, monkeypatch)
    channel = asked.ctx.live
    assert isinstance(channel, Channel)
    channel.asked = ("now", "bob")  # the operator refuses it; nothing stops
    assert asked.step_ended(SoFar(12, 12.0, 1.0, 100)) is None
    channel.asked = ("keep-best", "alice")
    stop = asked.step_ended(SoFar(13, 13.0, 1.0, 100))
    assert stop is not None and (stop.how, stop.by) == ("asked", "alice")
    assert channel.reports[-1].stop_asked == "keep-best by alice"


def test_a_provider_without_gpu_time_is_never_stopped_by_a_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    offline = watch(tmp_path, monkeypatch, provider="offline", maxCostUsd=0.01)
    assert offline.step_ended(SoFar(500, None, None, 600)) is None
