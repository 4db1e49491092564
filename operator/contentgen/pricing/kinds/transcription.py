"""How a Transcription is estimated before it runs: its audio's assumed hours until measured."""

from __future__ import annotations

from contentgen.api import UsageLine

from ..table import PriceTable
from ..usage import transcription_usage
from ._base import KindPricing, Spec


def _transcription_seconds(_: Spec, prices: PriceTable, __: bool, loading: float) -> float:
    return loading + prices.assumed_audio_hours * prices.cluster.audio_hour_seconds


def _transcription_usage(provider: str, spec: Spec, prices: PriceTable, _: bool) -> list[UsageLine]:
    """The audio's assumed hours on the dearest model it may run on, and its speaker labels."""
    seconds, labels = prices.assumed_audio_hours * 3600, bool(spec.get("speakerLabels"))
    models = [str(m) for m in spec.get("speechModels") or []]
    model = max(models, key=lambda m: prices.price(provider, m, "audio-hour"), default="")
    return transcription_usage(provider, seconds, labels, model=model)


def _assumed_audio(prices: PriceTable) -> str:
    return f"assuming {prices.assumed_audio_hours:g} h of audio until it is measured"


KIND = KindPricing(
    "Transcription", "transcription", _transcription_seconds, _transcription_usage, _assumed_audio
)
