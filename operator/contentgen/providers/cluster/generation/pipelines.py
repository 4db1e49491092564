"""The FLUX pipeline a worker generates with, loaded once per process and kept: every picture
request (an ImageGeneration's, and each of a likeness evaluation's, one per picture) takes the kept
one instead of loading the whole pipeline again (FLUX.1-dev in bf16 is tens of GB read from disk
and moved to the GPU each time).

One pipeline is kept, for one (weights, device, dtype, variant): asking for another releases it
first, so that two never hold the GPU's memory together (FLUX.1-dev and FLUX.1-schnell are each
about as large as a card). The weights are the model directory as staged: its resolved path and
its identity on disk (a re-staged model is a new directory, renamed into place), so a model copied
anew is loaded anew. `variant` is whatever else changes the loaded pipeline (a memory plan).

LoRAs are not part of the kept pipeline: `generation.loras_loaded` loads a request's LoRAs onto it
and unloads them when the request ends, so one request's LoRA never reaches the next. Training
loads its own copy to train: `release` frees the kept one first."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import flux


@dataclass(frozen=True)
class Key:
    weights: str  # the resolved model directory
    identity: tuple[int, int, int]  # its device, inode and mtime: a re-staged copy is another
    device: str
    dtype: str
    variant: Hashable = ()


_lock = threading.Lock()
_kept: dict[Key, Any] = {}
loads = 0  # pipelines loaded by this process (a test counts them)


def key(model_dir: Path, on: flux.Device, variant: Hashable = ()) -> Key:
    resolved = model_dir.resolve()
    stat = resolved.stat()
    return Key(
        str(resolved), (stat.st_dev, stat.st_ino, stat.st_mtime_ns), str(on.where), str(on.dtype), variant
    )


def pipeline(
    model_dir: Path,
    on: flux.Device,
    *,
    variant: Hashable = (),
    load: Callable[[Path, flux.Device], Any] | None = None,
) -> Any:
    """The kept pipeline of `model_dir` on `on`, loaded with `load` (`flux.load_pipeline`) the
    first time it is asked for (and after another was asked for, or `release`)."""
    wanted = key(model_dir, on, variant)
    global loads
    with _lock:
        if wanted not in _kept:
            _release()
            _kept[wanted] = (load or flux.load_pipeline)(model_dir, on)
            loads += 1
        return _kept[wanted]


def release() -> None:
    """Drop the kept pipeline and give its GPU memory back (before training loads its own)."""
    with _lock:
        _release()


def _release() -> None:
    if not _kept:
        return
    cuda = any(k.device.startswith("cuda") for k in _kept)
    _kept.clear()
    gc.collect()
    if cuda:
        import torch

        torch.cuda.empty_cache()
