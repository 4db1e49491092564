"""bench/early_stop.py's judge, on curves whose answer is known: a likeness that peaks early and
falls stops `patience` checkpoints after its peak, losing nothing; one that rises to the end never
stops; one that turns into copies of its training images stops, keeping the good peak, not the
copies' higher median; noise that fakes a drop stops it too early, and says so."""

from __future__ import annotations

from bench.early_stop import STEPS, Run, judge, runs, summary
from contentgen.pipeline.likeness.stopping import Plateau

RULE = Plateau(patience=2, min_gain=0.01)


def run(**changes: object) -> Run:
    fields = {"base": 0.1, "top": 0.6, "peak": 0.3, "fall": 0.2, "copies": False, "noise": 0.0, "seed": 1}
    return Run(**{**fields, **changes})  # type: ignore[arg-type]


def test_a_curve_that_peaks_early_stops_patience_checkpoints_after_its_peak() -> None:
    done = judge(run(), 100, 10, RULE)
    assert done.stopped_at == 500 and done.lost == 0 and done.early
    assert not done.too_early and not done.too_late
    assert done.gpu_seconds_saved > (STEPS - 500) * 0.5


def test_a_curve_that_rises_to_the_end_runs_every_step() -> None:
    done = judge(run(peak=1.0), 100, 10, RULE)
    assert done.stopped_at == STEPS and done.lost == 0 and not done.too_late and done.gpu_seconds_saved == 0


def test_copies_are_no_improvement() -> None:
    done = judge(run(copies=True), 100, 10, RULE)
    assert done.stopped_at < STEPS and done.lost <= 0


def test_noise_can_stop_a_training_too_early_and_the_summary_counts_it() -> None:
    slow = run(peak=0.9, top=0.45, noise=0.08, seed=3)
    outcomes = [judge(slow, 100, 10, Plateau(1, 0.0)) for _ in range(1)]
    outcomes += [judge(r, 100, 10, RULE) for r in runs(50, 5, held_out=True)]
    said = summary(outcomes)
    assert 0 <= said["tooEarlyPct"] <= 100 and said["runs"] == 51
    noisy = [judge(r, 100, 10, Plateau(1, 0.0)) for r in runs(200, 9, held_out=False)]
    assert (
        summary(noisy)["tooEarlyPct"]
        > summary([judge(r, 100, 10, RULE) for r in runs(200, 9, held_out=False)])["tooEarlyPct"]
    )
