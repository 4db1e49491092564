"""`make gpu-check` (scripts/gpu_check.py): without a GPU it says so and exits 0; on the CPU, when
asked, it runs the same transcription it runs on a GPU and reports it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

from .cluster_models import HEARD

pytestmark = pytest.mark.cluster_models


def gpu_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_check.py"), *args],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "HF_HUB_OFFLINE": "1", "CT2_VERBOSE": "-1"},
        cwd=ROOT,
    )


def test_without_a_gpu_it_skips_with_a_clear_message() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: make gpu-check runs the check instead")
    done = gpu_check()
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "make gpu-check: skipped: no GPU here (torch.cuda.is_available() is False); run it on a GPU node\n"
    )


def test_on_the_cpu_it_transcribes_and_reports() -> None:
    done = gpu_check("--device", "cpu")
    assert done.returncode == 0, done.stderr
    report = dict(line.split("  ", 1) for line in done.stdout.splitlines())
    report = {key.strip(): value.strip() for key, value in report.items()}
    assert report["device"] == "cpu"
    assert float(report["transcription seconds (tiny.en, with its load)"]) > 0
    assert all(word in report["text"].lower() for word in HEARD), report["text"]
