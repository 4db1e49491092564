"""The Wan trainer's memory plans (providers/cluster/families/wan_memory.py) at real size: Wan 2.1 T2V
1.3B and Wan 14B (an expert of Wan 2.2 A14B) counted from their configs on the meta device (no
weights), each estimate 0 to 10 % over the peak allocation measured on an H200
(bench/memory-measured.json), the estimates docs/cluster-gpus.md gives, and the plan each card
gets; refusals in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.wan_train_gpu import WAN_14B_TRANSFORMER, configs
from contentgen.errors import GpuMemoryTooSmall, InvalidInput
from contentgen.providers.cluster import memory
from contentgen.providers.cluster.families import video_data, wan_memory, wan_models
from tests.providers.wan_t2v import WAN_T2V_13B

GIB = 1024**3
RTX_4090 = memory.Card(int(23.6 * GIB), int(23.6 * GIB), (8, 9), "NVIDIA GeForce RTX 4090")
L40S = memory.Card(int(44.4 * GIB), int(44.4 * GIB), (8, 9), "NVIDIA L40S")
A100_40 = memory.Card(int(39.4 * GIB), int(39.4 * GIB), (8, 0), "NVIDIA A100-SXM4-40GB")
H100 = memory.Card(int(79.2 * GIB), int(79.2 * GIB), (9, 0), "NVIDIA H100 80GB HBM3")
ROOT = Path(__file__).resolve().parents[2]


def counted(tmp_path: Path, transformer: dict, *, pair: bool = False) -> memory.Counted[wan_memory.WanSizes]:
    folder = configs(tmp_path / "model", transformer, "full")
    if pair:
        (folder / "transformer_2").mkdir()
    return wan_models.counted(folder)


def job(
    found: memory.Counted[wan_memory.WanSizes], frames: int = 81, width: int = 832, height: int = 480
) -> wan_memory.WanJob:
    return wan_memory.WanJob(width, height, frames, found.lora_parameters("attention+feedforward", 16))


def gib(
    found: memory.Counted[wan_memory.WanSizes], work: wan_memory.WanJob, base: str, offload: bool = False
) -> float:
    return round(wan_memory.estimate_gib(found.sizes, work, base, offload), 1)  # type: ignore[arg-type]


def test_every_estimate_is_within_ten_percent_over_its_measured_peak(tmp_path):
    small = counted(tmp_path / "small", WAN_T2V_13B["transformer"])
    assert round(small.sizes.transformer / 1e9, 2) == 1.42 and small.sizes.blocks == 30
    assert round(small.sizes.text_encoder / 1e9, 2) == 5.68  # UMT5-XXL's encoder
    big = counted(tmp_path / "big", WAN_14B_TRANSFORMER)
    assert round(big.sizes.transformer / 1e9, 1) == 14.3 and big.sizes.blocks == 40
    assert job(small).tokens() == 21 * 30 * 52  # 81 frames: 21 latent frames of 60 × 104 latents, 2 × 2
    measured = json.loads((ROOT / "bench" / "memory-measured.json").read_text())["wan"]["steps"]
    models = {"wan-1.3b": small, "wan-14b": big}
    for step in measured:
        found = models[step["model"]]
        work = job(found, step["frames"], step["width"], step["height"])
        estimate = wan_memory.estimate_gib(found.sizes, work, step["base"], step["offload"])
        assert step["allocated_gib"] <= estimate <= 1.10 * step["allocated_gib"], step
    # the docs' table (docs/cluster-gpus.md)
    clip = job(big)
    assert (gib(big, clip, "bf16"), gib(big, clip, "int8"), gib(big, clip, "fp8")) == (56.2, 43.9, 43.9)
    assert (gib(big, clip, "bf16", True), gib(big, clip, "int8", True), gib(big, clip, "nf4", True)) == (
        43.7,
        31.4,
        24.4,
    )
    assert gib(small, job(small), "bf16") == 11.9
    assert gib(big, job(big, frames=1, width=512, height=512), "int8") == 16.4  # stills alone


def test_each_card_gets_the_first_plan_that_fits(tmp_path):
    small, big = (
        counted(tmp_path / "s", WAN_T2V_13B["transformer"]),
        counted(tmp_path / "b", WAN_14B_TRANSFORMER),
    )
    assert wan_memory.choose_training(RTX_4090, small.sizes, job(small)).base == "bf16"
    chosen = {
        card.name: wan_memory.choose_training(card, big.sizes, job(big)) for card in (L40S, A100_40, H100)
    }
    assert [(p.base, p.offload) for p in chosen.values()] == [("fp8", True), ("int8", True), ("bf16", False)]
    assert chosen[L40S.name].describe() == (
        "fp8 (torchao float8 weight-only), checkpointed activations in CPU memory, needs 31.4 GiB of 44.4 "
        "GiB free"
    )
    # a 24 GB card holds no 14B clip, even on NF4 with its activations in CPU memory (24.4 GiB) ...
    with pytest.raises(GpuMemoryTooSmall) as refused:
        wan_memory.choose_training(RTX_4090, big.sizes, job(big))
    assert "\n" not in str(refused.value) and "dataset.clips.frames" in str(refused.value)
    # ... but stills alone, on an 8-bit base, resident
    stills = wan_memory.choose_training(RTX_4090, big.sizes, job(big, frames=1, width=512, height=512))
    assert (stills.base, stills.offload) == ("fp8", False)


def test_wan_22s_two_experts_take_turns_where_both_do_not_fit(tmp_path):
    pair = counted(tmp_path, WAN_14B_TRANSFORMER, pair=True)
    assert pair.sizes.experts == 2
    h100 = wan_memory.choose_training(H100, pair.sizes, job(pair))
    assert (h100.base, h100.offload, h100.experts_resident) == ("bf16", True, True)
    l40s = wan_memory.choose_training(L40S, pair.sizes, job(pair))
    assert (l40s.base, l40s.offload, l40s.experts_resident) == ("fp8", True, False)
    assert "experts taking turns on the card" in l40s.describe()
    default = wan_memory.choose_training(A100_40, pair.sizes, job(pair, frames=33))
    assert (default.base, default.offload, default.experts_resident) == ("bf16", True, False)
    with pytest.raises(GpuMemoryTooSmall):  # NF4's experts stay resident (bitsandbytes places them)
        wan_memory.choose_training(RTX_4090, pair.sizes, job(pair, frames=33))


def test_a_named_plan_is_taken_or_refused_in_one_line(tmp_path):
    big = counted(tmp_path, WAN_14B_TRANSFORMER)
    named = wan_memory.choose_training(H100, big.sizes, job(big), "int8")
    assert (named.base, named.chosen_by, named.offload) == ("int8", "spec", False)
    with pytest.raises(
        GpuMemoryTooSmall, match=r"with memory plan bf16 .*: use training.memoryPlan auto or nf4"
    ):
        wan_memory.choose_training(RTX_4090, big.sizes, job(big), "bf16")
    cpu = wan_memory.choose_training(memory.Card(0, 0), big.sizes, job(big))
    assert (cpu.chosen_by, cpu.base) == ("cpu", "bf16")
    with pytest.raises(InvalidInput, match="nf4 needs a CUDA GPU"):
        wan_memory.choose_training(memory.Card(0, 0), big.sizes, job(big), "nf4")


def test_a_clip_is_trained_at_its_shape_within_the_resolution():
    assert video_data.clip_shape(832, 480, 1024) == (832, 480)  # under 1024² pixels: as cut
    assert video_data.clip_shape(832, 480, 512) == (672, 384)  # scaled to 512² pixels, on 16s
    assert video_data.clip_shape(480, 832, 512) == (384, 672)
    assert [video_data.frame_count(n) for n in (1, 4, 5, 33, 35, 81)] == [1, 1, 5, 33, 33, 81]
