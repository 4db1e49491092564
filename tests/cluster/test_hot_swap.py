"""A warm pool's LoRAs on a compiled transformer (`generation.HotSwapLoras`, issue 79), on the tiny
FLUX: the transformer compiled once with one adapter slot, each request's LoRAs swapped into it in
place (diffusers' hot-swap). A request with one LoRA, two at once, none, one again at another
scale: no graph compiled after the first (no recompile per swap), each LoRA file read once while
kept on the device, and every picture the one drawn with that request's LoRAs loaded and unloaded
as a Job's worker does (`loras_loaded`, no compile), to a pixel level or two (the sums are added in
another order). A LoRA of more than the slot's rank, or one that adapts the text encoder, is drawn
apart, the compiled graphs set aside, and still draws its picture.

The compiler is torch's aot_eager (TorchDynamo's graphs and their guards, which decide every
recompile, with AOTAutograd's, without code generation): inductor draws the same graphs and
compiles each for minutes on this machine's CPU (`make bench-pools ARGS="--compile inductor"`)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from contentgen.providers.cluster.generation import pipelines
from contentgen.providers.cluster.generation.generation import HotSwapLoras
from contentgen.providers.cluster.generation.pool import DrawRequest
from contentgen.providers.cluster.provider import ClusterProvider
from tests.harness.cluster import random_lora

from .conftest import DEVICE

pytestmark = pytest.mark.cluster_models
SIZES = {"square": (64, 64)}


@pytest.fixture
def fresh() -> Iterator[None]:
    """No pipeline kept before or after: the compiled one is this test's alone."""
    pipelines.release()
    yield
    pipelines.release()


def drawn(provider: ClusterProvider, base: Path, folder: Path, *loras: tuple[Path, float]) -> np.ndarray:
    folder.mkdir(parents=True)
    wanted = DrawRequest("alice", "a photo of sks", 64, 64, 2, 3.5, "auto", (), ((1, 7),))
    [picture] = provider.draw(base, wanted, loras, folder, lambda: False)
    return np.asarray(Image.open(io.BytesIO(picture.path.read_bytes())), dtype=np.int16)


def text_encoder_lora(lora: Path, models_root: Path) -> Path:
    """`lora` with a layer of the text encoder too (CLIP's first query projection)."""
    tensors = load_file(str(lora))
    width = 32  # tiny_flux's text encoders' hidden size
    prefix = "text_encoder.text_model.encoder.layers.0.self_attn.q_proj"
    tensors[f"{prefix}.lora_A.weight"] = torch.randn(4, width)
    tensors[f"{prefix}.lora_B.weight"] = torch.randn(width, 4)
    path = lora.with_name("with-text-encoder.safetensors")
    save_file(tensors, str(path))
    return path


def test_swaps_draw_each_requests_pictures_without_recompiling(
    models_root: Path, tmp_path: Path, fresh: None
) -> None:
    base = models_root / "FLUX.1-dev"
    a, b = random_lora(models_root, tmp_path / "loras", 1), random_lora(models_root, tmp_path / "loras", 2)
    wide = random_lora(models_root, tmp_path / "loras", 3, rank=16)
    both_text = text_encoder_lora(a, models_root)
    cases: dict[str, tuple[tuple[Path, float], ...]] = {
        "none": (),
        "a": ((a, 0.5),),
        "b": ((b, 0.5),),
        "a and b": ((a, 0.5), (b, 0.25)),
        "a again, another scale": ((a, 1.0),),
        "wider than the slot": ((wide, 0.5),),
        "the text encoder too": ((both_text, 0.5),),
        "b after those": ((b, 0.5),),
    }
    eager = ClusterProvider(models_root, device=DEVICE, inference_steps=2, sizes=SIZES)
    expected = {name: drawn(eager, base, tmp_path / "eager" / name, *loras) for name, loras in cases.items()}
    pipelines.release()

    compiled = ClusterProvider(models_root, device=DEVICE, inference_steps=2, sizes=SIZES)
    compiled.keep_loras(4, compiler="aot_eager", rank=8)
    assert isinstance(compiled.kept, HotSwapLoras)
    kept = compiled.kept
    graphs: dict[str, int] = {}
    made = {}
    for name, loras in cases.items():
        made[name] = drawn(compiled, base, tmp_path / "compiled" / name, *loras)
        graphs[name] = kept.compiler.graphs
    for name in cases:
        assert np.abs(made[name] - expected[name]).max() <= 2, name
    assert len({expected[name].tobytes() for name in ("none", "a", "b", "a and b")}) == 4  # each LoRA there

    compiled_once = graphs["none"]
    assert compiled_once >= 1
    assert all(count == compiled_once for count in graphs.values()), str(graphs)  # no recompile, any swap
    account = kept.account()
    # swapped: a, b, a and b, a again, the slot zeroed for the two drawn apart, b after them
    assert (account["fallbacks"], account["swaps"]) == (2, 6)
    # a and b read once each and kept; the wide LoRA and the one with a text encoder read once each,
    # drawn apart, never kept; the fallback's adapters read again there
    assert (
        account["loads"] == 2 + 2 * 2
        and account["kept"] == 2
        and account["held"] == sorted(kept.digests.of(p) for p in (a, b))
    )
