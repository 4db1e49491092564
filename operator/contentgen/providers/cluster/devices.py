"""The device a cluster worker computes on, for every kind alike: CONTENTGEN_CLUSTER_DEVICE (cpu,
cuda, cuda:N), or, empty, the GPU when there is one and else the CPU. A device that is named and
is not there is `DeviceUnavailable`, said in one line before any model is loaded (the frameworks
would otherwise fail mid-run: torch with "Torch not compiled with CUDA enabled" or "invalid device
ordinal", CTranslate2 with "CUDA driver version is insufficient").

FLUX (training, generation) runs on torch, which counts its GPUs itself; Whisper runs on
CTranslate2, which counts them without torch (the transcription path never imports it)."""

from __future__ import annotations

import os

from contentgen.errors import DeviceUnavailable

SETTING = "CONTENTGEN_CLUSTER_DEVICE"
# torch's CUDA caching allocator with expandable segments: it reserved 45.9 GiB for a Wan 14B step
# that allocated 43.0 GiB, where without them it reserved 61.7 GiB (an H200, issue 76); the memory
# planner's allowance for the allocator (memory.ALLOCATOR_SHARE) counts on it. A value the pod's
# environment gives is kept.
ALLOCATOR = ("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")


def parse(name: str) -> tuple[str, int]:
    """(kind, index) of a device's name: '' is ('', 0) (the GPU when there is one), 'cpu' is
    ('cpu', 0), 'cuda' is ('cuda', 0), 'cuda:1' is ('cuda', 1)."""
    kind, _, index = name.strip().partition(":")
    return kind, int(index) if index else 0


def ctranslate2_device(name: str) -> tuple[str, int]:
    """CTranslate2's (device, device_index) for the setting's value: '' is its 'auto'."""
    kind, index = parse(name)
    return kind or "auto", index


def check(name: str, gpus: int, framework: str) -> None:
    """DeviceUnavailable when `name` is a GPU (cuda, cuda:N) and `framework` sees only `gpus`
    GPUs (none, or too few for N); the CPU and '' (whatever there is) always pass."""
    kind, index = parse(name)
    if kind != "cuda" or index < gpus:
        return
    there = "no GPU" if gpus == 0 else f"{gpus} GPU{'s' if gpus > 1 else ''} (cuda:0 to cuda:{gpus - 1})"
    raise DeviceUnavailable(
        f"{SETTING} is {name!r}, and {framework} sees {there} on this machine: unset {SETTING} to run "
        "on what there is, or run the worker where that GPU is (a pod that requests it)"
    )


def prepare_torch(name: str) -> None:
    """Before torch touches a GPU: its allocator set (ALLOCATOR), and `check_torch`."""
    os.environ.setdefault(*ALLOCATOR)
    check_torch(name)


def check_torch(name: str) -> None:
    """`check` with torch's GPUs (training and generation)."""
    if parse(name)[0] != "cuda":
        return
    import torch

    check(name, torch.cuda.device_count() if torch.cuda.is_available() else 0, "torch")


def check_ctranslate2(name: str) -> None:
    """`check` with CTranslate2's GPUs (Whisper)."""
    if parse(name)[0] != "cuda":
        return
    import ctranslate2  # type: ignore[import-untyped]

    check(name, int(ctranslate2.get_cuda_device_count()), "CTranslate2")
