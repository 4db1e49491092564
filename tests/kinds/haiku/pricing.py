"""Haiku's price: a request per poem, at what the price table says of the item "haiku"; on a
provider's own GPUs, a second of writing after the weights' loading."""

from __future__ import annotations

from contentgen.api import UsageLine
from contentgen.pricing import KindPricing, PriceTable, Spec

WRITING_SECONDS = 1.0


def gpu_seconds(_: Spec, __: PriceTable, ___: bool, loading: float) -> float:
    return loading + WRITING_SECONDS


def usage(provider: str, _: Spec, __: PriceTable, ___: bool) -> list[UsageLine]:
    return [UsageLine(provider=provider, item="haiku", unit="request", quantity=1)]


KIND = KindPricing("Haiku", "haiku-writing", gpu_seconds, usage)
