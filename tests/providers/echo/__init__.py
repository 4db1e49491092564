"""Echo: a transcription provider that exists only in the tests, declared in this one package
(its entry, what every layer knows of it, its prices among it, and its transcriber, what the
pipeline builds), to prove that adding a provider needs no product file. Its "transcript" names the
audio's digest and the key it was given; it bills by the audio-hour, at its row's price.

`register` adds it by one call (contentgen.providers.add: its entry into api/providers.py's
PROVIDERS, its transcriber into providers/'s REGISTRY), as a product provider is declared there."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from contentgen import providers
from contentgen.api.providers import Provider
from contentgen.providers import Env, Registered, api_key
from contentgen.providers.base import (
    Checkpoint,
    SubProgress,
    Transcriber,
    TranscriptionOutput,
    TranscriptionRequest,
)

ENTRY = Provider(
    "echo",
    key="ECHO_API_KEY",
    makes=("transcripts",),
    note="the tests' own provider",
    prices={"echo-1": {"audio-hour": 7.2}},  # $0.002 a second
)


class EchoTranscriber(Transcriber):
    name = ENTRY.name

    def __init__(self, key: str) -> None:
        self.key = key

    def transcribe(
        self, request: TranscriptionRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> TranscriptionOutput:
        progress(0)
        digest = hashlib.sha256(request.audio_path.read_bytes()).hexdigest()[:12]
        text = f"echo of {digest} for key {self.key[:4]}"
        seconds = float(request.duration_seconds or 0.0)
        response = {"id": f"echo-{digest}", "text": text, "audio_duration": seconds}
        progress(100)
        return TranscriptionOutput(
            response=response,
            text=text,
            word_count=len(text.split()),
            duration_seconds=seconds,
            speakers=0,
            language_code=request.language_code or "",
            request_id=response["id"],
            speech_model="echo-1",
        )


def _transcriber(env: Env) -> Transcriber:
    return EchoTranscriber(api_key(ENTRY, env))


REGISTERED = Registered(ENTRY, transcriber=_transcriber)


def register(monkeypatch: pytest.MonkeyPatch) -> None:
    """Echo among the providers, until the test ends."""
    providers.add(REGISTERED, monkeypatch.setitem)
