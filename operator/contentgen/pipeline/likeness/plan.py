"""What a likeness evaluation asks for and what it bills at most, without generating or scoring
anything: plain Python, so that the operator and the HTTP API (whose image carries no numpy or
OpenCV) can estimate an evaluation as the pipeline runs it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contentgen.api import KINDS, UsageLine
from contentgen.api.lora import LIKENESS_IMAGE_SIZE, LIKENESS_MODEL
from contentgen.api.providers import provider_entry
from contentgen.pricing import evaluation_usage
from contentgen.store import ObjectStore, keys

from .prompts import DEFAULT_SEEDS, DEFAULT_SET, Prompt, prompt_set


@dataclass(frozen=True)
class Plan:
    prompt_set: str = DEFAULT_SET
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    model: str = LIKENESS_MODEL
    image_size: str = LIKENESS_IMAGE_SIZE

    def items(self) -> list[tuple[str, int, int, Prompt]]:
        """(name, seed, prompt index, prompt) of every picture, in order."""
        return [
            (f"p{index + 1:02d}-s{seed}", seed, index, prompt)
            for index, prompt in enumerate(prompt_set(self.prompt_set))
            for seed in self.seeds
        ]


def expected_usage(
    provider: str, plan: Plan, *, baseline_cached: bool = False, loras: int = 1
) -> list[UsageLine]:
    """What the evaluation of `loras` LoRAs (a training's checkpoints) bills at most (the run's
    estimate counts the same)."""
    return evaluation_usage(
        provider,
        plan.prompt_set,
        len(plan.seeds),
        baseline_cached=baseline_cached,
        checkpoints=loras,
        model=plan.model,
    )


def of_spec(kind: str, spec: Mapping[str, Any]) -> Plan | None:
    """The likeness evaluation a run of `spec` (as on the wire) makes: its kind's likeness plan (a
    LoraEvaluation's, or a LoraTraining's unless it is turned off); None for a kind without one."""
    declared, evaluation = KINDS.get(kind), spec.get("evaluation") or {}
    if declared is None or declared.likeness_plan is None or not evaluation.get("enabled", True):
        return None
    return Plan(
        str(evaluation.get("promptSet") or DEFAULT_SET), tuple(evaluation.get("seeds") or DEFAULT_SEEDS)
    )


def estimate_baseline_cached(store: ObjectStore | None, kind: str, spec: Mapping[str, Any]) -> bool:
    """Whether the run of `spec` (with the provider it runs on, `SpecSnapshot.priced_spec`) finds
    its likeness baseline stored, so that its estimate leaves those pictures out as its bill will.
    False where it has none, and where the store cannot say now (the estimate then counts them:
    it is at most). Provider cluster keys its baseline by its staged weights as well (evaluation's
    baseline_model), which only its generator knows: counted."""
    plan = of_spec(kind, spec)
    provider = str(spec.get("provider") or "")
    if store is None or plan is None or not provider or provider_entry(provider).own_gpus:
        return False
    try:
        return baseline_cached(store, provider, plan)
    except Exception:  # an estimate never fails a run
        return False


def baseline_cached(store: ObjectStore, provider: str, plan: Plan) -> bool:
    """Whether every picture without a LoRA is stored already (shared, never paid again)."""
    return all(
        store.exists(keys.likeness_baseline(provider, plan.model, plan.prompt_set, seed, index))
        for _, seed, index, _ in plan.items()
    )
