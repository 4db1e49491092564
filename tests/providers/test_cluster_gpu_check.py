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
    # each kind ran in a fresh process: the transcription's never imported torch (issue 39)
    assert report["torch imported by the transcription"] == "False"
    assert "training step, s (tiny FLUX)" in report


def test_a_kind_runs_in_a_process_of_its_own_without_torch() -> None:
    """`--kind transcription` is the process the check starts: it refuses to be run where torch
    was imported first, which would hide a CUDA library only torch loads."""
    code = "import runpy, sys, torch; "
    code += "sys.argv = ['gpu_check.py', '--kind', 'transcription', '--device', 'cpu']; "
    code += f"runpy.run_path({str(ROOT / 'scripts' / 'gpu_check.py')!r}, run_name='__main__')"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "HF_HUB_OFFLINE": "1"},
        cwd=ROOT,
    )
    assert done.returncode == 1 and "torch was imported before the transcription" in done.stderr, done.stderr
