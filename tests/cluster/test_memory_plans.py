"""Memory plans (providers/cluster/memory.py): FLUX.1-dev's sizes counted from its real configs on
the meta device (no weights, nothing downloaded), each plan's selection on the cards platform
teams have and its refusal, in one line with the numbers, before anything is loaded; the LoRA
presets' layers on the real architecture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contentgen.api.reasons import REASONS
from contentgen.errors import GpuMemoryTooSmall, InvalidInput
from contentgen.providers.cluster import memory
from contentgen.providers.cluster.generation import flux

from .flux_dev import FLUX_DEV

pytestmark = pytest.mark.cluster_models

GIB = memory.GIB


@pytest.fixture(scope="module")
def flux_dev(tmp_path_factory) -> memory.Counted[memory.Sizes]:
    folder = tmp_path_factory.mktemp("flux-dev-configs")
    for part, config in FLUX_DEV.items():
        (folder / part).mkdir()
        (folder / part / "config.json").write_text(json.dumps(config))
    return flux.counted(folder)


def card(gib: float, capability: tuple[int, int] = (8, 9), name: str = "a card") -> memory.Card:
    return memory.Card(free=int(gib * GIB), total=int(gib * GIB), capability=capability, name=name)


def job(
    counted: memory.Counted[memory.Sizes],
    resolution: int = 512,
    preset: str = "attention+feedforward",
    rank: int = 16,
):
    return memory.TrainingJob(resolution=resolution, lora_parameters=counted.lora_parameters(preset, rank))


def test_flux_dev_is_counted_from_its_configs(flux_dev):
    sizes = flux_dev.sizes
    assert round(sizes.transformer / 1e9, 2) == 11.90  # the count
    assert round(sizes.t5 / 1e9, 2) == 4.76  # T5-XXL's encoder, its embedding stored once
    assert round(sizes.clip / 1e6) == 123 and round(sizes.vae / 1e6) == 84
    assert sizes.quantisable / sizes.transformer > 0.999  # nearly all of it is in linear layers
    assert (sizes.hidden, sizes.blocks) == (3072, 57)
    # in bf16 the transformer alone is 23.8 GB, and an 8-bit base halves it
    assert round(sizes.transformer_bytes("bf16") / 1e9, 1) == 23.8
    assert round(sizes.transformer_bytes("int8") / 1e9, 1) == 11.9
    assert round(sizes.transformer_bytes("nf4") / 1e9, 1) == 6.2


def test_every_estimate_is_within_ten_percent_over_its_measured_peak(flux_dev):
    """FLUX.1-dev's training steps measured on an H100 and an H200 (bench/memory-measured.json,
    docs/cluster-gpus.md): each estimate at or over its peak allocation, by 10 % at most."""
    root = Path(__file__).resolve().parents[2]
    measured = json.loads((root / "bench" / "memory-measured.json").read_text())["flux"]["steps"]
    for step in measured:
        parts = memory.training_parts(flux_dev.sizes, job(flux_dev, step["resolution"]), step["base"])
        assert step["allocated_gib"] <= sum(parts.values()) / GIB <= 1.10 * step["allocated_gib"], step


def test_the_lora_presets_on_flux_dev(flux_dev):
    from contentgen.providers.cluster.generation.lora_files import target_modules

    names = [name for name, _, _ in flux_dev.linears]
    counts = {p: len(target_modules(names, p)) for p in ("attention", "attention+feedforward", "all-linear")}
    assert counts == {"attention": 266, "attention+feedforward": 342, "all-linear": 494}
    params = {p: flux_dev.lora_parameters(p, 16) for p in counts}
    assert {p: round(n / 1e6, 1) for p, n in params.items()} == {
        "attention": 26.1,
        "attention+feedforward": 44.8,
        "all-linear": 85.9,
    }
    # every adapted layer is inside the blocks: no embedder or the final projection
    assert not [n for n in target_modules(names, "all-linear") if "blocks" not in n]
    with pytest.raises(ValueError, match="loraTargets"):
        target_modules(names, "everything")


def test_training_plans_follow_the_card(flux_dev):
    at = job(flux_dev)
    h100 = memory.choose_training(card(79.1, (9, 0), "NVIDIA H100"), flux_dev.sizes, at)
    assert (h100.base, h100.encoders_on_gpu, h100.chosen_by) == ("bf16", True, "auto")
    a100 = memory.choose_training(card(39.4, (8, 0)), flux_dev.sizes, at)
    assert a100.base == "bf16"
    # 24 GB cards: an 8-bit base, fp8 where the card has fp8 (Ada: the RTX 4090, L4), int8 before it
    assert memory.choose_training(card(23.5, (8, 9)), flux_dev.sizes, at).base == "fp8"
    a10g = memory.choose_training(card(22.0, (8, 6)), flux_dev.sizes, at)
    assert a10g.base == "int8" and a10g.needed < 22 * GIB
    # 12 GB: NF4 (QLoRA), the text encoders on the CPU (T5-XXL alone is 9.5 GB); 16 GB: still 8-bit
    twelve = memory.choose_training(card(11.6, (8, 6)), flux_dev.sizes, at)
    assert (twelve.base, twelve.encoders_on_gpu) == ("nf4", False)
    assert memory.choose_training(card(15.5, (8, 9)), flux_dev.sizes, at).base == "fp8"
    # 1024 px needs more than 512
    big = memory.choose_training(card(23.5, (8, 9)), flux_dev.sizes, job(flux_dev, 1024))
    assert big.base == "fp8" and big.needed > memory.choose_training(card(23.5), flux_dev.sizes, at).needed
    # the spec's plan is taken as it is where it fits
    named = memory.choose_training(card(79.1, (9, 0)), flux_dev.sizes, at, "nf4")
    assert (named.base, named.chosen_by) == ("nf4", "spec")
    assert "bitsandbytes NF4 (QLoRA)" in named.describe() and "GiB free" in named.describe()
    # on the CPU nothing is planned: the weights as they are
    assert memory.choose_training(memory.Card(0, 0), flux_dev.sizes, at).base == "bf16"


def test_a_plan_that_cannot_fit_is_refused_with_the_numbers(flux_dev):
    at = job(flux_dev)
    with pytest.raises(GpuMemoryTooSmall) as refused:
        memory.choose_training(card(7.6, (7, 5), "Tesla T4"), flux_dev.sizes, at)
    message = str(refused.value)
    assert refused.value.reason == "GpuMemoryTooSmall" and "\n" not in message
    assert "memory plan nf4 needs about" in message and "Tesla T4 has 7.6 GiB free of 7.6 GiB" in message
    with pytest.raises(
        GpuMemoryTooSmall, match=r"memory plan bf16 needs about .* use training\.memoryPlan auto"
    ):
        memory.choose_training(card(23.5), flux_dev.sizes, at, "bf16")
    with pytest.raises(InvalidInput, match="nf4 needs a CUDA GPU"):
        memory.choose_training(memory.Card(0, 0), flux_dev.sizes, at, "nf4")
    assert "GpuMemoryTooSmall" in REASONS  # documented (docs/reference/statuses.md)


def test_generation_plans_follow_the_card(flux_dev):
    picture = memory.GenerationJob(1024, 1024)
    resident = memory.choose_generation(card(79.1, (9, 0)), flux_dev.sizes, picture)
    assert (resident.base, resident.offload, resident.vae_tiling) == ("bf16", False, False)
    assert 31 * GIB < resident.needed < 36 * GIB  # about 33 GB with T5 resident, as the issue says
    assert not memory.choose_generation(card(39.4, (8, 0)), flux_dev.sizes, picture).offload
    # 32 GB: the components take turns (T5 off the card while the transformer denoises)
    turns = memory.choose_generation(card(31.4, (12, 0)), flux_dev.sizes, picture)
    assert (turns.base, turns.offload) == ("bf16", True)
    ada = memory.choose_generation(card(23.5, (8, 9)), flux_dev.sizes, picture)
    assert (ada.base, ada.offload) == ("fp8", True)
    assert memory.choose_generation(card(11.5, (8, 6)), flux_dev.sizes, picture).base == "nf4"
    # above a megapixel the VAE decodes in tiles, whatever the card
    large = memory.choose_generation(card(79.1, (9, 0)), flux_dev.sizes, memory.GenerationJob(1536, 1536))
    assert large.vae_tiling
    with pytest.raises(GpuMemoryTooSmall, match=r"a 1024×1024 picture with memory plan nf4 needs about"):
        memory.choose_generation(card(5.5, (7, 5)), flux_dev.sizes, picture)


def test_the_tiny_flux_is_counted_and_planned(models_root: Path):
    counted = flux.count(models_root / "FLUX.1-dev")
    assert counted is flux.count(models_root / "FLUX.1-dev")  # counted once per staged directory
    assert 0 < counted.sizes.transformer < 1e6 and counted.sizes.blocks == 2
    assert flux.card(flux.device("cpu")) == memory.Card(0, 0)


def test_a_named_generation_plan_is_taken_as_it_is_or_refused(flux_dev):
    """An ImageGeneration's memoryPlan: the training's names and offload; each named layout alone,
    refused with the numbers where it does not fit (auto would have taken another)."""
    picture = memory.GenerationJob(1024, 1024)
    sizes = flux_dev.sizes
    h100, five_ninety = card(79.1, (9, 0), "NVIDIA H100"), card(31.4, (12, 0), "a 32 GB card")
    bf16 = memory.choose_generation(h100, sizes, picture, "bf16")
    assert (bf16.base, bf16.offload, bf16.chosen_by) == ("bf16", False, "spec")
    offload = memory.choose_generation(h100, sizes, picture, "offload")
    assert (offload.base, offload.offload, offload.chosen_by) == ("bf16", True, "spec")
    assert offload.needed < bf16.needed
    # resident where they fit (on the H100); taking turns where they do not (a 24 GB card for an
    # 8-bit transformer beside the T5 encoder, a 12 GB one for NF4)
    for base, small in (("int8", 23.5), ("fp8", 23.5), ("nf4", 11.5)):
        named = memory.choose_generation(h100, sizes, picture, base)
        assert (named.base, named.offload) == (base, False)
        assert named.needed < bf16.needed
        turns = memory.choose_generation(card(small, (8, 9)), sizes, picture, base)
        assert (turns.base, turns.offload) == (base, True)
    assert "torchao int8 weight-only" in memory.choose_generation(h100, sizes, picture, "int8").describe()
    # bf16 resident does not fit 32 GB: refused, where auto takes turns
    assert memory.choose_generation(five_ninety, sizes, picture).offload
    with pytest.raises(GpuMemoryTooSmall) as refused:
        memory.choose_generation(five_ninety, sizes, picture, "bf16")
    message = str(refused.value)
    assert "\n" not in message and "a 1024×1024 picture with memory plan bf16 needs about" in message
    assert "a 32 GB card has 31.4 GiB free" in message and "use memoryPlan auto" in message
    with pytest.raises(GpuMemoryTooSmall, match=r"memory plan offload needs about .* use memoryPlan auto"):
        memory.choose_generation(card(16.0, (8, 6)), sizes, picture, "offload")
    # on the CPU: the weights as they are, or the named 8-bit base; nf4 and unknown names refused
    cpu = memory.Card(0, 0)
    assert memory.choose_generation(cpu, sizes, picture, "offload").base == "bf16"
    int8 = memory.choose_generation(cpu, sizes, picture, "int8")
    assert (int8.base, int8.offload, int8.chosen_by) == ("int8", False, "cpu")
    assert int8.describe() == "int8 (torchao int8 weight-only), on the CPU"
    with pytest.raises(InvalidInput, match=r"^memoryPlan nf4 needs a CUDA GPU"):
        memory.choose_generation(cpu, sizes, picture, "nf4")
    with pytest.raises(InvalidInput, match=r"memoryPlan 'fp4' is not one of auto, bf16, offload"):
        memory.choose_generation(h100, sizes, picture, "fp4")
    # the API's names are the planner's
    from typing import get_args

    from contentgen.api.image import ImageMemoryPlan

    assert get_args(ImageMemoryPlan) == memory.GENERATION_WANTED
