"""The CUDA 12 libraries of the nvidia-* wheels, loaded into the worker before CTranslate2 needs
them, whatever was imported before.

CTranslate2 (Whisper) opens `libcublas.so.12` by name at its first GPU call (dlopen). The wheels
put it under site-packages/nvidia/cublas/lib, which is on no library path: only torch's import
loads it (torch preloads its nvidia-* libraries), and the transcription path never imports torch,
so without this the name does not resolve and every GPU transcription fails. A library loaded
once is found by its name afterwards (the dynamic loader matches a bare name against the sonames
already loaded), so loading it here from the wheel's path is enough; RTLD_GLOBAL as torch does.

Where a wheel is not installed (the CPU worker, a system CUDA), nothing is loaded and the
system's library path decides, as before. The GPU image also puts the wheels' directories on
LD_LIBRARY_PATH (worker-image/gpu.Dockerfile), for any other process in it."""

from __future__ import annotations

import ctypes
import importlib.util
import logging
from pathlib import Path

log = logging.getLogger(__name__)

# (the nvidia-* wheel's directory under nvidia/, the library's soname) that CTranslate2 4 opens by
# name: cuBLAS only (its library names no other CUDA library; its Conv1D is im2col and cuBLAS, no
# cuDNN; the CUDA runtime is linked in). libcublasLt.so.12 follows from cuBLAS's RUNPATH $ORIGIN.
CTRANSLATE2 = (("cublas", "libcublas.so.12"),)

_loaded: dict[str, Path] = {}


def wheel_roots() -> list[Path]:
    """The `nvidia` package's directories on sys.path (none without an nvidia-* wheel); found
    without importing it."""
    spec = importlib.util.find_spec("nvidia")
    if spec is None or spec.submodule_search_locations is None:
        return []
    return [Path(location) for location in spec.submodule_search_locations]


def wheel_library(package: str, soname: str) -> Path | None:
    """The path of `soname` in the nvidia-`package` wheel, when it is installed."""
    for root in wheel_roots():
        path = root / package / "lib" / soname
        if path.is_file():
            return path
    return None


def preload(libraries: tuple[tuple[str, str], ...] = CTRANSLATE2) -> dict[str, Path]:
    """Load each of `libraries` from its wheel (once per process); {soname: path} of those loaded
    so far. A library that is not installed is skipped; one that fails to load is logged (the
    framework then says what it misses, in its own words)."""
    for package, soname in libraries:
        if soname in _loaded:
            continue
        path = wheel_library(package, soname)
        if path is None:
            continue
        try:
            ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
        except OSError as exc:
            log.warning("could not load %s from %s: %s", soname, path, exc)
            continue
        _loaded[soname] = path
    return dict(_loaded)
