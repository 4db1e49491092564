"""Transcription on the cluster's GPUs with faster-whisper (Whisper on CTranslate2).

The model is a CTranslate2 Whisper directory staged under the models' root (`staging.locate`):
model.bin, config.json, tokenizer.json and a vocabulary; faster-whisper reads a directory as it
is and downloads nothing (without tokenizer.json it would fetch one from the hub, so that file is
required). Words come with their times (`word_timestamps`); the language is the spec's, or
detected by a multilingual model (an English-only one, `*.en`, takes English only).

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
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from contentgen.api.transcription import DEFAULT_WHISPER_MODEL
from contentgen.errors import InvalidInput, ModelNotFound
from contentgen.files import sha256_file

from ..base import Checkpoint, TranscriptionOutput, TranscriptionRequest
from ..progress import Monotonic, SubProgress
from .gpus import GpuClock

REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
VOCABULARIES = ("vocabulary.txt", "vocabulary.json")
BEAM_SIZE = 5


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


class WhisperTranscriber:
    """`Transcriber` on faster-whisper. `locate(name, required)` finds a staged model's directory
    (ModelNotFound otherwise); `device` is CTranslate2's (auto: a GPU when there is one)."""

    name = "cluster"

    def __init__(
        self,
        locate: Callable[[str, tuple[str, ...]], Path],
        *,
        gpus: int = 1,
        device: str = "auto",
        compute_type: str = "default",
        cpu_threads: int = 0,
    ) -> None:
        self._locate = locate
        self.gpus = gpus  # the pod's GPUs: each second held costs this many GPU-seconds
        self._device, self._compute_type, self._cpu_threads = device, compute_type, cpu_threads

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
        if not any((path / name).is_file() for name in VOCABULARIES):
            raise ModelNotFound(
                f"model {model!r} at {path} is incomplete: vocabulary.txt or vocabulary.json missing "
                "(stage the whole model directory, see docs/cluster-gpus.md)"
            )
        clock = GpuClock(self.gpus)
        from faster_whisper import WhisperModel

        whisper = WhisperModel(
            str(path), device=self._device, compute_type=self._compute_type, cpu_threads=self._cpu_threads
        )
        if language not in (None, "en") and not whisper.model.is_multilingual:
            raise InvalidInput(
                f"spec.languageCode: {request.language_code!r} needs a multilingual model, and {model!r} "
                "is English-only: set spec.whisperModel to a multilingual model, or languageCode to en"
            )
        segments, info = whisper.transcribe(
            str(request.audio_path), language=language, word_timestamps=True, beam_size=BEAM_SIZE
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
