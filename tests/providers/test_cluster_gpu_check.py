"""`make gpu-check` (scripts/gpu_check.py): without a GPU it says so and exits 0; on the CPU, when
asked, it runs the same steps it runs on a GPU, each kind in a process of its own (the
transcription on the tiny.en Whisper, training and generation on the tiny FLUX, the video step on
the tiny Wan), and reports them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from contentgen.providers.cluster import memory
from contentgen.providers.cluster.generation.video import VideoJob, plan_memory
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
    assert float(report["training step, s (tiny FLUX)"]) > 0
    assert float(report["generation, s (tiny FLUX)"]) > 0
    # the video step (issue 39): a 17-frame 64x64 clip on the tiny Wan, its time with the load,
    # the GPU-seconds it bills (the seconds it held the device, x 1 GPU: within that time), and the
    # memory plan the CPU takes; no GPU memory is sampled on the CPU
    seconds = float(report["video, s (tiny Wan, 17 frames 64x64, 4 steps, with its load)"])
    assert report["video made (frames, size, rate, codec)"] == "17, 64x64, 16 fps, h264"
    assert 0 < float(report["video GPU-seconds billed"]) <= seconds
    on_the_cpu = plan_memory(memory.Card(free=0, total=0), {}, VideoJob("wan", 64, 64, 17, 0))
    assert report["video memory plan"] == on_the_cpu.describe()
    assert not on_the_cpu.offload and not on_the_cpu.vae_tiling
    assert not [key for key in report if "GPU memory" in key]


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


def test_the_full_size_check_without_a_gpu_says_so_and_exits_0() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the full-size check measures instead")
    done = gpu_check("--full")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "make gpu-check FULL=1: skipped: no GPU here (torch.cuda.is_available() is False); run it on a GPU "
        "node, or see the plans with --dry-run\n"
    )


def test_the_full_size_dry_run_lists_the_plans_it_would_measure_and_refuses_the_rest() -> None:
    """On a 22 GiB card before Ada (an A10G): bf16 training and a resident or offloaded bf16
    picture cannot fit (the planner's line, with the numbers), int8 and nf4 would run; nothing
    is measured."""
    done = gpu_check("--full", "--dry-run", "--card-gib", "22", "--capability", "8.6")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "- device: a 22 GiB card (capability 8.6) (dry run: nothing measured)" in lines
    assert any(line.startswith("- load average (1, 5, 15 min): ") for line in lines)
    assert "- command: `python scripts/gpu_check.py --full --dry-run --card-gib 22 --capability 8.6`" in lines
    table = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines if line.startswith("| ")]
    rows = {(cells[0], cells[1]): cells for cells in table if "`" in cells[1]}
    for resolution in (512, 1024):
        refused = rows[(f"training step, {resolution} px", "`bf16`")][-1]
        assert refused.startswith(f"not run: training at {resolution} px with memory plan bf16 needs about")
        assert "22.0 GiB free" in refused
        for base in ("int8", "nf4"):
            assert rows[(f"training step, {resolution} px", f"`{base}`")][-1].startswith("would run: ")
    picture = "picture, 1024×1024, 28 steps"
    assert rows[(picture, "`offload`")][-1].startswith(
        "not run: a 1024×1024 picture with memory plan offload"
    )
    assert rows[(picture, "`int8`")][-1].startswith("would run: int8 (torchao int8 weight-only), components")
    assert not [key for key in rows if key[1] == "`fp8`"]  # no fp8 before Ada
    assert all(cells[4] == "—" for cells in rows.values())  # no seconds: nothing was measured
    # beside each estimate, what the planner holds the card to: 7 % more and 1 GiB for CUDA
    assert all(cells[3] == f"{float(cells[2]) * 1.07 + 1:.1f}" for cells in rows.values() if cells[2] != "—")


def test_the_full_size_estimates_come_from_the_measured_rows() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    import gpu_full

    rows = [
        gpu_full.Row("training step, 512 px", "bf16", seconds=0.9),
        gpu_full.Row("training step, 1024 px", "bf16", note="not run: ..."),
        gpu_full.Row("training step, 1024 px", "fp8", seconds=2.345),
        gpu_full.Row("picture, 1024×1024, 28 steps", "bf16", seconds=11.26),
    ]
    assert gpu_full.estimates(rows, 50.0) == {
        "cluster": {"trainingStepSeconds": 2.35, "imageSeconds": 11.3, "audioHourSeconds": 72.0}
    }
    table = gpu_full.table(rows, {"device": "NVIDIA H100"})
    assert "| training step, 1024 px | `fp8` | — | — | 2.345 | — | — |  |" in table
