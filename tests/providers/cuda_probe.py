"""Run in a fresh process by the CUDA-library tests:

    python cuda_probe.py MODELS AUDIO [--no-transcription]

It transcribes AUDIO with tiny.en staged under MODELS through the worker's own transcriber
(`transcriber("cluster")`, the device left to the setting: CTranslate2's auto), then says as JSON
whether torch was imported and whether `libcublas.so.12` now resolves by name, as CTranslate2
opens it at its first GPU call. With --no-transcription it only imports what the worker's
Transcription stage imports (the control: the name should not resolve then). It imports nothing
from the tests, so any environment with contentgen installed can run it (the GPU image's set)."""

from __future__ import annotations

import ctypes
import json
import os
import sys
import tempfile
from pathlib import Path


def resolves(name: str) -> bool:
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def main(argv: list[str]) -> int:
    models, audio = Path(argv[0]), Path(argv[1])
    torch_before = "torch" in sys.modules
    os.environ["CONTENTGEN_CLUSTER_MODELS_DIR"] = str(models)
    from contentgen.pipeline import transcription  # noqa: F401  (the stage's imports)
    from contentgen.providers import transcriber
    from contentgen.providers.base import MemoryCheckpoint, TranscriptionRequest

    words = 0
    if "--no-transcription" not in argv:
        built = transcriber("cluster")
        with tempfile.TemporaryDirectory() as work:
            output = built.transcribe(
                TranscriptionRequest(audio_path=audio, speech_models=("tiny.en",)),
                Path(work),
                lambda percent: None,
                MemoryCheckpoint(),
            )
        words = output.word_count
    report = {
        "torch_before": torch_before,
        "torch": "torch" in sys.modules,
        "cublas": resolves("libcublas.so.12"),
        "words": words,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
