"""What a kind declares of how it is estimated before it runs (KindPricing)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from contentgen.api import UsageLine

from ..table import PriceTable

Spec = Mapping[str, Any]
# gpu_seconds(spec, prices, baseline_cached, loading): the seconds a Job of one GPU holds for a run
# of `spec`, from `loading` (the weights' loading: none where a warm pool draws)
GpuSeconds = Callable[[Spec, PriceTable, bool, float], float]
# usage(provider, spec, prices, baseline_cached): what a run of `spec` bills `provider`, at most
Usage = Callable[[str, Spec, PriceTable, bool], list[UsageLine]]


def _assumes_nothing(_: PriceTable) -> str:
    return ""


@dataclass(frozen=True)
class KindPricing:
    """How a kind's run is estimated before it starts, declared once per kind (PRICING_KINDS)."""

    kind: str
    item: str  # what its GPU time on a provider's own GPUs is billed as (gpu_usage's item)
    gpu_seconds: GpuSeconds
    usage: Usage
    # what its estimate assumes until the run has measured it, for the cost's detail ("": nothing)
    assumes: Callable[[PriceTable], str] = _assumes_nothing
