"""What a continued training (training.continueFrom) keeps of the version it goes on from, and
what it may change (docs/cluster-training.md#continuing-a-training): one rule for the pipeline (the
version's config.json, before anything is fetched), the cluster's trainer (the stored state) and
the offline provider's simulation of it (its simulated state).

- **Kept, or refused in one line**: the base model (the staged model), `rank`, `loraTargets`,
  `optimizer` and the `memoryPlan` it was trained with. They are what the stored state is (its
  LoRA's shapes, its optimizer's moments, its numerics): another one cannot go on from it.
- **Applied, and said**: `learningRate` (the optimizer's moments go on, at the new rate: torch's
  optimizer would otherwise take the rate its state was saved with), `maxGradNorm`,
  `timestepSampling`, `guidance`, `resolution` and `batchSize`, which each step reads anew. The
  version's `continuedFrom.changed` says each, as `learningRate 0.0001 -> 5e-05`.

A value a side does not say (a state kept before it was) is not compared. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from contentgen.api.lora.plan import TrainingPlan
from contentgen.errors import InvalidInput

KEPT = ("baseModel", "rank", "loraTargets", "optimizer", "memoryPlan")
APPLIED = ("learningRate", "maxGradNorm", "timestepSampling", "guidance", "resolution", "batchSize")
# how the base model is said in a refusal: the field a person sets
_SAID = {"baseModel": "base model"}


@dataclass(frozen=True)
class Terms:
    refused: list[str] = field(default_factory=list)  # "rank 16 (this spec: 32)"
    applied: list[str] = field(default_factory=list)  # "learningRate 0.0001 -> 5e-05"


def compare(was: Mapping[str, Any], now: Mapping[str, Any]) -> Terms:
    """What `now` (this spec's, by the spec's field names) changes of `was` (the continued
    version's): the changes refused and those applied."""
    terms = Terms()
    for name in (*KEPT, *APPLIED):
        if name not in was or name not in now or _same(was[name], now[name]):
            continue
        if name in KEPT:
            terms.refused.append(f"{_SAID.get(name, name)} {was[name]} (this spec: {now[name]})")
        else:
            terms.applied.append(f"{name} {was[name]} -> {now[name]}")
    return terms


def check(what: str, terms: Terms) -> None:
    """InvalidInput in one line where the continue changes what the state is; `what` names the
    state (training.continueFrom: version 1's step 600)."""
    if terms.refused:
        raise InvalidInput(
            f"{what} was trained with {'; '.join(terms.refused)}: a training goes on only with the same "
            "base model, rank, loraTargets, optimizer and memoryPlan (learningRate, maxGradNorm, "
            "timestepSampling, guidance, resolution and batchSize may change)"
        )


def terms_of(plan: TrainingPlan) -> dict[str, Any]:
    """A run's plan by the spec's names, as a state records it and `compare` reads it (a learning
    rate left to the trainer, a batch of one per process: not said)."""
    said: dict[str, Any] = {
        "baseModel": plan.base.name,
        "rank": plan.rank,
        "loraTargets": plan.lora_targets,
        "optimizer": plan.optimizer,
        "maxGradNorm": plan.max_grad_norm,
        "timestepSampling": plan.timestep_sampling,
        "guidance": plan.guidance,
        "resolution": plan.resolution,
    }
    if plan.learning_rate is not None:
        said["learningRate"] = plan.learning_rate
    if plan.batch_size:
        said["batchSize"] = plan.batch_size
    return said


def _same(one: Any, other: Any) -> bool:
    if isinstance(one, int | float) and isinstance(other, int | float) and not isinstance(one, bool):
        return abs(float(one) - float(other)) <= 1e-12 * max(1.0, abs(float(one)))
    return bool(one == other)
