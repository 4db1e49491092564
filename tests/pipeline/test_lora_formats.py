"""A Wan or LTX-2 LoRA in ComfyUI's layout (pipeline/lora_formats.py), checked against diffusers' own
reading of that layout (`_convert_non_diffusers_wan_lora_to_diffusers` and
`_convert_non_diffusers_ltx2_lora_to_diffusers`, which load Lightricks' and Wan's original names into
diffusers' transformers): every tensor comes back under its diffusers name with the same values, a
bf16 file's bytes untouched; a key that names no Wan or LTX layer, or a file naming both, is
refused."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from diffusers.loaders.lora_conversion_utils import (
    _convert_non_diffusers_ltx2_lora_to_diffusers,
    _convert_non_diffusers_wan_lora_to_diffusers,
)
from safetensors.torch import load, save

from contentgen.pipeline.lora_formats import UnplacedLora, comfyui_name, read_header, to_comfyui

BLOCK_LAYERS = (
    "attn1.to_q",
    "attn1.to_k",
    "attn1.to_v",
    "attn1.to_out.0",
    "attn2.to_q",
    "attn2.to_k",
    "attn2.to_v",
    "attn2.to_out.0",
    "attn2.add_k_proj",
    "attn2.add_v_proj",
    "ffn.net.0.proj",
    "ffn.net.2",
)


def diffusers_lora(
    dtype: torch.dtype = torch.float32, blocks: int = 2, rank: int = 4
) -> dict[str, torch.Tensor]:
    """A Wan I2V LoRA as diffusers saves one (`transformer.` names), every block layer adapted."""
    gen = torch.Generator().manual_seed(7)
    tensors = {}
    for block in range(blocks):
        for layer in BLOCK_LAYERS:
            name = f"transformer.blocks.{block}.{layer}"
            tensors[f"{name}.lora_A.weight"] = torch.randn(rank, 24, generator=gen).to(dtype)
            tensors[f"{name}.lora_B.weight"] = torch.randn(24, rank, generator=gen).to(dtype)
    tensors["transformer.proj_out.lora_A.weight"] = torch.randn(rank, 24, generator=gen).to(dtype)
    tensors["transformer.proj_out.lora_B.weight"] = torch.randn(24, rank, generator=gen).to(dtype)
    return tensors


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_comfyuis_layout_reads_back_through_diffusers_own_converter(dtype: torch.dtype) -> None:
    original = diffusers_lora(dtype)
    comfy = load(to_comfyui(save(original)))
    assert all(k.startswith("diffusion_model.") for k in comfy)
    assert "diffusion_model.blocks.1.cross_attn.k_img.lora_A.weight" in comfy
    assert "diffusion_model.head.head.lora_B.weight" in comfy
    back = _convert_non_diffusers_wan_lora_to_diffusers(dict(comfy))
    assert set(back) == set(original)
    assert all(torch.equal(back[k], original[k]) for k in original)


def test_the_tensors_bytes_are_copied_and_the_header_says_the_layout() -> None:
    data = save(diffusers_lora(torch.bfloat16))
    converted = to_comfyui(data)
    header, start = read_header(converted)
    assert header["__metadata__"]["contentgen.layout"] == "comfyui"
    assert start % 8 == 0 and converted[start:] == data[read_header(data)[1] :]


def test_an_alpha_other_than_the_rank_is_said_for_comfyui_to_scale_by() -> None:
    # blocks only: diffusers' converter reads no alpha of head.head (ComfyUI reads any module's)
    tensors = {k: v for k, v in diffusers_lora(blocks=1).items() if "proj_out" not in k}
    metadata = {"lora_adapter_metadata": json.dumps({"transformer": {"r": 4, "lora_alpha": 8}})}
    comfy = load(to_comfyui(save(tensors, metadata=metadata)))
    alphas = {k: v for k, v in comfy.items() if k.endswith(".alpha")}
    assert len(alphas) == len(BLOCK_LAYERS) and all(float(v) == 8.0 for v in alphas.values())
    # diffusers reads the alpha as ComfyUI does: its weights scaled by alpha / rank = 2
    back = _convert_non_diffusers_wan_lora_to_diffusers(dict(comfy))
    key = "transformer.blocks.0.attn1.to_q"
    product = back[f"{key}.lora_B.weight"] @ back[f"{key}.lora_A.weight"]
    expected = 2 * tensors[f"{key}.lora_B.weight"] @ tensors[f"{key}.lora_A.weight"]
    assert torch.allclose(product, expected, atol=1e-5)
    plain = load(to_comfyui(save(tensors)))  # no metadata: the scale is 1, no alpha written
    assert not any(k.endswith(".alpha") for k in plain)


def test_a_key_of_no_wan_layer_is_refused() -> None:
    with pytest.raises(UnplacedLora, match=r"transformer_blocks\.0"):
        comfyui_name("transformer.transformer_blocks.0.attn.to_q.lora_A.weight")  # FLUX's
    with pytest.raises(UnplacedLora, match="not a LoRA tensor"):
        comfyui_name("transformer.blocks.0.attn1.to_q.weight")
    flux = save({"transformer.single_transformer_blocks.0.proj_out.lora_A.weight": torch.zeros(2, 2)})
    with pytest.raises(UnplacedLora):
        to_comfyui(flux)
    named = "diffusion_model.blocks.0.self_attn.q.lora_A.weight"
    assert comfyui_name(named) == named  # a file in the layout already is copied as it is
    kohya = "lora_unet_blocks_0_self_attn_q.lora_down.weight"
    assert comfyui_name(kohya) == kohya  # as are kohya's names, which ComfyUI maps itself
    with pytest.raises(ValueError, match="not a safetensors file"):
        to_comfyui(struct.pack("<Q", 99) + b"{}")


LTX2_LAYERS = (
    *(
        f"{a}.{p}"
        for a in ("attn1", "attn2", "audio_attn1", "audio_to_video_attn")
        for p in ("to_q", "to_out.0")
    ),
    "ff.net.0.proj",
    "ff.net.2",
    "audio_ff.net.2",
)


def test_an_ltx2_lora_in_comfyuis_layout_reads_back_through_diffusers_own_converter() -> None:
    gen = torch.Generator().manual_seed(3)
    original = {
        f"transformer.transformer_blocks.{block}.{layer}.lora_{ab}.weight": torch.randn(4, 4, generator=gen)
        for block in range(2)
        for layer in LTX2_LAYERS
        for ab in "AB"
    }
    comfy = load(to_comfyui(save(original)))
    assert "diffusion_model.transformer_blocks.1.audio_to_video_attn.to_q.lora_A.weight" in comfy
    back = _convert_non_diffusers_ltx2_lora_to_diffusers(dict(comfy))
    assert set(back) == set(original) and all(torch.equal(back[k], original[k]) for k in original)
    # a layer outside the blocks (its name is Lightricks' own elsewhere), or Wan's beside LTX's
    with pytest.raises(UnplacedLora, match="named audio_proj_in"):
        comfyui_name("transformer.audio_proj_in.lora_A.weight")
    both = {**original, "transformer.blocks.0.attn1.to_q.lora_A.weight": torch.zeros(4, 4)}
    with pytest.raises(UnplacedLora, match="both LTX and Wan"):
        to_comfyui(save(both))
