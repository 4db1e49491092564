"""Transcription on the cluster's GPUs with faster-whisper (Whisper on CTranslate2).

The model is a CTranslate2 Whisper directory staged under the models' root (`staging.locate`):
model.bin, config.json, tokenizer.json and a vocabulary; faster-whisper reads a directory as it
is and downloads nothing (without tokenizer.json it would fetch one from the hub, so that file is
required). The sizes whose encoder takes 128 mel bins (large-v3, large-v3-turbo, distil-large-v3)
need preprocessor_config.json too: without it faster-whisper computes 80 and the encoder fails
after the model is on the GPU. `check_model` reads the mel bins from model.bin's header (the
weights' own shape, whatever the directory is called) and refuses, before any load, a directory
that lacks a file its size needs. Words come with their times (`word_timestamps`); the language
is the spec's, or detected by a multilingual model (an English-only one, `*.en`, takes English
only).

The audio is cut at its pauses by the voice-activity filter that faster-whisper ships (Silero's,
an ONNX file in its package: nothing is fetched) and the pieces are decoded in batches
(`BatchedInferencePipeline`, CONTENTGEN_CLUSTER_WHISPER_BATCH_SIZE of them at a time): silence is
not decoded, and a GPU decodes several pieces at once.

The response is shaped as AssemblyAI's (`text`, `words` with `start`/`end` in milliseconds,
`audio_duration` in seconds, `language_code`), so transcript.json, the text and the SRT/VTT
exports (`contentgen.transcripts`) are the same for both. Speaker labels need a diarisation
model, which no package carries: provider cluster refuses `speakerLabels` (the API's rule).

The finished response is checkpointed with the inputs that made it (audio digest, model,
language) and the GPU-seconds it took, so a retried pod, or a later version of the same inputs,
stores it without transcribing again.
"""

from __future__ import annotations

import hashlib
import json
import struct
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from contentgen.api.transcription import DEFAULT_WHISPER_MODEL
from contentgen.errors import InvalidInput, ModelNotFound
from contentgen.files import sha256_file

from ...base import Checkpoint, TranscriptionOutput, TranscriptionRequest
from ...progress import Monotonic, SubProgress
from .. import devices
from ..gpus import GpuClock
from . import cuda_libraries

REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
VOCABULARIES = ("vocabulary.txt", "vocabulary.json")
PREPROCESSOR = "preprocessor_config.json"
# What a size needs besides REQUIRED_FILES and a vocabulary, by its encoder's mel bins: 80 (tiny
# to large-v2, and their .en and distil- versions: faster-whisper's default), 128 (large-v3,
# large-v3-turbo, distil-large-v3: read from preprocessor_config.json's feature_size).
MEL_BINS_FILES: dict[int, tuple[str, ...]] = {80: (), 128: (PREPROCESSOR,)}
DEFAULT_MEL_BINS = 80  # faster-whisper's feature extractor without preprocessor_config.json
BEAM_SIZE = 5
DEFAULT_BATCH_SIZE = 8  # faster-whisper's own default for its batched pipeline


class TimedWord(Protocol):
    word: str
    start: float
    end: float
    probability: float


class TimedSegment(Protocol):
    text: str
    end: float
    words: list[Any] | None


def whisper_language(language_code: str | None) -> str | None:
    """Whisper's code for the spec's language: `en_us` → `en`; None lets the model detect it."""
    return language_code.split("_", 1)[0] if language_code else None


def response_of(
    segments: Iterable[TimedSegment],
    *,
    duration: float,
    language: str,
    language_probability: float,
    model: str,
    request_id: str,
    progress: SubProgress | None = None,
) -> dict[str, Any]:
    """An AssemblyAI-shaped response from faster-whisper's segments (consumed as they are
    decoded: progress follows the audio's time)."""
    words: list[dict[str, Any]] = []
    texts: list[str] = []
    for segment in segments:
        texts.append(segment.text.strip())
        for word in segment.words or []:
            text = str(word.word).strip()
            if text:
                words.append(
                    {
                        "text": text,
                        "start": round(float(word.start) * 1000),
                        "end": round(max(float(word.end), float(word.start)) * 1000),
                        "confidence": round(float(word.probability), 4),
                        "speaker": None,
                    }
                )
        if progress is not None and duration > 0:
            progress(100.0 * min(float(segment.end) / duration, 0.99))
    return {
        "id": request_id,
        "status": "completed",
        "text": " ".join(t for t in texts if t),
        "words": words,
        "utterances": None,
        "audio_duration": round(duration, 3),
        "language_code": language,
        "language_confidence": round(float(language_probability), 4),
        "speaker_labels": False,
        "speech_model_used": model,
        "error": None,
    }


def output_of(
    response: dict[str, Any], gpu_seconds: float, request: TranscriptionRequest
) -> TranscriptionOutput:
    duration = response.get("audio_duration")
    return TranscriptionOutput(
        response=response,
        text=str(response.get("text") or ""),
        word_count=len(response.get("words") or []),
        duration_seconds=float(duration) if duration is not None else float(request.duration_seconds or 0.0),
        speakers=0,
        language_code=str(response.get("language_code") or ""),
        request_id=str(response.get("id") or ""),
        speech_model=str(response.get("speech_model_used") or ""),
        gpu_seconds=gpu_seconds,
    )


def mel_bins(model_bin: Path) -> int | None:
    """The mel bins a CTranslate2 Whisper's encoder takes: the second dimension of its
    `encoder/conv1/weight` (d_model × mel bins × 3), read from model.bin's header, the weights
    skipped (CTranslate2's `ModelSpec._serialize` format). None when the file holds no such
    variable (not a CTranslate2 Whisper) or is cut short."""

    def read(layout: str, handle: Any) -> Any:
        size = struct.calcsize(layout)
        data = handle.read(size)
        if len(data) < size:
            raise EOFError
        return struct.unpack(layout, data)[0]

    def string(handle: Any) -> str:
        length = read("<H", handle)  # the bytes, with the trailing NUL
        return bytes(handle.read(length)[:-1]).decode("utf-8", "replace")

    try:
        with model_bin.open("rb") as handle:
            if read("<I", handle) < 5:  # binary version: Whisper came with version 6 (CTranslate2 3)
                return None
            string(handle)  # the spec's name
            read("<I", handle)  # its revision
            for _ in range(read("<I", handle)):
                name = string(handle)
                dims = [read("<I", handle) for _ in range(read("<B", handle))]
                read("<B", handle)  # the dtype
                size = read("<I", handle)
                if name == "encoder/conv1/weight":
                    return int(dims[1]) if len(dims) == 3 else None
                handle.seek(size, 1)
    except (OSError, EOFError):
        return None
    return None


def check_model(model: str, path: Path) -> int:
    """The staged directory of Whisper `model` holds every file its size needs (besides
    REQUIRED_FILES, which `locate` checked): a vocabulary, and for 128 mel bins
    preprocessor_config.json saying so. ModelNotFound in one line naming what is missing or
    wrong, before any load; the mel bins otherwise."""
    if not any((path / name).is_file() for name in VOCABULARIES):
        raise ModelNotFound(
            f"model {model!r} at {path} is incomplete: vocabulary.txt or vocabulary.json missing "
            "(stage the whole model directory, see docs/cluster-gpus.md)"
        )
    bins = mel_bins(path / "model.bin")
    if bins is None:
        raise ModelNotFound(
            f"model {model!r} at {path}: model.bin is not a CTranslate2 Whisper model (no "
            "encoder/conv1/weight in its header): stage a Whisper converted with CTranslate2, see "
            "docs/cluster-gpus.md"
        )
    missing = [name for name in MEL_BINS_FILES.get(bins, ()) if not (path / name).is_file()]
    if missing:
        raise ModelNotFound(
            f"model {model!r} at {path} is incomplete: {', '.join(missing)} missing (its encoder takes "
            f"{bins} mel bins, which faster-whisper reads from {PREPROCESSOR}; stage the whole model "
            "directory, see docs/cluster-gpus.md)"
        )
    preprocessor = path / PREPROCESSOR
    if preprocessor.is_file():
        try:
            said = json.loads(preprocessor.read_text()).get("feature_size", DEFAULT_MEL_BINS)
        except (ValueError, AttributeError):
            said = None
        if said != bins:
            raise ModelNotFound(
                f"model {model!r} at {path}: {PREPROCESSOR} says feature_size {said!r}, and its encoder "
                f"takes {bins} mel bins (a file of another model): stage the model's own, see "
                "docs/cluster-gpus.md"
            )
    return bins


class WhisperTranscriber:
    """`Transcriber` on faster-whisper. `locate(name, required)` finds a staged model's directory
    (ModelNotFound otherwise); `device` is CONTENTGEN_CLUSTER_DEVICE's value (cpu, cuda, cuda:N;
    '' or 'auto': a GPU when there is one), `batch_size` the pieces decoded at once."""

    name = "cluster"

    def __init__(
        self,
        locate: Callable[[str, tuple[str, ...]], Path],
        *,
        gpus: int = 1,
        device: str = "",
        compute_type: str = "default",
        cpu_threads: int = 0,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self._locate = locate
        self.gpus = gpus  # the pod's GPUs: each second held costs this many GPU-seconds
        self.device, self.batch_size = device, batch_size
        self._compute_type, self._cpu_threads = compute_type, cpu_threads

    def transcribe(
        self, request: TranscriptionRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> TranscriptionOutput:
        if request.speaker_labels:
            raise InvalidInput(
                "spec.speakerLabels: provider cluster has no diarisation model: set speakerLabels to "
                "false, or use provider assemblyai"
            )
        progress = Monotonic(progress)
        progress(0)
        model = request.speech_models[0] if request.speech_models else DEFAULT_WHISPER_MODEL
        language = whisper_language(request.language_code)
        inputs = _digest(sha256_file(request.audio_path), model, language)
        saved = checkpoint.load().get("cluster") or {}
        if saved.get("inputs") == inputs and isinstance(saved.get("response"), dict):
            progress(100)
            return output_of(saved["response"], float(saved.get("gpuSeconds") or 0.0), request)

        path = self._locate(model, REQUIRED_FILES)  # ModelNotFound before any GPU time
        check_model(model, path)
        devices.check_ctranslate2(self.device)  # DeviceUnavailable before any load
        device, index = devices.ctranslate2_device(self.device)
        if device != "cpu":  # CTranslate2 opens libcublas.so.12 by name: from the wheel, torch or not
            cuda_libraries.preload()
        clock = GpuClock(self.gpus)
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        whisper = WhisperModel(
            str(path),
            device=device,
            device_index=index,
            compute_type=self._compute_type,
            cpu_threads=self._cpu_threads,
        )
        if language not in (None, "en") and not whisper.model.is_multilingual:
            raise InvalidInput(
                f"spec.languageCode: {request.language_code!r} needs a multilingual model, and {model!r} "
                "is English-only: set spec.whisperModel to a multilingual model, or languageCode to en"
            )
        segments, info = BatchedInferencePipeline(whisper).transcribe(
            str(request.audio_path),
            language=language,
            word_timestamps=True,
            beam_size=BEAM_SIZE,
            vad_filter=True,
            batch_size=self.batch_size,
        )
        response = response_of(
            segments,
            duration=float(info.duration),
            language=str(info.language),
            language_probability=float(info.language_probability),
            model=model,
            request_id=f"cluster-{uuid.uuid4().hex[:16]}",
            progress=progress,
        )
        gpu_seconds = clock.gpu_seconds()
        # beside what other providers keep there: a resource may move between providers
        data = checkpoint.load()
        data["cluster"] = {"inputs": inputs, "response": response, "gpuSeconds": gpu_seconds}
        checkpoint.save(data)
        progress(100)
        return output_of(response, gpu_seconds, request)


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()
