"""Wan 2.1 T2V 1.3B's configs (tests/providers/wan_t2v.py) build its published architecture: the
parameters counted on the meta device (nothing allocated) against the sizes its model card and
google's UMT5-XXL give, as bench/video_gpu.py builds them on a GPU."""

from __future__ import annotations

import pytest

from tests.providers.wan_t2v import WAN_T2V_13B

torch = pytest.importorskip("torch")


def _parameters(make: object) -> int:
    with torch.device("meta"):
        module = make()  # type: ignore[operator]
    return sum(p.numel() for p in module.parameters())


def test_the_transformer_is_wan_2_1_t2v_1_3b() -> None:
    from diffusers import WanTransformer3DModel

    count = _parameters(lambda: WanTransformer3DModel(**WAN_T2V_13B["transformer"]))
    assert 1.3e9 < count < 1.45e9, count  # "1.3B" on the model card: 1.42 billion


def test_the_text_encoder_is_umt5_xxl_s_encoder() -> None:
    from transformers import UMT5Config, UMT5EncoderModel

    count = _parameters(lambda: UMT5EncoderModel(UMT5Config(**WAN_T2V_13B["text_encoder"])))
    assert 5.6e9 < count < 5.8e9, count  # umt5-xxl's encoder: 5.68 billion, 11.4 GB in bf16


def test_the_vae_is_wan_2_1_s() -> None:
    from diffusers import AutoencoderKLWan

    count = _parameters(lambda: AutoencoderKLWan(**WAN_T2V_13B["vae"]))
    assert 1.2e8 < count < 1.3e8, count  # Wan2.1_VAE.pth: 127 million
