"""FLUX.1 (dev or schnell) from a staged diffusers model directory: loading it on a device, the
text and picture encodings the trainer caches, and the packing FLUX's transformer reads.

bf16 on a GPU (FLUX's own precision, half the memory of fp32), fp32 on the CPU (where bf16 is
slow and the tests run). Nothing is fetched: every load is `local_files_only`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from contentgen.errors import InvalidInput

from .. import memory

# What a diffusers FLUX directory holds (model_index.json names them); checked before any work.
REQUIRED = (
    "model_index.json",
    "scheduler",
    "text_encoder",
    "text_encoder_2",
    "tokenizer",
    "tokenizer_2",
    "transformer",
    "vae",
)
# T5's tokens per prompt: FLUX.1-dev was trained on 512 (schnell 256); a model whose tokenizer
# says less (the tests' tiny one) uses its own length.
MAX_SEQUENCE = 512


@dataclass(frozen=True)
class Device:
    where: torch.device
    dtype: torch.dtype

    @property
    def cuda(self) -> bool:
        return self.where.type == "cuda"


def device(name: str = "") -> Device:
    """`name` (cpu, cuda, cuda:1), or the GPU when there is one: bf16 on a GPU, fp32 on the CPU."""
    chosen = torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))
    return Device(chosen, torch.bfloat16 if chosen.type == "cuda" else torch.float32)


def load_pipeline(model_dir: Path, on: Device, plan: memory.MemoryPlan | None = None) -> Any:
    """The FluxPipeline of `model_dir`, on the device in its dtype, laid out as the memory plan
    says: its transformer quantised (`load_transformer`), its components taking turns on the GPU
    (offload), its VAE decoding in tiles."""
    from diffusers import FluxPipeline

    extra: dict[str, Any] = {}
    if plan is not None and plan.base != "bf16":
        extra["transformer"] = load_transformer(model_dir, on, plan.base)
    pipe = FluxPipeline.from_pretrained(str(model_dir), dtype=on.dtype, local_files_only=True, **extra)
    pipe.set_progress_bar_config(disable=True)
    if plan is not None and plan.offload and on.cuda:
        pipe.enable_model_cpu_offload(device=on.where)  # each component on the GPU while it runs
    else:
        pipe = pipe.to(on.where)
    tiling(pipe, plan is not None and plan.vae_tiling)
    return pipe


def tiling(pipe: Any, on: bool) -> None:
    """The VAE decodes in tiles (or whole): set per request on a kept pipeline (one whose VAE
    cannot tile decodes whole)."""
    if not hasattr(pipe.vae, "enable_tiling"):
        return
    if on:
        pipe.vae.enable_tiling()
    else:
        pipe.vae.disable_tiling()


def load_for_training(model_dir: Path, on: Device, plan: memory.MemoryPlan) -> Any:
    """The pipeline a training starts from: its transformer stored as the plan's base and left on
    the CPU (bitsandbytes' NF4 goes to the GPU as it loads), its text encoders and VAE on the GPU
    when the plan has room for them there, else on the CPU; `_cache` encodes, then the encoders
    go and the transformer takes the GPU."""
    from diffusers import FluxPipeline

    extra: dict[str, Any] = {}
    if plan.base != "bf16":
        extra["transformer"] = load_transformer(model_dir, on, plan.base)
    pipe = FluxPipeline.from_pretrained(str(model_dir), dtype=on.dtype, local_files_only=True, **extra)
    pipe.set_progress_bar_config(disable=True)
    if plan.encoders_on_gpu or not on.cuda:
        for component in (pipe.text_encoder, pipe.text_encoder_2, pipe.vae):
            component.to(on.where)
    return pipe


def load_transformer(model_dir: Path, on: Device, base: memory.Base) -> Any:
    """FLUX's transformer with its linear layers' weights stored as `base`: int8 or fp8 weight-only
    (torchao, on the CPU and every GPU), NF4 (bitsandbytes through diffusers: a CUDA GPU only)."""
    from diffusers import FluxTransformer2DModel

    config = quantisation(base)
    kwargs: dict[str, Any] = {"quantization_config": config} if config is not None else {}
    if base == "nf4":
        kwargs["device_map"] = {"": on.where.index or 0} if on.cuda else None
    transformer = FluxTransformer2DModel.from_pretrained(
        str(model_dir), subfolder="transformer", torch_dtype=on.dtype, local_files_only=True, **kwargs
    )
    return transformer


def quantisation(base: memory.Base) -> Any:
    """diffusers' quantisation config of a base (None for bf16); a worker without the library says
    which field needs it."""
    if base == "bf16":
        return None
    if base == "nf4":
        from diffusers import BitsAndBytesConfig

        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
    try:
        from torchao.quantization import (  # type: ignore[import-untyped]
            Float8WeightOnlyConfig,
            Int8WeightOnlyConfig,
        )
    except ImportError:
        raise InvalidInput(
            f"memory plan {base} needs torchao, which this worker does not have (the GPU image has it): "
            "use bf16 or nf4"
        ) from None
    from diffusers import TorchAoConfig

    weights = Int8WeightOnlyConfig() if base == "int8" else Float8WeightOnlyConfig()
    return TorchAoConfig(weights)


def card(on: Device) -> memory.Card:
    """The device's memory as a plan sees it: free, with what this process's allocator holds
    (released before a load), its compute capability and name; the CPU is planned without."""
    if not on.cuda:
        return memory.Card(free=0, total=0)
    free, total = torch.cuda.mem_get_info(on.where)
    held = torch.cuda.memory_reserved(on.where)
    return memory.Card(
        free=int(free + held),
        total=int(total),
        capability=tuple(torch.cuda.get_device_capability(on.where)),  # type: ignore[arg-type]
        name=torch.cuda.get_device_name(on.where),
    )


def room(on: Device) -> int:
    """The GPU's bytes free for more tensors: free on the device, and held free by this process's
    allocator."""
    free, _ = torch.cuda.mem_get_info(on.where)
    return int(free + torch.cuda.memory_reserved(on.where) - torch.cuda.memory_allocated(on.where))


def counted(model_dir: Path) -> memory.Counted[memory.Sizes]:
    """The parameters of `model_dir`'s transformer, T5 and CLIP encoders and VAE, counted from
    their configs on the meta device (no weights read: instant on FLUX.1-dev)."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    def total(model: Any) -> int:
        if hasattr(model, "tie_weights"):
            model.tie_weights()  # T5's input embedding is its shared one: stored once
        return sum(p.numel() for p in model.parameters())

    with init_empty_weights():
        transformer: Any = FluxTransformer2DModel.from_config(
            FluxTransformer2DModel.load_config(str(model_dir / "transformer"))
        )
        t5 = T5EncoderModel(T5Config.from_pretrained(str(model_dir / "text_encoder_2")))
        clip = CLIPTextModel(CLIPTextConfig.from_pretrained(str(model_dir / "text_encoder")))
        vae: Any = AutoencoderKL.from_config(AutoencoderKL.load_config(str(model_dir / "vae")))
    linears = linears_of(transformer)
    config = transformer.config
    sizes = memory.Sizes(
        transformer=total(transformer),
        quantisable=sum(i * o for _, i, o in linears),
        t5=total(t5),
        clip=total(clip),
        vae=total(vae),
        hidden=int(config.num_attention_heads * config.attention_head_dim),
        blocks=int(config.num_layers + config.num_single_layers),
        largest_linear=max(i * o for _, i, o in linears),
    )
    from .lora_files import target_modules

    return memory.Counted(sizes, linears, target_modules)


count = memory.once(counted)


def linears_of(transformer: torch.nn.Module) -> tuple[tuple[str, int, int], ...]:
    """A transformer's linear layers: (name, in, out)."""
    return tuple(
        (name, m.in_features, m.out_features)
        for name, m in transformer.named_modules()
        if isinstance(m, torch.nn.Linear)
    )


def max_sequence(pipe: Any) -> int:
    return int(min(MAX_SEQUENCE, pipe.tokenizer_2.model_max_length))


@torch.no_grad()
def encode_prompt(pipe: Any, prompt: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(T5's sequence, CLIP's pooled vector, the text's position ids) of one prompt."""
    embeds, pooled, text_ids = pipe.encode_prompt(
        prompt=prompt,
        prompt_2=prompt,
        device=pipe.text_encoder_2.device,
        max_sequence_length=max_sequence(pipe),
    )
    return embeds, pooled, text_ids


@torch.no_grad()
def encode_picture(pipe: Any, pixels: torch.Tensor) -> torch.Tensor:
    """The VAE's latents of a picture (1 × 3 × H × W in [-1, 1]), shifted and scaled as FLUX's
    transformer sees them; the distribution's mean, so a cached latent is the same every epoch."""
    vae = pipe.vae
    latents = vae.encode(pixels.to(vae.device, vae.dtype)).latent_dist.mean
    scaled: torch.Tensor = (latents - vae.config.shift_factor) * vae.config.scaling_factor
    return scaled


def pack(latents: torch.Tensor) -> torch.Tensor:
    """B × C × H × W latents as FLUX's tokens: 2 × 2 patches, B × (H/2 · W/2) × 4C."""
    b, c, h, w = latents.shape
    patches = latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return patches.reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """`pack`'s inverse, for latents of `height` × `width`."""
    b, _, channels = tokens.shape
    grid = tokens.view(b, height // 2, width // 2, channels // 4, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return grid.reshape(b, channels // 4, height, width)


def image_ids(height: int, width: int, on: Device) -> torch.Tensor:
    """The position ids of `pack`'s tokens (row, column in the second and third axis)."""
    ids = torch.zeros(height // 2, width // 2, 3)
    ids[..., 1] = torch.arange(height // 2)[:, None]
    ids[..., 2] = torch.arange(width // 2)[None, :]
    return ids.reshape(-1, 3).to(on.where, on.dtype)
