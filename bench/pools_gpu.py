"""The warm pool at real size on this machine's GPU (`make bench-pools ARGS="--node gpu"`, issue 47):
what bench/pools.py's process node needs beside its tiny CPU run.

- **FLUX.1-dev staged** at its real size: its architecture from its configs
  (tests/cluster/flux_dev.py) with random bf16 weights drawn on the GPU
  (`scripts.gpu_full.flux_dev_pipeline`), saved as a diffusers model directory (about 33 GB) under
  the models' root, as a platform team stages the real one; nothing is downloaded. A weight's value
  changes neither a load's time nor a picture's, only the picture itself.
- **LoRAs of the trainer's size**: rank 16 on the `attention+feedforward` preset, float32, saved by
  `lora_files.save` as training saves them (about 179 MB each), their shapes read from the staged
  transformer's config on the meta device (nothing loaded).
- **A cold node**: the kernel's page cache dropped before the pool starts (as root), so the pool's
  first load reads its 33 GB from the disk, as a new pod on a node that never read them does.

`--size tiny` stages the tests' tiny FLUX instead, and `--device cpu` draws on the CPU: the same
path, run on a machine without a GPU (tests/bench/test_pools.py)."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

RANK, PRESET = 16, "attention+feedforward"


def stage(models_root: Path, size: str, tiny_cache: Path) -> Path:
    """A models' root with FLUX.1-dev staged: at `full` size built on the GPU and saved (once per
    root), `tiny` the tests' tiny FLUX (built once into `tiny_cache`)."""
    target = models_root / "FLUX.1-dev"
    if (target / "model_index.json").exists():
        return models_root
    models_root.mkdir(parents=True, exist_ok=True)
    if size == "tiny":
        from tests.cluster.tiny_flux import tiny_flux

        target.symlink_to(tiny_flux(tiny_cache), target_is_directory=True)
        return models_root
    import torch

    from scripts.gpu_full import build_transformer, flux_dev_pipeline

    building = models_root / ".FLUX.1-dev.building"
    pipe = flux_dev_pipeline(torch, "cuda", build_transformer(torch, "bf16", "cuda"))
    pipe.save_pretrained(building)
    del pipe
    torch.cuda.empty_cache()
    building.rename(target)
    return models_root


def lora(models_root: Path, path: Path, seed: int) -> Path:
    """A random LoRA of the staged transformer's shapes: rank RANK on PRESET, float32, as the
    trainer saves one."""
    import torch
    from diffusers import FluxTransformer2DModel

    from contentgen.providers.cluster.generation import lora_files

    config = FluxTransformer2DModel.load_config(models_root / "FLUX.1-dev" / "transformer")
    with torch.device("meta"):
        transformer = FluxTransformer2DModel.from_config(config)
    linear = {n: m for n, m in transformer.named_modules() if isinstance(m, torch.nn.Linear)}
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name in lora_files.target_modules(linear, PRESET):
        module = linear[name]
        state[f"{name}.lora_A.weight"] = torch.randn(RANK, module.in_features, generator=generator) * 0.01
        state[f"{name}.lora_B.weight"] = torch.randn(module.out_features, RANK, generator=generator) * 0.01
    path.parent.mkdir(parents=True, exist_ok=True)
    return lora_files.save(path, state, {})


def drop_page_cache() -> bool:
    """The kernel's clean page cache dropped (its dirty pages written first): whether it could be
    (root only; a container may refuse)."""
    subprocess.run(["sync"], check=False)
    with contextlib.suppress(OSError):
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    return False


def gpu_name() -> str:
    """The GPU's name and its memory, as nvidia-smi says them ("" without one)."""
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.check_output(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            text=True,
            timeout=30,
        )
        return out.strip().splitlines()[0]
    return ""
