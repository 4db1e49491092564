"""Memory plans for training a Wan LoRA (wan_training.py), chosen before anything is loaded, as
memory.py chooses FLUX's: from the card's free memory and compute capability, the staged model's
sizes (parameter counts read from its configs on the meta device: `wan_training.count`) and the
job (the largest example's latent tokens, the LoRA's parameters, the optimizer).

A plan says how each transformer's linear weights are stored (`bf16`; `int8` or `fp8` weight-only
with torchao; `nf4` with bitsandbytes: memory.py's bases and libraries), whether the blocks'
checkpointed inputs are kept in CPU memory instead of the card's (`offload`: torch's
`save_on_cpu` around the forward pass, DiffSynth-Studio's gradient-checkpointing offload; the block
a backward pass recomputes stays on the card), and for Wan 2.2 A14B whether both experts stay on
the card or take turns (the one whose timestep range a step's draw is not in waits in CPU memory).
`auto` takes the first plan of `training_order` whose estimate fits; a named base is taken as it is
(with the first of its layouts that fits) and refused when none does.

The estimate, per transformer on the card (GiB), torch's peak allocation (the card's reserve
beside it is memory.py's: RESERVE_BYTES and ALLOCATOR_SHARE):

- its weights at their stored width (memory.Sizes' arithmetic), and a quantised base's workspace
  (memory.dequantised_bytes);
- the LoRA's fp32 weights, gradients and optimizer moments (both experts' LoRAs for a pair);
- the activations of one step under gradient checkpointing, per latent token (a Wan block's
  residual stream is its video tokens; the text reaches it through cross-attention): each block's
  checkpointed input (`SAVED_PER_BLOCK` × width × 2 bytes, none on the card when offloaded) and one
  block recomputed with its gradients (`RECOMPUTED_WIDTH` × width + `RECOMPUTED_FFN` × its
  feed-forward width, × 2 bytes).

The constants are fitted to the steps measured on an H200 (docs/cluster-gpus.md, issue 76:
Wan 2.1 1.3B and Wan 14B, bf16 and fp8, 81 and 33 frames, stills, activations in CPU memory):
every estimate is 0 to 10 % over its measured peak allocation. The caching phase (the UMT5
encoder, then the VAE) runs each alone before the transformer comes to the card, each on the card
when it fits there, else on the CPU. Pure: no torch here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from contentgen.api.words import counted
from contentgen.errors import GpuMemoryTooSmall

from ..memory import (
    GIB,
    WEIGHT_BYTES,
    Base,
    Card,
    Laid,
    _check_wanted,
    dequantised_bytes,
    eight_bit,
    gib,
    reserve_words,
    usable,
)

SAVED_PER_BLOCK = 1  # a Wan block's checkpointed input: its one residual stream
# The recomputed block, per latent token, in 2-byte units of the width and of the feed-forward
# width: the measured per-token slopes (90 units of the width on Wan 14B, whose feed-forward is
# 2.7 widths; 95 on the 1.3B, 5.8 widths) less the 40 and 30 blocks' inputs.
RECOMPUTED_WIDTH = 39
RECOMPUTED_FFN = 4.5
# The VAE encoding a clip, bytes per pixel of the frames it holds at once: video.py's measured decode
# (`DECODE["wan"]`, 6,144 bytes a pixel, 4 frames at once) taken for the encoder, which mirrors it.
VAE_BYTES_PER_PIXEL = 6144
VAE_FRAMES_AT_ONCE = 4
VAE_TILE_PIXELS = 256 * 256


@dataclass(frozen=True)
class WanSizes:
    """A staged Wan's parameter counts (one transformer's; `experts` 2 for Wan 2.2 A14B)."""

    transformer: int
    quantisable: int  # of them, in the linear layers of the blocks
    text_encoder: int  # UMT5
    vae: int
    hidden: int  # the transformer's width (heads × head dim)
    blocks: int
    experts: int = 1
    ffn: int = 0  # a block's feed-forward width (0: taken as 4 × the width)
    largest_linear: int = 0  # the parameters of the largest linear layer of the blocks

    def transformer_bytes(self, base: Base) -> float:
        rest = self.transformer - self.quantisable
        return self.quantisable * WEIGHT_BYTES[base] + rest * WEIGHT_BYTES["bf16"]


@dataclass(frozen=True)
class WanJob:
    """What one step holds: the largest example's shape (frames 1 for a still), the LoRA's
    trainable parameters per expert, the optimizer."""

    width: int
    height: int
    frames: int
    lora_parameters: int
    optimizer: str = "adamw"  # adamw: two fp32 moments per parameter; adamw8bit: two 8-bit ones

    def tokens(self) -> int:
        """Wan's latent tokens: 4 frames a latent frame (the first alone), 8 × 8 pixels a latent,
        2 × 2 latents a patch."""
        return ((self.frames - 1) // 4 + 1) * (self.height // 16) * (self.width // 16)


@dataclass(frozen=True)
class WanPlan(Laid):
    """A Wan training's plan."""

    offload: bool = False  # the blocks' checkpointed inputs in CPU memory
    experts_resident: bool = True  # Wan 2.2 A14B: both experts on the card (else taking turns)
    text_encoder_on_gpu: bool = True
    vae_on_gpu: bool = True
    vae_tiling: bool = False

    def choices(self) -> tuple[tuple[bool, str], ...]:
        return (
            (self.offload, "checkpointed activations in CPU memory"),
            (not self.experts_resident, "experts taking turns on the card"),
            (not self.text_encoder_on_gpu, "text encoder on the CPU"),
            (self.vae_tiling, "VAE tiling"),
        )


def training_parts(
    sizes: WanSizes, job: WanJob, base: Base, *, offload: bool, experts_resident: bool = True
) -> dict[str, int]:
    """The step's peak on the card, part by part (see the module)."""
    moments = 2.0 if job.optimizer == "adamw8bit" else 8.0
    on_card = sizes.experts if experts_resident else 1
    saved = 0 if offload else SAVED_PER_BLOCK * sizes.blocks
    width = (saved + RECOMPUTED_WIDTH) * sizes.hidden + RECOMPUTED_FFN * (sizes.ffn or 4 * sizes.hidden)
    parts = {
        "transformer": int(sizes.transformer_bytes(base) * on_card),
        "lora": int(job.lora_parameters * sizes.experts * (4 + 4 + moments)),
        "activations": int(job.tokens() * width * 2),
        "dequantised layers": dequantised_bytes(sizes.largest_linear, base),
    }
    if offload:
        parts["offloaded to CPU memory"] = 0  # said in the table, counted nowhere on the card
    return parts


def vae_bytes(sizes: WanSizes, job: WanJob, tiled: bool) -> int:
    """The VAE (fp32) encoding one example: its weights and the frames it holds at once."""
    pixels = min(job.width * job.height, VAE_TILE_PIXELS) if tiled else job.width * job.height
    return int(sizes.vae * 4 + min(job.frames, VAE_FRAMES_AT_ONCE) * pixels * VAE_BYTES_PER_PIXEL)


def layouts(sizes: WanSizes, base: Base) -> Iterator[tuple[bool, bool]]:
    """(offload, experts resident) of a base, in the order they are tried: the faster first. NF4's
    experts stay resident: bitsandbytes puts their 4-bit weights on the card as it loads them."""
    turns = sizes.experts > 1 and base != "nf4"
    for resident in (True, False) if turns else (True,):
        for offload in (False, True):
            yield offload, resident


def training_order(card: Card, sizes: WanSizes, wanted: str) -> list[tuple[Base, bool, bool]]:
    """(base, offload, experts resident) a training tries for the spec's `training.memoryPlan`:
    bf16 in every layout before an 8-bit base, an 8-bit one before NF4 (precision first, then speed)."""
    bases: list[Base] = ["bf16", eight_bit(card), "nf4"] if wanted == "auto" else [wanted]  # type: ignore[list-item]
    return [(base, offload, resident) for base in bases for offload, resident in layouts(sizes, base)]


def choose_training(card: Card, sizes: WanSizes, job: WanJob, wanted: str = "auto") -> WanPlan:
    """The training's plan on `card` (see the module); `wanted` is the spec's training.memoryPlan."""
    _check_wanted(wanted, card, "training.memoryPlan")
    if not card.gpu:  # the CPU: the weights as they are (fp32), nothing to fit
        return WanPlan(base="bf16" if wanted == "auto" else wanted, chosen_by="cpu")  # type: ignore[arg-type]
    room = usable(card)
    order = training_order(card, sizes, wanted)
    for base, offload, resident in order:
        parts = training_parts(sizes, job, base, offload=offload, experts_resident=resident)
        if sum(parts.values()) <= room:
            text = sizes.text_encoder * WEIGHT_BYTES["bf16"]
            return WanPlan(
                base=base,
                offload=offload,
                experts_resident=resident,
                text_encoder_on_gpu=text <= room,
                vae_on_gpu=vae_bytes(sizes, job, tiled=True) <= room,
                vae_tiling=vae_bytes(sizes, job, tiled=False) > room,
                needed=sum(parts.values()),
                free=card.free,
                chosen_by="auto" if wanted == "auto" else "spec",
                parts=parts,
            )
    base, offload, resident = order[-1]
    needed = sum(training_parts(sizes, job, base, offload=offload, experts_resident=resident).values())
    smaller = (
        "train on fewer or shorter clips (dataset.clips.frames) or at a lower training.resolution, lower "
        "training.rank, use training.optimizer adamw8bit, or train on a card with more memory "
        "(gpu.jobs.LoraTraining.nodeSelector)"
    )
    hint = (
        smaller if wanted == "auto" or base == "nf4" else f"use training.memoryPlan auto or nf4, or {smaller}"
    )
    raise GpuMemoryTooSmall(
        f"training on {counted(job.frames, 'frame')} at {job.width}x{job.height} with memory plan {base} "
        f"needs about {gib(needed)} of GPU memory even with its activations in CPU memory, and {card.name} "
        f"has {gib(card.free)} free of {gib(card.total)} ({reserve_words()}): {hint}"
    )


def estimate_gib(sizes: WanSizes, job: WanJob, base: Base, offload: bool, resident: bool = True) -> float:
    """An estimate in GiB, for the docs' table and the GPU measurement beside it."""
    return sum(training_parts(sizes, job, base, offload=offload, experts_resident=resident).values()) / GIB
