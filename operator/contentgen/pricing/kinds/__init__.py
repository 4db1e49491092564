"""How each kind is estimated before it runs: one module each (`KIND = KindPricing(...)`), found
by their package (api/registry.py), so that pricing a new kind is adding one module."""

from __future__ import annotations

from contentgen.api.registry import declared

from ._base import KindPricing

PRICING_KINDS: dict[str, KindPricing] = declared(__name__, __path__, KindPricing)

__all__ = ["PRICING_KINDS", "KindPricing"]
