"""Which checkpoints of a training are scored, and which one is the version's model (pure;
docs/likeness.md#checkpoints).

Likeness tends to peak part-way through a training and fall as the LoRA overfits, and the loss
curve does not show it: so where the trainer stores checkpoints (provider cluster), several of
them are evaluated as the version is, and the best-scoring one becomes the version's model.

The rule: a `good` checkpoint beats a `poor` one; among equals the higher median similarity wins;
an exact tie goes to the earlier step (less trained, less overfit). A checkpoint without a median
(no face in its pictures, or nothing to compare with) is never chosen over a measured one; when
none was measured, the last step is the model, as without checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def spread(stored: Sequence[int], at_most: int) -> list[int]:
    """The steps to score among the `stored` ones: at most `at_most`, spread evenly over the
    training (the k-th of n at about k/n of it), the last always among them."""
    steps = sorted(set(stored))
    if not steps:
        return []
    count = max(1, min(at_most, len(steps)))
    return [steps[(k + 1) * len(steps) // count - 1] for k in range(count)]


# What a choice among the offline provider's checkpoints adds: they are placeholders, no training's.
SIMULATED = "simulated checkpoints: the offline provider's placeholder LoRAs, which no training made"


@dataclass(frozen=True)
class Scored:
    """One checkpoint's verdict and median similarity (None: nothing measured)."""

    step: int
    verdict: str
    median: float | None


@dataclass(frozen=True)
class Choice:
    step: int  # the checkpoint whose LoRA is the version's model
    final: int  # the training's last step
    why: str  # one sentence, for the version's `likeness.choice`


def choose(scored: Sequence[Scored], stopped_at: int | None = None) -> Choice:
    """The version's model among the scored checkpoints (the last of them is the training's last
    step, unless it stopped early: at `stopped_at`, after its newest checkpoint maybe); see the
    module's rule."""
    if not scored:
        raise ValueError("no checkpoint was scored")
    points = sorted(scored, key=lambda p: p.step)
    last = points[-1]
    final = stopped_at if stopped_at is not None else last.step
    newest = (
        f"the last step, {last.step}"
        if final == last.step
        else f"the newest checkpoint, {last.step} (it stopped at step {final})"
    )
    measured = [p for p in points if p.median is not None]
    if not measured:
        verdicts = ", ".join(sorted({p.verdict for p in points}))
        return Choice(
            last.step,
            final,
            f"no checkpoint's likeness could be measured ({verdicts} at all {len(points)} scored): "
            f"{newest}, is the version's model",
        )
    best = max(measured, key=lambda p: (p.verdict == "good", p.median, -p.step))
    if len(points) == 1:
        why = f"{newest}, is the only checkpoint scored ({_brief(last)})"
    elif best is last:
        why = f"{newest}, scored best of {len(points)} checkpoints ({_brief(last)})"
    else:
        kept = "the last step's" if final == last.step else "the newest checkpoint's"
        why = (
            f"step {best.step} scored best of {len(points)} checkpoints ({_brief(best)}; {newest}: "
            f"{_brief(last)}): its LoRA is the version's model, {kept} is kept as finalModelUri"
        )
    return Choice(best.step, final, why)


def _brief(point: Scored) -> str:
    if point.median is None:
        return point.verdict
    return f"{point.verdict}, median {point.median:.2f}"
