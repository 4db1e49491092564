"""A Wan LoRA training step at real size on this machine's GPU, against the memory planner's estimate
(`python -m bench.wan_train_gpu`, issues 68 and 76): the step provider cluster's Wan trainer takes
(families/wan_training.py `flow_loss`, then the LoRA's gradient clipped and AdamW's step), on inputs
of the real shapes, with random weights drawn on the GPU (a weight's value changes neither a step's
time nor its memory; nothing is downloaded), under the allocator settings every worker has
(devices.prepare_torch: expandable segments).

- **Wan 2.1 T2V 1.3B at 81 and 33 frames, 832 × 480** in bf16, rank 16 on
  `attention+feedforward`, gradient checkpointing.
- **Wan 14B** (one expert of Wan 2.2 A14B; Wan 2.1 T2V 14B's shapes: the Wan team's configs, width
  5,120, 40 blocks) with an 8-bit base (fp8 weight-only on a card with fp8, else int8: torchao, as
  `flux.load_transformer` stores it) at 81 frames, then with its checkpointed activations in CPU
  memory, then stills alone (one frame at 512 px); and in bf16 at 81 and 33 frames.

Each case: its estimate (wan_memory.estimate_gib, from the configs counted on the meta device), the
planner's allowance for it (the estimate, the allocator's share and CUDA's reserve: memory.py), the
mean seconds of `--timed` steps after `--warmup`, torch's peak allocation and reservation, the
device's peak in use (sampled) and how far the estimate is over the allocation, one JSON line each,
printed and appended to `--out` as it ends, so a run cut short keeps what it measured; a case the
card cannot hold says so in the planner's words. `--size tiny --device cpu` runs the same path on a
tiny Wan on a machine without a GPU (tests/bench/test_wan_train_gpu.py). docs/cluster-gpus.md ("A
Wan LoRA's training step") has the measured table (bench/memory-measured.json) and the estimates.

    python -m bench.wan_train_gpu [--size full|tiny] [--device cuda|cpu] [--cases 1.3b,14b-8bit,...]
        [--warmup 2] [--timed 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from contentgen.providers.cluster.generation.lora_files import Targets

RANK = 16
PRESET: Targets = "attention+feedforward"

# The Wan team's 14B (wan/configs/wan_t2v_14B.py, t2v_A14B: dim 5120, ffn 13824, 40 heads of 128, 40
# layers) in diffusers' WanTransformer3DModel's terms; the 1.3B is tests/providers/wan_t2v.py's.
WAN_14B_TRANSFORMER = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 40,
    "attention_head_dim": 128,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 4096,
    "freq_dim": 256,
    "ffn_dim": 13824,
    "num_layers": 40,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "image_dim": None,
    "rope_max_seq_len": 1024,
}
TINY_TRANSFORMER = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 2,
    "attention_head_dim": 12,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 32,
    "freq_dim": 256,
    "ffn_dim": 32,
    "num_layers": 2,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "rope_max_seq_len": 32,
}


@dataclass(frozen=True)
class Case:
    name: str
    transformer: dict[str, Any]
    width: int
    height: int
    frames: int
    base: str  # bf16, or "8-bit": fp8 where the card has it, else int8
    offload: bool = False


def cases(size: str) -> list[Case]:
    if size == "tiny":
        return [
            Case("1.3b", TINY_TRANSFORMER, 64, 64, 9, "bf16"),
            Case("14b-8bit", TINY_TRANSFORMER, 64, 64, 9, "8-bit"),
            Case("14b-8bit-offload", TINY_TRANSFORMER, 64, 64, 9, "8-bit", offload=True),
            Case("14b-8bit-stills", TINY_TRANSFORMER, 64, 64, 1, "8-bit"),
        ]
    from tests.providers.wan_t2v import WAN_T2V_13B

    return [
        Case("1.3b", WAN_T2V_13B["transformer"], 832, 480, 81, "bf16"),
        Case("1.3b-33", WAN_T2V_13B["transformer"], 832, 480, 33, "bf16"),
        Case("14b-8bit", WAN_14B_TRANSFORMER, 832, 480, 81, "8-bit"),
        Case("14b-8bit-offload", WAN_14B_TRANSFORMER, 832, 480, 81, "8-bit", offload=True),
        Case("14b-8bit-stills", WAN_14B_TRANSFORMER, 512, 512, 1, "8-bit"),
        Case("14b-bf16", WAN_14B_TRANSFORMER, 832, 480, 81, "bf16"),
        Case("14b-bf16-33", WAN_14B_TRANSFORMER, 832, 480, 33, "bf16"),
    ]


def configs(folder: Path, transformer: dict[str, Any], size: str) -> Path:
    """A staged directory's configs only (no weights): what wan_models.counted reads."""
    from transformers import UMT5Config

    from tests.providers.wan_t2v import WAN_T2V_13B

    def write(part: str, config: dict[str, Any]) -> None:
        (folder / part).mkdir(parents=True, exist_ok=True)
        (folder / part / "config.json").write_text(json.dumps(config))

    write("transformer", {"_class_name": "WanTransformer3DModel", **transformer})
    text = WAN_T2V_13B["text_encoder"] if size == "full" else {"d_model": 32, "num_layers": 1, "num_heads": 2}
    UMT5Config(**text).save_pretrained(str(folder / "text_encoder"))
    vae = WAN_T2V_13B["vae"] if size == "full" else {"base_dim": 3, "z_dim": 16, "dim_mult": [1, 1, 1, 1]}
    write("vae", {"_class_name": "AutoencoderKLWan", **vae})
    return folder


def estimate(case: Case, folder: Path, card: Any) -> tuple[str, float, str]:
    """(the base the plan stores, the planner's GiB, its refusal in one line or "")."""
    from contentgen.errors import GpuMemoryTooSmall
    from contentgen.providers.cluster import memory
    from contentgen.providers.cluster.families import wan_memory, wan_models

    counted = wan_models.counted(folder)
    base = memory.eight_bit(card) if case.base == "8-bit" else "bf16"
    job = wan_memory.WanJob(case.width, case.height, case.frames, counted.lora_parameters(PRESET, RANK))
    gib = wan_memory.estimate_gib(counted.sizes, job, base, case.offload)
    refused = ""
    if card.gpu:
        try:
            plan = wan_memory.choose_training(card, counted.sizes, job, base)
            if plan.offload != case.offload:
                refused = f"the planner would {'' if plan.offload else 'not '}keep activations in CPU memory"
        except GpuMemoryTooSmall as exc:
            refused = str(exc)
    return base, round(gib, 6), refused


def measure(case: Case, device: str, base: str, warmup: int, timed: int) -> dict[str, Any]:
    """The trainer's step on `case`'s shapes: its mean seconds and peak memory."""
    import torch

    from bench.video_gpu import peak_memory
    from contentgen.providers.cluster.families import video_data, wan_models, wan_training
    from contentgen.providers.cluster.generation import flux
    from contentgen.providers.cluster.training import adapters
    from contentgen.providers.cluster.training.plan import Plan

    on = flux.Device(torch.device(device), torch.bfloat16 if device == "cuda" else torch.float32)
    transformer = _transformer(case, device, base)
    plan = Plan(steps=warmup + timed, rank=RANK, targets=PRESET)
    targets = wan_models.target_modules(adapters.linear_layers(transformer), PRESET)
    trained = adapters.with_adapter("transformer", transformer, plan, targets)
    params, optimizer = trained.params, trained.optimizer
    transformer.to(on.where)
    latent_frames = (case.frames - 1) // 4 + 1
    shape = (1, 16, latent_frames, case.height // 8, case.width // 8)
    text = torch.randn(1, 512, int(case.transformer["text_dim"]), device=on.where, dtype=on.dtype)
    example = video_data.Cached(latents=torch.randn(shape, device=on.where), text=text)
    generator = torch.Generator("cpu").manual_seed(0)

    def step() -> None:
        sigma, timestep = wan_training.draw_noise_level("shift", generator, 3.0)
        noise = torch.randn(shape, generator=generator).to(on.where)
        loss = wan_training.flow_loss(transformer, example, sigma, timestep, noise, on, offload=case.offload)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    sync()
    with peak_memory(device) as peaks:
        began = time.perf_counter()
        for _ in range(timed):
            step()
        sync()
        seconds = (time.perf_counter() - began) / timed
    return {"seconds_per_step": round(seconds, 3), **{k: round(v / 1024**3, 2) for k, v in peaks.items()}}


def _transformer(case: Case, device: str, base: str) -> Any:
    """`case`'s transformer made (on the GPU, in bf16, where there is one), stored as `base`."""
    import torch
    from diffusers import WanTransformer3DModel

    make: Callable[[], Any] = lambda: WanTransformer3DModel(**case.transformer)  # noqa: E731
    if device == "cuda":
        from scripts.gpu_full import made_on_gpu

        transformer = made_on_gpu(torch, make)
    else:
        transformer = make()
    if base != "bf16":  # torchao's weight-only, as flux.quantisation hands diffusers
        from torchao.quantization import (  # type: ignore[import-untyped]
            Float8WeightOnlyConfig,
            Int8WeightOnlyConfig,
            quantize_,
        )

        quantize_(transformer, Int8WeightOnlyConfig() if base == "int8" else Float8WeightOnlyConfig())
    return transformer


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    import torch

    from contentgen.providers.cluster import devices
    from contentgen.providers.cluster.generation import flux

    devices.prepare_torch(args.device)  # expandable segments, as every worker trains with them
    on = flux.Device(torch.device(args.device), torch.bfloat16)
    card = flux.card(on)
    wanted = set(args.cases.split(",")) if args.cases else None
    lines = []
    for case in cases(args.size):
        if wanted is not None and case.name not in wanted:
            continue
        with tempfile.TemporaryDirectory(prefix="wan-train-gpu-") as folder:
            base, gib, refused = estimate(case, configs(Path(folder), case.transformer, args.size), card)
        line: dict[str, Any] = {
            "case": case.name,
            "shape": f"{case.frames} frames at {case.width}x{case.height}",
            "base": base,
            "activations_in_cpu_memory": case.offload,
            "estimate_gib": gib,
            "device": card.name,
        }
        if refused and card.gpu:
            line["not_run"] = refused
        else:
            line.update(measure(case, args.device, base, args.warmup, args.timed))
            line.update(beside(gib, line))
            if card.gpu:
                torch.cuda.empty_cache()  # the case's model went with `measure`
        _emit(args.out, line)
        lines.append(line)
    return lines


def beside(estimate: float, measured: dict[str, Any]) -> dict[str, Any]:
    """The planner's allowance for the step (its estimate, the allocator's share of it and CUDA's
    reserve: what it holds the card to) and how far the estimate is over the peak allocation."""
    from contentgen.providers.cluster import memory

    allowance = estimate * (1 + memory.ALLOCATOR_SHARE) + memory.RESERVE_BYTES / memory.GIB
    found: dict[str, Any] = {"allowance_gib": round(allowance, 2)}
    if measured.get("peak_allocated"):
        found["estimate_over_allocated"] = f"{100 * (estimate / measured['peak_allocated'] - 1):+.1f}%"
    return found


def _emit(out: str, line: dict[str, Any]) -> None:
    print(json.dumps(line), flush=True)
    if out:
        with open(out, "a") as handle:
            handle.write(json.dumps(line) + "\n")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=["full", "tiny"], default="full")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--cases", default="", help="comma-separated: 1.3b, 14b-8bit, 14b-8bit-offload, ...")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--timed", type=int, default=5)
    parser.add_argument("--out", default="", help="append each case's line to this file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    run(parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
