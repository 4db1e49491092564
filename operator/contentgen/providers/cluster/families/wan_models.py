"""A staged Wan model as its LoRA trainer loads it (wan_training.py): its sizes counted from its
configs on the meta device (no weights read), its experts (Wan 2.2 A14B's `transformer`, the
high-noise expert, and `transformer_2`, the low-noise one, split at model_index.json's
`boundary_ratio`), the layers a LoRA adapts, and the pipeline loaded for training with its
transformers stored as the memory plan says.

As the generator loads Wan (video.py): bf16 on a GPU, the VAE and CLIP image encoder in fp32 (as
the model cards load them), fp32 on the CPU; nothing fetched (`local_files_only`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contentgen.api.base_models import expert_ranges

from ..generation import flux, video
from ..memory import Base, Counted, once
from . import wan_memory

# What each preset adapts in a Wan block (diffusers' WanTransformerBlock): self-attention (attn1),
# cross-attention (attn2; an image-to-video model's image projections too), the feed-forward layers.
ATTENTION = (
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
)
FEEDFORWARD = ("ffn.net.0.proj", "ffn.net.2")
PRESETS = ("attention", "attention+feedforward", "all-linear")
TRAIN_TIMESTEPS = 1000


def target_modules(linear_names: Iterable[str], preset: str) -> list[str]:
    """The transformer's linear layers a preset adapts (pure): attention (ATTENTION), and the
    feed-forward layers (attention+feedforward, DiffSynth-Studio's Wan default: q, k, v, o, ffn.0,
    ffn.2), or every linear layer of the blocks (all-linear: a Wan block has no others today)."""
    if preset not in PRESETS:
        raise ValueError(f"training.loraTargets {preset!r} is not one of {', '.join(PRESETS)}")
    inside = [n for n in linear_names if n.startswith("blocks.")]
    suffixes = {"attention": ATTENTION, "attention+feedforward": (*ATTENTION, *FEEDFORWARD)}.get(preset)
    if suffixes is None:
        return inside
    return [n for n in inside if n.endswith(tuple("." + s for s in suffixes))]


@dataclass(frozen=True)
class Experts:
    """Wan 2.2 A14B's split: `transformer` (high noise) takes timesteps at and above `boundary` ×
    1000, `transformer_2` (low noise) those below, as diffusers' WanPipeline hands them out."""

    boundary: float

    @property
    def edge(self) -> float:
        return expert_ranges(self.boundary, TRAIN_TIMESTEPS)["high"][0]

    def owner(self, timestep: float) -> str:
        """ "high" or "low": the expert that denoises `timestep` (pure)."""
        return "high" if timestep >= self.edge else "low"


def model_index(model_dir: Path) -> dict[str, Any]:
    index: dict[str, Any] = json.loads((model_dir / "model_index.json").read_text())
    return index


def experts_of(model_dir: Path, table_boundary: float | None) -> Experts | None:
    """The model's experts: its model_index.json's `boundary_ratio` where it says one, else the
    table's (api/base_models.py); None for a model of one transformer (no transformer_2 staged)."""
    index = model_index(model_dir)
    if not (model_dir / "transformer_2").is_dir() or index.get("transformer_2") in (None, [None, None]):
        return None
    said = index.get("boundary_ratio")
    if isinstance(said, int | float) and not isinstance(said, bool):
        return Experts(float(said))
    if table_boundary is None:
        raise ValueError(f"{model_dir.name} has two transformers and no boundary_ratio")
    return Experts(table_boundary)


def image_to_video(model_dir: Path) -> bool:
    """Whether the staged model's pipeline animates a picture (Wan's image-to-video pipeline)."""
    import diffusers

    library: Any = diffusers  # its pipelines are untyped
    cls = getattr(library, str(model_index(model_dir).get("_class_name")), None)
    return isinstance(cls, type) and issubclass(cls, library.WanImageToVideoPipeline)


def counted(model_dir: Path) -> Counted[wan_memory.WanSizes]:
    """The parameters of the transformer (one expert), UMT5 and the VAE, from their configs on the
    meta device (no weights read: instant on a 14B)."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    with init_empty_weights():
        transformer: Any = WanTransformer3DModel.from_config(
            WanTransformer3DModel.load_config(str(model_dir / "transformer"))
        )
        text = UMT5EncoderModel(UMT5Config.from_pretrained(str(model_dir / "text_encoder")))
        vae: Any = AutoencoderKLWan.from_config(AutoencoderKLWan.load_config(str(model_dir / "vae")))
    linears = flux.linears_of(transformer)
    text.tie_weights()
    config = transformer.config
    sizes = wan_memory.WanSizes(
        transformer=sum(p.numel() for p in transformer.parameters()),
        quantisable=sum(i * o for name, i, o in linears if name.startswith("blocks.")),
        text_encoder=sum(p.numel() for p in text.parameters()),
        vae=sum(p.numel() for p in vae.parameters()),
        hidden=int(config.num_attention_heads * config.attention_head_dim),
        blocks=int(config.num_layers),
        experts=2 if (model_dir / "transformer_2").is_dir() else 1,
        ffn=int(config.ffn_dim),
        largest_linear=max(i * o for name, i, o in linears if name.startswith("blocks.")),
    )
    return Counted(sizes, linears, target_modules)


count = once(counted)


def load_transformer(model_dir: Path, folder: str, on: flux.Device, base: Base) -> Any:
    """One of the model's transformers, its linear weights stored as `base` (flux.quantisation's
    libraries), on the CPU (bitsandbytes' NF4 goes to the GPU as it loads)."""
    from diffusers import WanTransformer3DModel

    config = flux.quantisation(base)
    kwargs: dict[str, Any] = {"quantization_config": config} if config is not None else {}
    if base == "nf4":
        kwargs["device_map"] = {"": on.where.index or 0} if on.cuda else None
    return WanTransformer3DModel.from_pretrained(
        str(model_dir), subfolder=folder, torch_dtype=on.dtype, local_files_only=True, **kwargs
    )


def load_for_training(model_dir: Path, on: flux.Device, base: Base) -> Any:
    """The model's own pipeline (WanPipeline or WanImageToVideoPipeline), its transformers stored
    as `base` and left on the CPU, its VAE and image encoder in fp32 on a GPU as the model cards
    load them; the trainer moves each part to the card when it is its turn."""
    import diffusers

    index = model_index(model_dir)
    cls = getattr(diffusers, str(index["_class_name"]))
    extra: dict[str, Any] = {"transformer": load_transformer(model_dir, "transformer", on, base)}
    if (model_dir / "transformer_2").is_dir():
        extra["transformer_2"] = load_transformer(model_dir, "transformer_2", on, base)
    extra.update(video.wan_fp32_parts(model_dir, on))
    pipe = cls.from_pretrained(str(model_dir), dtype=on.dtype, local_files_only=True, **extra)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def flow_shift(scheduler: Any) -> float:
    """The shift Wan's sampler moves its noise levels by (σ' = sσ / (1 + (s − 1)σ)): the staged
    scheduler's `flow_shift` (UniPC on flow sigmas, what the Wan repositories ship) or `shift`
    (flow-matching Euler); 1.0 where it says neither."""
    config = scheduler.config
    for key in ("flow_shift", "shift"):
        value = getattr(config, key, None) if not isinstance(config, dict) else config.get(key)
        if isinstance(value, int | float) and value > 0:
            return float(value)
    return 1.0
