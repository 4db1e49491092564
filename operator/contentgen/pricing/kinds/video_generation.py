"""How a VideoGeneration is estimated before it runs: its frames."""

from __future__ import annotations

from contentgen.api import UsageLine
from contentgen.api.video import shape_of_wire

from ..table import PriceTable
from ..usage import video_usage
from ._base import KindPricing, Spec


def _video_seconds(spec: Spec, prices: PriceTable, _: bool, loading: float) -> float:
    return loading + shape_of_wire(spec).frames * prices.cluster.video_frame_seconds


def _video_usage(provider: str, spec: Spec, _: PriceTable, __: bool) -> list[UsageLine]:
    return video_usage(provider, shape_of_wire(spec))


KIND = KindPricing("VideoGeneration", "video-generation", _video_seconds, _video_usage)
