"""How a LoraEvaluation is estimated before it runs: its likeness pictures, with the LoRA and
without it."""

from __future__ import annotations

from contentgen.api import UsageLine
from contentgen.api.lora import (
    LIKENESS_PROMPT_SETS,
)

from ..table import PriceTable
from ..usage import evaluation_usage, likeness_plan
from ._base import KindPricing, Spec


def _evaluation_seconds(spec: Spec, prices: PriceTable, baseline_cached: bool, loading: float) -> float:
    """The pictures with the LoRA, and without it unless `baseline_cached`."""
    prompt_set, seeds = likeness_plan(spec.get("evaluation") or {})
    pictures = LIKENESS_PROMPT_SETS.get(prompt_set, 0) * seeds * (1 if baseline_cached else 2)
    return loading + pictures * prices.cluster.image_seconds


def _evaluation_usage(provider: str, spec: Spec, _: PriceTable, baseline_cached: bool) -> list[UsageLine]:
    prompt_set, seeds = likeness_plan(spec.get("evaluation") or {})
    return evaluation_usage(provider, prompt_set, seeds, baseline_cached=baseline_cached)


KIND = KindPricing("LoraEvaluation", "likeness-evaluation", _evaluation_seconds, _evaluation_usage)
