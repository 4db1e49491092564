"""How an ImageGeneration is estimated before it runs: its pictures."""

from __future__ import annotations

from contentgen.api import UsageLine
from contentgen.api.image import IMAGE_SIZES

from ..table import PriceTable
from ..usage import image_usage
from ._base import KindPricing, Spec


def _image_seconds(spec: Spec, prices: PriceTable, _: bool, loading: float) -> float:
    return loading + int(spec.get("numImages", 1)) * prices.cluster.image_seconds


def _image_usage(provider: str, spec: Spec, _: PriceTable, __: bool) -> list[UsageLine]:
    width, height = IMAGE_SIZES.get(str(spec.get("imageSize", "landscape_4_3")), (1024, 768))
    count = int(spec.get("numImages", 1))
    return image_usage(provider, str(spec.get("model", "flux-dev")), [(width, height)] * count)


KIND = KindPricing("ImageGeneration", "image-generation", _image_seconds, _image_usage)
