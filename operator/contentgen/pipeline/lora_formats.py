"""A Wan or LTX LoRA in ComfyUI's layout: the same tensors, under the names ComfyUI's loaders read.

ComfyUI loads a LoRA into its Wan model by the model's own parameter names (Wan's original ones,
`diffusion_model.blocks.0.self_attn.q.weight`): comfy/lora.py's `model_lora_keys_unet` maps
`diffusion_model.<module>` to the module's weight, and its LoRA adapter
(comfy/weight_adapter/lora.py) reads `<module>.lora_up.weight` and `.lora_down.weight`, or
`.lora_B.weight` and `.lora_A.weight`, with an optional `<module>.alpha` (the scale is alpha over
the rank; 1 without it), and `<module>.diff_b` for a bias. diffusers names the same modules its own
way (`blocks.0.attn1.to_q`); the renaming is the inverse of diffusers' own
`_convert_non_diffusers_wan_lora_to_diffusers` (loaders/lora_conversion_utils.py), which the test
runs on what this writes.

LTX-Video's and LTX-2's transformer blocks keep Lightricks' own names in diffusers for every layer
a LoRA adapts in them (`transformer_blocks.0.attn1.to_q`, `ff.net.0.proj`; diffusers' converter,
`_convert_non_diffusers_ltx2_lora_to_diffusers`, renames only the top-level modules and the
norms), and ComfyUI maps `diffusion_model.<module>` onto its LTXV and LTXAV models, not diffusers'
`transformer.` prefix: such a LoRA is written with that prefix in place of diffusers'.

The file is rewritten at the byte level: its tensors' bytes are copied as they are (any dtype:
bf16, fp16, fp32), only the header's names change, and `alpha` scalars are added where the file
says its LoRA was trained with an alpha other than its rank (diffusers' `lora_adapter_metadata`;
without it the scale is 1, as diffusers reads such a file). A key it does not know is refused, so a
file it cannot place (a FLUX LoRA, say) is never written under wrong names. A file ComfyUI reads as
it is (Wan's own `diffusion_model.` names, kohya's `lora_unet_` ones: what other trainers write)
is copied with its names unchanged.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

_PREFIXES = ("transformer.", "base_model.model.")
# Keys ComfyUI reads as they are: Wan's own module names, and kohya's (comfy/lora.py maps
# `lora_unet_<module with _ for .>` to every module)
COMFYUI_PREFIXES = ("diffusion_model.", "lora_unet_")
# contentgen's own tensors, carried as they are (the offline provider's simulated LoRA carries its
# subject's pictures: providers/offline_subject.py)
OWN_PREFIX = "contentgen."
_BLOCK = {
    "attn1.to_q": "self_attn.q",
    "attn1.to_k": "self_attn.k",
    "attn1.to_v": "self_attn.v",
    "attn1.to_out.0": "self_attn.o",
    "attn2.to_q": "cross_attn.q",
    "attn2.to_k": "cross_attn.k",
    "attn2.to_v": "cross_attn.v",
    "attn2.to_out.0": "cross_attn.o",
    "attn2.add_k_proj": "cross_attn.k_img",
    "attn2.add_v_proj": "cross_attn.v_img",
    "ffn.net.0.proj": "ffn.0",
    "ffn.net.2": "ffn.2",
}
_TOP = {
    "condition_embedder.time_proj": "time_projection.1",
    "proj_out": "head.head",
    "condition_embedder.text_embedder.linear_1": "text_embedding.0",
    "condition_embedder.text_embedder.linear_2": "text_embedding.2",
    "condition_embedder.time_embedder.linear_1": "time_embedding.0",
    "condition_embedder.time_embedder.linear_2": "time_embedding.2",
    "condition_embedder.image_embedder.ff.net.0.proj": "img_emb.proj.1",
    "condition_embedder.image_embedder.ff.net.2": "img_emb.proj.3",
}
_PARTS = {".lora_A.weight": ".lora_A.weight", ".lora_B.weight": ".lora_B.weight", ".lora_B.bias": ".diff_b"}
_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(.+)$")
# The linear layers of an LTX-Video or LTX-2 transformer block, named alike in diffusers and in
# Lightricks' checkpoints (and so in ComfyUI): the video stream's, and LTX-2's audio stream's and
# the attention between the two streams
_LTX_ATTENTION = (
    "attn1",
    "attn2",
    "audio_attn1",
    "audio_attn2",
    "audio_to_video_attn",
    "video_to_audio_attn",
)
_LTX_BLOCK = {
    *(f"{a}.{p}" for a in _LTX_ATTENTION for p in ("to_q", "to_k", "to_v", "to_out.0")),
    *(f"{f}.{p}" for f in ("ff", "audio_ff") for p in ("net.0.proj", "net.2")),
}
_LTX_BLOCK_KEY = re.compile(r"^transformer_blocks\.(\d+)\.(.+)$")


class UnplacedLora(ValueError):
    """A LoRA with a key that names no layer of a Wan or LTX transformer, or layers of both."""


def comfyui_name(key: str) -> str:
    """The name ComfyUI reads for a diffusers-named Wan or LTX LoRA key (UnplacedLora for
    another); a key ComfyUI reads as it is (Wan's own names, or kohya's `lora_unet_` ones) is kept,
    and so is one of contentgen's own."""
    return _placed(key)[1]


def _placed(key: str) -> tuple[str, str]:
    """The family whose layer `key` adapts ('' for a key kept as it is) and ComfyUI's name."""
    if key.startswith((*COMFYUI_PREFIXES, OWN_PREFIX)):
        return "", key
    name = key
    for prefix in _PREFIXES:
        name = name.removeprefix(prefix)
    part = next((p for p in _PARTS if name.endswith(p)), None)
    if part is None:
        raise UnplacedLora(f"{key}: not a LoRA tensor (lora_A, lora_B or their bias)")
    module = name[: -len(part)]
    if match := _BLOCK_KEY.match(module):
        inner = _BLOCK.get(match[2])
        if inner is None:
            raise UnplacedLora(f"{key}: no layer of a Wan transformer block is named {match[2]}")
        family, original = "Wan", f"blocks.{match[1]}.{inner}"
    elif module in _TOP:
        family, original = "Wan", _TOP[module]
    elif (match := _LTX_BLOCK_KEY.match(module)) and match[2] in _LTX_BLOCK:
        family, original = "LTX", module
    else:
        raise UnplacedLora(f"{key}: no layer of a Wan or LTX transformer is named {module}")
    return family, f"diffusion_model.{original}{_PARTS[part]}"


def read_header(data: bytes) -> tuple[dict[str, Any], int]:
    """A safetensors file's header and where its tensors' bytes begin."""
    if len(data) < 8:
        raise ValueError("not a safetensors file: shorter than its header's length")
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        raise ValueError("not a safetensors file: its header runs past the end")
    header = json.loads(data[8 : 8 + length])
    if not isinstance(header, dict):
        raise ValueError("not a safetensors file: its header is not a JSON object")
    return header, 8 + length


def _alpha(metadata: dict[str, str]) -> float | None:
    """The LoRA's alpha where diffusers' metadata says one other than its rank."""
    try:
        said = json.loads(metadata.get("lora_adapter_metadata", "{}"))
    except ValueError:
        return None
    if isinstance(said.get("transformer"), dict):
        said = said["transformer"]
    rank, alpha = said.get("r"), said.get("lora_alpha")
    if isinstance(rank, int | float) and isinstance(alpha, int | float) and alpha != rank:
        return float(alpha)
    return None


def to_comfyui(data: bytes) -> bytes:
    """A diffusers-format Wan or LTX LoRA file's bytes in ComfyUI's layout (see the module)."""
    header, start = read_header(data)
    metadata = dict(header.pop("__metadata__", None) or {})
    body = bytearray(data[start:])
    renamed: dict[str, Any] = {}
    families: set[str] = set()
    for key, entry in header.items():
        family, name = _placed(key)
        if name in renamed:
            raise UnplacedLora(f"{key}: two tensors would be named {name}")
        renamed[name] = entry
        families |= {family} - {""}
    if len(families) > 1:
        raise UnplacedLora(f"its keys name layers of both {' and '.join(sorted(families))} transformers")
    alpha = _alpha(metadata)
    if alpha is not None:
        for name in [n for n in renamed if n.endswith(".lora_A.weight")]:
            offset = len(body)
            body += struct.pack("<f", alpha)
            renamed[name.removesuffix(".lora_A.weight") + ".alpha"] = {
                "dtype": "F32",
                "shape": [],
                "data_offsets": [offset, offset + 4],
            }
    metadata["contentgen.layout"] = "comfyui"
    text = json.dumps({"__metadata__": metadata, **renamed}, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the tensors' bytes start 8-aligned, as safetensors writes them
    return struct.pack("<Q", len(text)) + text + bytes(body)


def comfyui_file(path: Path, out: Path) -> Path:
    """`path` (a diffusers-format Wan or LTX LoRA) written in ComfyUI's layout at `out`."""
    out.write_bytes(to_comfyui(path.read_bytes()))
    return out
