"""Memory plans: how a FLUX training or generation is laid out on the card it runs on, chosen
before any GPU time from the card's free memory and compute capability, the base model's sizes
(parameter counts read from its configs on the meta device: `flux.sizes`) and the job.

A plan says how the transformer's weights are stored (`bf16`; `int8` or `fp8` weight-only with
torchao; `nf4` with bitsandbytes, as QLoRA), where the text encoders run (on the card, or on the
CPU when even they do not fit), and for generation whether the components take turns on the card
(diffusers' model CPU offload: the T5 encoder leaves it while the transformer denoises) and whether
the VAE decodes in tiles. `auto` takes the first plan of the order below whose estimate fits the
free memory; a named plan is taken as it is, and refused when it does not fit. Either way a plan
that cannot fit is `GpuMemoryTooSmall`, in one line with the numbers, before anything is loaded.

The estimates are arithmetic on the sizes, not measurements (`docs/cluster-gpus.md` says which
numbers a GPU still has to confirm): weights at their stored width, the LoRA's weights, gradients
and optimizer moments, activations under gradient checkpointing from the tokens of the resolution,
and a reserve for CUDA's own workspace and the allocator's fragmentation. Pure: no torch here."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Literal, TypeVar

from contentgen.errors import GpuMemoryTooSmall, InvalidInput

GIB = 1024**3

Base = Literal["bf16", "int8", "fp8", "nf4"]
Wanted = Literal["auto", "bf16", "int8", "fp8", "nf4"]
WANTED: tuple[Wanted, ...] = ("auto", "bf16", "int8", "fp8", "nf4")
# A generation's plans (an ImageGeneration's memoryPlan): the training's names, and `offload`, the
# bf16 transformer with the components taking turns on the card. Named, bf16 is every component
# resident; int8, fp8 and nf4 are resident where they fit, else take turns, as auto takes them.
GenerationWanted = Literal["auto", "bf16", "offload", "int8", "fp8", "nf4"]
GENERATION_WANTED: tuple[GenerationWanted, ...] = ("auto", "bf16", "offload", "int8", "fp8", "nf4")

# Bytes a weight takes stored as each base: bf16 two; int8 and fp8 one (weight-only, a scale per
# output channel); NF4 half a byte and bitsandbytes' absmax per block of 64 (double-quantised:
# about 0.127 bits more per weight, counted as 0.02 bytes).
WEIGHT_BYTES: dict[Base, float] = {"bf16": 2.0, "int8": 1.0, "fp8": 1.0, "nf4": 0.52}
# What the library is for each quantised base (the plan's `library`).
LIBRARY: dict[Base, str] = {
    "bf16": "",
    "int8": "torchao int8 weight-only",
    "fp8": "torchao float8 weight-only",
    "nf4": "bitsandbytes NF4 (QLoRA)",
}
# fp8 weight-only is for cards with fp8 tensor cores: Ada (8.9) and Hopper (9.0) and later.
FP8_CAPABILITY = (8, 9)
# The card's memory a plan's estimate (torch's peak allocation) leaves out: CUDA's context and
# cuBLAS' workspace, outside torch's allocator (RESERVE_BYTES), and what the caching allocator
# reserves above what it allocates (ALLOCATOR_SHARE of the estimate). With expandable segments
# (PYTORCH_CUDA_ALLOC_CONF, which every worker sets: devices.prepare_torch) that was 7 % on an H200
# (a Wan 14B fp8 step: 45.9 GiB in use for 43.0 GiB allocated), without them 43 % (61.7 GiB). A
# plan fits where its estimate × (1 + ALLOCATOR_SHARE) + RESERVE_BYTES is within the free memory.
RESERVE_BYTES = 1 * GIB
ALLOCATOR_SHARE = 0.07
# Activations of a training step under gradient checkpointing, in (image + text tokens) × hidden ×
# 2-byte units: each block's checkpointed input and the one block recomputed with its gradients.
# Fitted to FLUX.1-dev's steps measured on an H100 and an H200 (docs/cluster-gpus.md): 1.5 to 1.6
# GiB from 512 to 1024 px on every base is 85 to 91 units; 1 + 35 per block over 57 blocks puts
# every estimate 0 to 10 % over its measured peak allocation.
SAVED_PER_BLOCK = 1
RECOMPUTED_BLOCK = 35
# An 8-bit base's (torchao int8, fp8 weight-only) own workspace on top: its layers' weights
# dequantised to bf16 as they compute, about 6 of its largest linear layer at once (measured: 0.5
# GiB over FLUX.1-dev's 8-bit steps, 0.75 GiB over Wan 14B's fp8 stills step, each 6 of its largest
# layer's bf16 bytes). bitsandbytes' NF4 showed none: its kernels dequantise as they multiply.
DEQUANTISED_LAYERS = 6
# A picture's activations while denoising (no gradients): the same unit, for one block at a time.
# Measured on an H100 (docs/cluster-gpus.md): 16 put the offloaded 1024 px picture's estimate at
# 22.6 GiB under its 22.7 GiB peak; 24 is the least that covers it.
INFERENCE_ACTIVATIONS = 24
# The VAE's decoder at 1 megapixel (its largest tensors, 128 channels at the full size, in bf16);
# tiling decodes 512-pixel tiles, a quarter of that at most.
VAE_DECODE_BYTES_PER_MEGAPIXEL = 3 * GIB
VAE_TILING_ABOVE_PIXELS = 1024 * 1024  # larger pictures are decoded in tiles on every plan


@dataclass(frozen=True)
class Card:
    """The device a job runs on: its free and total memory in bytes, and its CUDA compute
    capability; `capability` None is the CPU (nothing to plan: the pod's memory limit holds)."""

    free: int
    total: int
    capability: tuple[int, int] | None = None
    name: str = "cpu"

    @property
    def gpu(self) -> bool:
        return self.capability is not None


@dataclass(frozen=True)
class Sizes:
    """A FLUX model's parameter counts (on the meta device, from its configs)."""

    transformer: int
    quantisable: int  # of them, in the linear layers of the blocks (what a quantised base stores narrower)
    t5: int
    clip: int
    vae: int
    hidden: int  # the transformer's width (heads × head dim)
    blocks: int  # double + single blocks
    largest_linear: int = 0  # the parameters of the largest linear layer of the blocks

    def transformer_bytes(self, base: Base) -> float:
        rest = self.transformer - self.quantisable
        return self.quantisable * WEIGHT_BYTES[base] + rest * WEIGHT_BYTES["bf16"]

    def encoders_bytes(self) -> float:
        return (self.t5 + self.clip) * WEIGHT_BYTES["bf16"]


S = TypeVar("S")
C = TypeVar("C")


@dataclass(frozen=True)
class Counted(Generic[S]):
    """A model's sizes (a family's: `Sizes` for FLUX), counted from its configs on the meta device,
    and its transformer's linear layers: (name, in, out)."""

    sizes: S
    linears: tuple[tuple[str, int, int], ...]
    targets: Callable[[Iterable[str], str], list[str]]  # the layers a preset adapts, by the family

    def lora_parameters(self, preset: str, rank: int) -> int:
        """The trainable parameters of a LoRA of `rank` on the preset's layers."""
        chosen = set(self.targets([name for name, _, _ in self.linears], preset))
        return rank * sum(i + o for name, i, o in self.linears if name in chosen)


def once(counted: Callable[[Path], C]) -> Callable[[Path], C]:
    """`counted`, once per model directory as it is on disk (a re-staged copy is counted again)."""

    @functools.lru_cache(maxsize=4)
    def cached(model: str, mtime: int) -> C:
        return counted(Path(model))

    def count(model_dir: Path) -> C:
        resolved = model_dir.resolve()
        return cached(str(resolved), resolved.stat().st_mtime_ns)

    return count


@dataclass(frozen=True)
class TrainingJob:
    resolution: int
    lora_parameters: int  # the LoRA's trainable parameters (rank × (in + out) per adapted layer)
    optimizer: str = "adamw"  # adamw: two fp32 moments per parameter; adamw8bit: two 8-bit ones
    text_tokens: int = 512
    batch: int = 1


@dataclass(frozen=True)
class GenerationJob:
    width: int
    height: int
    text_tokens: int = 512


@dataclass(frozen=True)
class Laid:
    """A memory plan, whatever the family's: how the base is stored, the numbers it was chosen on
    (bytes), and one line for the version and the log."""

    base: Base = "bf16"
    needed: int = 0  # the estimate's peak
    free: int = 0  # the card's free memory it was chosen against (0: the CPU)
    chosen_by: Literal["auto", "spec", "resumed", "cpu"] = "cpu"
    parts: dict[str, int] = field(default_factory=dict, compare=False)

    @property
    def library(self) -> str:
        return LIBRARY[self.base]

    def choices(self) -> tuple[tuple[bool, str], ...]:
        """The family's choices, each with the words that say it (said where its flag is set)."""
        return ()

    def describe(self) -> str:
        """One line for the version and the log."""
        words = [self.base + (f" ({self.library})" if self.library else "")]
        words += [said for chosen, said in self.choices() if chosen]
        if self.free:
            words.append(f"needs {gib(self.needed)} of {gib(self.free)} free")
        if self.chosen_by == "cpu":  # nothing was planned: the weights as they are (fp32 for bf16)
            words.append("on the CPU")
        return ", ".join(words)


@dataclass(frozen=True)
class MemoryPlan(Laid):
    """A FLUX training's or generation's plan."""

    encoders_on_gpu: bool = True  # the text encoders (and the VAE) run on the card
    offload: bool = False  # generation: components take turns on the card (T5 off while denoising)
    vae_tiling: bool = False

    def choices(self) -> tuple[tuple[bool, str], ...]:
        return (
            (not self.encoders_on_gpu, "text encoders on the CPU"),
            (self.offload, "components offloaded in turn (model CPU offload)"),
            (self.vae_tiling, "VAE tiling"),
        )


def gib(count: float) -> str:
    return f"{count / GIB:.1f} GiB"


def usable(card: Card) -> float:
    """The most a plan's estimate may be on `card` (see RESERVE_BYTES)."""
    return max(0.0, (card.free - RESERVE_BYTES) / (1 + ALLOCATOR_SHARE))


def reserve_words() -> str:
    """What a refusal says the card keeps beside the estimate."""
    return f"{gib(RESERVE_BYTES)} kept for CUDA, and {ALLOCATOR_SHARE:.0%} of the plan for the allocator"


def dequantised_bytes(largest_linear: int, base: Base) -> int:
    """An 8-bit base's workspace (DEQUANTISED_LAYERS of its largest layer in bf16); none for bf16, NF4."""
    eight = base in ("int8", "fp8")
    return int(DEQUANTISED_LAYERS * largest_linear * WEIGHT_BYTES["bf16"]) if eight else 0


def eight_bit(card: Card) -> Base:
    """The 8-bit base for the card: fp8 where it has fp8 tensor cores (Ada, Hopper), else int8."""
    return "fp8" if card.capability is not None and card.capability >= FP8_CAPABILITY else "int8"


def tokens(width: int, height: int) -> int:
    """FLUX's image tokens: 8× the VAE's downscale, then 2 × 2 patches."""
    return (width // 16) * (height // 16)


def training_parts(sizes: Sizes, job: TrainingJob, base: Base) -> dict[str, int]:
    """The training's peak, part by part: while the transformer trains (the encoders are gone)."""
    moments = 2.0 if job.optimizer == "adamw8bit" else 8.0
    unit = job.batch * (tokens(job.resolution, job.resolution) + job.text_tokens) * sizes.hidden * 2
    return {
        "transformer": int(sizes.transformer_bytes(base)),
        "lora": int(job.lora_parameters * (4 + 4 + moments)),  # fp32 weights, gradients, moments
        "activations": int(unit * (SAVED_PER_BLOCK * sizes.blocks + RECOMPUTED_BLOCK)),
        "dequantised layers": dequantised_bytes(sizes.largest_linear, base),
    }


def caching_bytes(sizes: Sizes, resolution: int) -> int:
    """The caching phase: the text encoders and the VAE encoding one picture (the transformer is
    not on the card yet)."""
    return int(sizes.encoders_bytes() + sizes.vae * 2 + VAE_DECODE_BYTES_PER_MEGAPIXEL * resolution**2 / 1e6)


def generation_parts(
    sizes: Sizes, job: GenerationJob, base: Base, offload: bool, tiling: bool
) -> dict[str, int]:
    """A picture's peak: with offload only the largest component is on the card at a time."""
    unit = (tokens(job.width, job.height) + job.text_tokens) * sizes.hidden * 2
    megapixels = job.width * job.height / 1e6
    decode = VAE_DECODE_BYTES_PER_MEGAPIXEL * (min(megapixels, 0.25) if tiling else megapixels)
    transformer = sizes.transformer_bytes(base) + unit * INFERENCE_ACTIVATIONS
    encoders = sizes.encoders_bytes()
    if offload:
        return {"transformer": int(transformer), "largest other component": int(max(encoders, decode))}
    return {
        "transformer": int(transformer),
        "text encoders": int(encoders),
        "vae": int(sizes.vae * 2 + decode),
    }


def _peak(parts: dict[str, int], offload: bool = False) -> int:
    return max(parts.values()) if offload else sum(parts.values())


def _refuse(what: str, plan: str, needed: int, card: Card, hint: str) -> GpuMemoryTooSmall:
    return GpuMemoryTooSmall(
        f"{what} with memory plan {plan} needs about {gib(needed)} of GPU memory and {card.name} has "
        f"{gib(card.free)} free of {gib(card.total)} ({reserve_words()}): {hint}"
    )


def choose_training(card: Card, sizes: Sizes, job: TrainingJob, wanted: str = "auto") -> MemoryPlan:
    """The training's plan on `card` (see the module's description); `wanted` is the spec's
    `training.memoryPlan` (auto, bf16, int8, fp8, nf4)."""
    _check_wanted(wanted, card, "training.memoryPlan")
    if not card.gpu:  # the CPU: the weights as they are (fp32), nothing to fit
        return MemoryPlan(base="bf16" if wanted == "auto" else wanted, chosen_by="cpu")  # type: ignore[arg-type]
    order: list[Base] = ["bf16", eight_bit(card), "nf4"] if wanted == "auto" else [wanted]  # type: ignore[list-item]
    room = usable(card)
    for base in order:
        parts = training_parts(sizes, job, base)
        if _peak(parts) <= room:
            # bitsandbytes puts the NF4 weights on the card as it loads them: beside the encoders
            beside = sizes.transformer_bytes(base) if base == "nf4" else 0
            return MemoryPlan(
                base=base,
                encoders_on_gpu=caching_bytes(sizes, job.resolution) + beside <= room,
                needed=_peak(parts),
                free=card.free,
                chosen_by="auto" if wanted == "auto" else "spec",
                parts=parts,
            )
    last = order[-1]
    smaller = (
        "lower training.resolution or training.rank, use training.optimizer adamw8bit, or train on a card "
        "with more memory (gpu.jobs.LoraTraining.nodeSelector)"
    )
    hint = (
        smaller if wanted == "auto" or last == "nf4" else f"use training.memoryPlan auto or nf4, or {smaller}"
    )
    return _raise(
        _refuse(f"training at {job.resolution} px", last, _peak(training_parts(sizes, job, last)), card, hint)
    )


def generation_order(card: Card, wanted: str, quantised: bool = True) -> list[tuple[Base, bool]]:
    """The (base, offload) layouts a generation tries, in order, for the spec's `memoryPlan` (bf16
    alone for a model that is not `quantised`)."""
    if wanted == "bf16":
        return [("bf16", False)]
    if wanted == "offload":
        return [("bf16", True)]
    quantisations: list[Base] = [eight_bit(card), "nf4"] if quantised else []
    bases: list[Base] = ["bf16", *quantisations] if wanted == "auto" else [wanted]  # type: ignore[list-item]
    # each base resident where it fits, else taking turns: a quantised transformer that fits stays
    # on the card, faster, and clear of the offload hook that torchao's 8-bit weights fail under
    # on torch 2.11 (docs/cluster-gpus.md)
    return [(base, offload) for base in bases for offload in (False, True)]


def choose_generation(
    card: Card, sizes: Sizes, job: GenerationJob, wanted: str = "auto", *, quantised: bool = True
) -> MemoryPlan:
    """A generation's plan on `card`: every component resident in bf16; else taking turns on the
    card (the T5 encoder off it while the transformer denoises); else an 8-bit, then an NF4
    transformer, each resident where it fits, else taking turns. Pictures over a megapixel are
    decoded in tiles on every plan. `wanted` is the ImageGeneration's `memoryPlan`
    (GENERATION_WANTED): a named plan is that base (bf16: resident; offload: bf16 taking turns),
    refused when it does not fit. A model that is not `quantised` (a newer family's: its
    transformer's 8- and 4-bit layouts are FLUX.1's here) is bf16, resident or taking turns."""
    if not quantised and wanted not in ("auto", "bf16", "offload"):
        raise InvalidInput(
            f"memoryPlan {wanted} stores FLUX.1's transformer in fewer bits, not this model's: use auto, "
            "bf16 or offload"
        )
    _check_wanted(wanted, card, "memoryPlan", GENERATION_WANTED)
    tiling = job.width * job.height > VAE_TILING_ABOVE_PIXELS
    if not card.gpu:  # the CPU: the weights as they are (fp32) or the named 8-bit base; no turns
        base: Base = "bf16" if wanted in ("auto", "offload") else wanted  # type: ignore[assignment]
        return MemoryPlan(base=base, vae_tiling=tiling, chosen_by="cpu")
    order = generation_order(card, wanted, quantised)
    room = usable(card)
    for base, offload in order:
        for tiled in (tiling, True):
            parts = generation_parts(sizes, job, base, offload, tiled)
            if _peak(parts, offload) <= room:
                return MemoryPlan(
                    base=base,
                    offload=offload,
                    vae_tiling=tiled,
                    needed=_peak(parts, offload),
                    free=card.free,
                    chosen_by="auto" if wanted == "auto" else "spec",
                    parts=parts,
                )
    last, offload = order[-1]
    needed = _peak(generation_parts(sizes, job, last, offload, True), offload)
    named = "offload" if wanted == "offload" else last
    elsewhere = (
        "generate on a card with more memory (gpu.jobs.ImageGeneration.nodeSelector) or a smaller imageSize"
    )
    turns = f"offload, {eight_bit(card)} and nf4" if quantised else "offload"
    smaller = f"memoryPlan auto (the first that fits of {turns})"
    hint = elsewhere if wanted == "auto" or last == "nf4" else f"use {smaller}, or {elsewhere}"
    return _raise(_refuse(f"a {job.width}×{job.height} picture", named, needed, card, hint))


def _check_wanted(wanted: str, card: Card, field_name: str, known: tuple[str, ...] = WANTED) -> None:
    if wanted not in known:
        raise InvalidInput(f"{field_name} {wanted!r} is not one of {', '.join(known)}")
    if wanted == "nf4" and not card.gpu:
        raise InvalidInput(
            f"{field_name} nf4 needs a CUDA GPU (bitsandbytes' 4-bit weights load only there): use auto, "
            "int8 or bf16 on the CPU"
        )


def _raise(error: GpuMemoryTooSmall) -> MemoryPlan:
    raise error
