"""The CUDA 12 libraries of the nvidia-* wheels load in every path (issue 39): CTranslate2 opens
`libcublas.so.12` by name at its first GPU call, and the wheels put it on no library path; only
torch's import loaded it, and the transcription path never imports torch. In a fresh process (so
that nothing imported before can help), the worker's transcriber makes the name resolve, torch
still not imported; the control, the same imports without a transcription, shows the name does
not resolve by itself. Where the nvidia-cublas-cu12 wheel is installed (the dev environment and
the GPU image's set; tests/chart runs the same probe in the GPU image's set alone)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from contentgen.providers.cluster.transcription import cuda_libraries

from .cluster_models import speech, stage_tiny_whisper

pytestmark = pytest.mark.cluster_models

PROBE = Path(__file__).with_name("cuda_probe.py")


def probe(python: str, models: Path, audio: Path, *flags: str) -> dict[str, object]:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "HF_HUB_OFFLINE": "1", "CT2_VERBOSE": "-1"}
    done = subprocess.run(
        [python, str(PROBE), str(models), str(audio), *flags],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=models,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def test_the_transcriber_makes_cublas_resolve_without_torch(tmp_path: Path) -> None:
    if cuda_libraries.wheel_library("cublas", "libcublas.so.12") is None:
        pytest.skip("the nvidia-cublas-cu12 wheel is not installed here")
    models = stage_tiny_whisper(tmp_path / "models")
    audio = speech(tmp_path / "speech.wav", "One two three four.")

    control = probe(sys.executable, models, audio, "--no-transcription")
    assert control == {"torch_before": False, "torch": False, "cublas": False, "words": 0}, control

    found = probe(sys.executable, models, audio)
    assert found["torch_before"] is False and found["torch"] is False, found
    assert found["cublas"] is True and int(found["words"]) >= 3, found  # type: ignore[call-overload]


def test_the_library_comes_from_the_wheel_and_is_loaded_once() -> None:
    path = cuda_libraries.wheel_library("cublas", "libcublas.so.12")
    if path is None:
        pytest.skip("the nvidia-cublas-cu12 wheel is not installed here")
    assert path.parent.parent.parent in cuda_libraries.wheel_roots()
    assert cuda_libraries.preload() == {"libcublas.so.12": path}
    assert cuda_libraries.preload() == {"libcublas.so.12": path}
    assert cuda_libraries.preload((("no-such-wheel", "libnothing.so.1"),)) == {"libcublas.so.12": path}
