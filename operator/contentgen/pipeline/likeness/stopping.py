"""When a training stops before its last step, and what that saves (pure;
docs/cluster-training.md#stopping-early).

- **A likeness plateau** (`training.stopWhen.likenessPlateau`): the checkpoints scored so far have
  not bettered the best of them by `minGain` for `patience` checkpoints in a row. "Better" is the
  order the version's model is chosen by (checkpoints.py): a `good` checkpoint beats a `poor` one,
  then the higher median; so a late checkpoint that copies a training image (the highest median,
  `poor` for it) is no improvement. A checkpoint whose likeness could not be measured (no face)
  counts against the patience once something was measured, and nothing stops a training before
  anything was: a curve of no faces says nothing about where it peaks.
- **A budget** (`stopWhen.maxCostUsd`, or what the monthly budgets leave the run): at a stored
  checkpoint, the run stops when the steps to the next one and that checkpoint's pictures, at the
  rates measured so far, would pass the budget, keeping everything it paid for; between
  checkpoints, when one more step would (a rate that rose since: the steps since the last
  checkpoint are then not kept, the budget is).
- **A person** (`contentgen.io/stop: keep-best`): at the next step boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from contentgen.api.lora import StopWhen
from contentgen.api.run import RunBudget

from .checkpoints import Scored


@dataclass(frozen=True)
class Plateau:
    patience: int
    min_gain: float


def plateau(points: Sequence[Scored], rule: Plateau) -> str:
    """Why the training stops on its likeness plateau ("" while it goes on): see the module."""
    best: Scored | None = None
    since = 0
    for point in sorted(points, key=lambda p: p.step):
        if point.median is not None and (best is None or _improves(point, best, rule.min_gain)):
            best, since = point, 0
        elif best is not None:
            since += 1
    if best is None or since < rule.patience:
        return ""
    gain = f" by {rule.min_gain:.2f}" if rule.min_gain > 0 else ""
    return (
        f"the likeness has not bettered step {best.step}'s ({best.verdict}, median {best.median:.2f}){gain} "
        f"in the {since} checkpoint{'s' if since != 1 else ''} scored since (patience {rule.patience})"
    )


def _improves(point: Scored, best: Scored, min_gain: float) -> bool:
    assert point.median is not None and best.median is not None
    if (point.verdict == "good") != (best.verdict == "good"):
        return point.verdict == "good"
    return point.median >= best.median + min_gain - 1e-12


@dataclass(frozen=True)
class Rates:
    """What the run has measured so far, in the budget's terms: USD spent, USD per step, and USD per
    checkpoint scored (its pictures)."""

    spent_usd: float
    per_step_usd: float
    per_scoring_usd: float


def budget_cap(stop_when: StopWhen | None, left: RunBudget | None) -> tuple[float | None, str]:
    """The budget a live training stops within, and which it is in words: the spec's
    stopWhen.maxCostUsd or what the monthly budgets left the run when it started, the lesser."""
    caps = []
    if stop_when is not None and stop_when.max_cost_usd is not None:
        caps.append((stop_when.max_cost_usd, "its budget (spec.training.stopWhen.maxCostUsd)"))
    if left is not None:
        caps.append((left.usd, f"what the monthly budget of {left.whose} left it"))
    cap = min(caps, default=None)
    return (cap[0], cap[1]) if cap is not None else (None, "its budget")


def over_budget(
    rates: Rates, cap_usd: float | None, steps_ahead: int, scored_ahead: bool, *, whose: str = "its budget"
) -> str:
    """Why the training stops now for its budget ("" while it goes on): `steps_ahead` steps to the
    next stored checkpoint (1 between checkpoints) and, `scored_ahead`, its pictures would pass
    `cap_usd` at the rates measured so far. `whose`: which budget, in words (budget_cap)."""
    if cap_usd is None:
        return ""
    ahead = steps_ahead * rates.per_step_usd + (rates.per_scoring_usd if scored_ahead else 0.0)
    if rates.spent_usd + ahead <= cap_usd + 1e-9:
        return ""
    what = f"the next {steps_ahead} step{'s' if steps_ahead != 1 else ''}"
    what += " and that checkpoint's pictures" if scored_ahead else ""
    return (
        f"the run has cost ${rates.spent_usd:.2f} of {whose}, ${cap_usd:.2f}, and {what} would cost "
        f"${ahead:.2f} more"
    )


@dataclass(frozen=True)
class Saved:
    steps: int
    gpu_seconds: float | None
    usd: float | None


def saved(
    step: int,
    planned: int,
    seconds_per_step: float | None,
    pictures_left: int,
    seconds_per_picture: float | None,
    usd_per_gpu_second: float | None,
) -> Saved:
    """What stopping after `step` of `planned` saved: the steps not run and the pictures of the
    checkpoints not scored, at the rates measured (GPU-seconds, × the pod's GPUs already); None
    where the provider bills no GPU time."""
    steps = max(0, planned - step)
    if seconds_per_step is None:
        return Saved(steps, None, None)
    seconds = steps * seconds_per_step + pictures_left * (seconds_per_picture or 0.0)
    usd = None if usd_per_gpu_second is None else round(seconds * usd_per_gpu_second, 4)
    return Saved(steps, round(seconds, 1), usd)
