"""AssemblyAI: transcription with the assemblyai SDK.

API (https://www.assemblyai.com/docs/api-reference): POST /v2/upload takes the raw bytes and
answers {upload_url}; POST /v2/transcript {audio_url, speaker_labels, language_code |
language_detection} answers the transcript resource; GET /v2/transcript/{id} is that resource,
its status queued, processing, completed or error (then `error` says why). A completed one has
text, words, utterances (with speaker labels), audio_duration in seconds and language_code.

The transcript id is saved in the checkpoint right after the submit, so a retried pod polls the
transcript it already paid for instead of submitting again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import assemblyai as aai
import httpx
from assemblyai.prerecorded.v2 import api as transcript_api

from contentgen.errors import ContentgenError, PermanentError, TransientError
from contentgen.files import sha256_file
from contentgen.pipeline.progress import Monotonic, SubProgress

from .base import Checkpoint, TranscriptionOutput, TranscriptionRequest
from .retry import Retry, error_for_status, error_for_transport, redact, retry_after

log = logging.getLogger(__name__)

KEY_ENV = "ASSEMBLYAI_API_KEY"


class AssemblyAIProvider:
    """`Transcriber` on AssemblyAI."""

    name = "assemblyai"

    def __init__(
        self,
        key: str,
        *,
        retry: Retry | None = None,
        poll_interval: float = 3.0,
        max_wait: float = 6 * 3600.0,
        base_url: str | None = None,
    ) -> None:
        settings = aai.types.Settings(api_key=key)
        if base_url:
            settings.base_url = base_url
        self._key = key
        self._client = aai.Client(settings=settings)
        self._transcriber = aai.Transcriber(client=self._client, max_workers=1)
        self._retry = retry or Retry()
        self._poll_interval = poll_interval
        self._max_wait = max_wait

    def transcribe(
        self, request: TranscriptionRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> TranscriptionOutput:
        """Uploads the file unless there is an `audio_url`, transcribes it and waits for the result.

        Speaker labels when asked for; the language is `language_code`, or detected when unset.
        """
        meter = Monotonic(progress)
        # the local file, not audio_url: a presigned URL is signed anew by every attempt
        fingerprint = _fingerprint(
            sha256_file(request.audio_path), request.language_code, request.speaker_labels
        )
        saved = checkpoint.load()
        if saved.get("fingerprint") != fingerprint:
            saved = {"provider": self.name, "fingerprint": fingerprint}

        transcript_id = saved.get("transcript_id")
        raw = self._resume(transcript_id) if transcript_id else None
        if raw is None or transcript_id is None:
            transcript_id = self._submit(request, saved, checkpoint, meter)
        else:
            log.info("resuming AssemblyAI transcript %s", transcript_id)

        waited = 0.0
        polls = 0
        while True:
            if raw is None:
                raw = self._get(transcript_id)
            status = raw.get("status")
            if status == "completed":
                break
            if status == "error":
                saved.pop("transcript_id", None)
                checkpoint.save(saved)
                raise PermanentError(
                    f"AssemblyAI could not transcribe the audio (transcript {transcript_id}): "
                    f"{redact(str(raw.get('error') or 'no reason given'))}",
                    reason="TranscriptionFailed",
                )
            polls += 1
            # AssemblyAI reports no percentage: queued is 10-15, processing creeps from 15 to 95
            meter(15 - 5 * 0.5**polls if status == "queued" else 15 + 80 * (1 - 0.9**polls))
            if waited >= self._max_wait:
                raise TransientError(
                    f"AssemblyAI transcript {transcript_id} is still {status} after {waited:.0f} s; "
                    "the checkpoint keeps it, a new attempt resumes waiting",
                    reason="ProviderTimeout",
                )
            self._retry.sleep(self._poll_interval)
            waited += self._poll_interval
            raw = None

        meter(100)
        return _output(raw, request)

    def _submit(
        self, request: TranscriptionRequest, saved: dict[str, Any], checkpoint: Checkpoint, meter: Monotonic
    ) -> str:
        # a file:// link (a local store) is for the offline provider only: upload the file instead
        audio_url = request.audio_url if _fetchable(request.audio_url) else saved.get("upload_url")
        if not audio_url:
            audio_url = self._call(
                lambda: self._transcriber.upload_file(request.audio_path), "uploading the audio to AssemblyAI"
            )
            # the upload URL is readable only by AssemblyAI, with this account's key
            saved["upload_url"] = audio_url
            checkpoint.save(saved)
        meter(10)
        config = aai.TranscriptionConfig(
            speaker_labels=request.speaker_labels,
            language_code=request.language_code or None,
            language_detection=None if request.language_code else True,
        )
        transcript = self._call(
            lambda: self._transcriber.submit(audio_url, config=config), "submitting the audio to AssemblyAI"
        )
        transcript_id = transcript.id
        if not transcript_id:
            raise PermanentError(
                "AssemblyAI accepted the audio but returned no transcript id", reason="ProviderRejected"
            )
        saved["transcript_id"] = transcript_id
        checkpoint.save(saved)
        log.info("submitted AssemblyAI transcript %s", transcript_id)
        return str(transcript_id)

    def _get(self, transcript_id: str, passthrough: tuple[int, ...] = ()) -> dict[str, Any]:
        """The transcript's JSON exactly as AssemblyAI sent it."""

        def get() -> dict[str, Any]:
            transcript_api.get_transcript(self._client.http_client, transcript_id)
            response = self._client.last_response  # the SDK parses; we keep what was sent
            body = response.json() if response is not None else None
            if not isinstance(body, dict):
                raise PermanentError("AssemblyAI answered with something other than a transcript")
            return body

        body: dict[str, Any] = self._call(get, f"polling AssemblyAI transcript {transcript_id}", passthrough)
        return body

    def _resume(self, transcript_id: str) -> dict[str, Any] | None:
        """The checkpoint's transcript, None if AssemblyAI does not know it (400/404)."""
        try:
            return self._get(transcript_id, passthrough=(400, 404))
        except aai.types.TranscriptError:  # passed through by _call
            log.warning("AssemblyAI does not know transcript %s; submitting anew", transcript_id)
            return None

    def _call(self, fn: Callable[[], Any], what: str, passthrough: tuple[int, ...] = ()) -> Any:
        def classify(exc: Exception) -> ContentgenError | None:
            if isinstance(exc, aai.types.AssemblyAIError) and exc.status_code in passthrough:
                return None
            return self._classify(exc)

        return self._retry.call(fn, classify=classify, what=what)

    def _classify(self, exc: Exception) -> ContentgenError | None:
        if isinstance(exc, aai.types.AssemblyAIError) and exc.status_code is not None:
            # the SDK's errors keep no headers; its client keeps the last response, which is this one
            last = self._client.last_response
            headers = (
                last.headers if last is not None and last.status_code == exc.status_code else httpx.Headers()
            )
            return error_for_status(
                exc.status_code,
                str(exc),
                provider="AssemblyAI",
                key_env=KEY_ENV,
                retry_after=retry_after(headers),
                secrets=(self._key,),
            )
        return error_for_transport(exc, provider="AssemblyAI")


def _output(raw: dict[str, Any], request: TranscriptionRequest) -> TranscriptionOutput:
    words = raw.get("words") or []
    utterances = raw.get("utterances") or []
    text = str(raw.get("text") or "")
    speakers = 0
    if request.speaker_labels:
        speakers = len({u.get("speaker") for u in utterances if u.get("speaker") is not None})
        if utterances:
            text = "\n".join(
                f"Speaker {u.get('speaker')}: {str(u.get('text', '')).strip()}" for u in utterances
            )
    duration = raw.get("audio_duration")
    return TranscriptionOutput(
        response=raw,
        text=text,
        word_count=len(words) if words else len(str(raw.get("text") or "").split()),
        duration_seconds=float(duration) if duration is not None else float(request.duration_seconds or 0.0),
        speakers=speakers,
        language_code=str(raw.get("language_code") or request.language_code or ""),
        request_id=str(raw.get("id", "")),
    )


def _fetchable(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("https://", "http://"))


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()
