"""AssemblyAI: transcription with the assemblyai SDK.

API (https://www.assemblyai.com/docs/api-reference): POST /v2/upload takes the raw bytes and
answers {upload_url}; POST /v2/transcript {audio_url, speaker_labels, language_code |
language_detection} answers the transcript resource; GET /v2/transcript/{id} is that resource,
its status queued, processing, completed or error (then `error` says why). A completed one has
text, words, utterances (with speaker labels), audio_duration in seconds and language_code.
GET /v2/transcript lists the account's transcripts of the last 90 days, newest first, every
status, with id, created and audio_url (https://www.assemblyai.com/docs/api-reference/transcripts/list).

Billing (https://assemblyai.com/docs/billing-and-pricing): a transcript is billed by its audio's
duration once it completes; one that errors is not billed, nor is an upload. So:

- An upload whose answer is lost is uploaded again (a second copy costs nothing).
- Creating a transcript is the billed call. Its intent {at, audio digest} is checkpointed before
  it leaves; if the answer is lost, the list of transcripts says whether it was created: found ->
  adopted; found twice -> ProviderOutcomeUnknown. The list promises no read-after-write
  consistency, so "not there" is believed only after watching it for `resolve_window` seconds;
  then the create either ends in ProviderOutcomeUnknown or, when `resubmit_unresolved`, is sent
  again (which pays twice if the list was merely late). AssemblyAI offers no idempotency key; the
  audio URL is what identifies our transcript (an upload URL is unique, a presigned URL is signed
  anew by every attempt). `created` carries no time zone in the documentation's examples, so a
  time without one is taken as any zone's (±14 h) when bounding the search.
- `speech_models` is always sent (https://www.assemblyai.com/docs/pre-recorded-audio/select-the-speech-model:
  pages disagree on whether it is required and on its default), and the transcript's
  `speech_model_used` says which model ran, and is billed.
- The transcript id is checkpointed at once, so a retried pod polls what it paid for. A known id
  that AssemblyAI no longer knows (deleted, another account's key) is ProviderOutcomeUnknown: a
  completed transcript was paid for even if it is gone.
- A transcript that fails because AssemblyAI could not download the audio (an expired link) is
  not billed: the file is uploaded and submitted once more.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import assemblyai as aai
import httpx
import pydantic
from assemblyai.prerecorded.v2 import api as transcript_api

from contentgen.api.transcription import DEFAULT_SPEECH_MODELS
from contentgen.errors import ContentgenError, PermanentError, TransientError
from contentgen.files import sha256_file

from .base import Checkpoint, TranscriptionOutput, TranscriptionRequest
from .billing import accepted, submit_once
from .progress import Monotonic, SubProgress
from .retry import (
    Ambiguous,
    Retry,
    bad_response,
    describe_body,
    error_for_status,
    error_for_transport,
    redact,
    retry_after,
)

log = logging.getLogger(__name__)

KEY_ENV = "ASSEMBLYAI_API_KEY"
SKEW = timedelta(minutes=10)  # how far AssemblyAI's `created` may be before our clock
ZONES = timedelta(hours=14)  # how far a time without a zone may be from UTC
MAX_PAGES = 20  # of 200 transcripts, when looking for a lost one
MAX_SUBMITS = 3


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
        clock: Callable[[], datetime] | None = None,
        resolve_window: float = 120.0,
        resubmit_unresolved: bool = False,
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
        self._clock = clock or (lambda: datetime.now(UTC))
        self._resolve_window = resolve_window
        self._resubmit_unresolved = resubmit_unresolved

    def transcribe(
        self, request: TranscriptionRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> TranscriptionOutput:
        """Uploads the file unless there is an `audio_url`, transcribes it and waits for the result.

        Speaker labels when asked for; the language is `language_code`, or detected when unset.
        """
        meter = Monotonic(progress)
        # the local file, not audio_url: a presigned URL is signed anew by every attempt
        models = list(request.speech_models or DEFAULT_SPEECH_MODELS)
        fingerprint = _digest(
            sha256_file(request.audio_path), request.language_code, request.speaker_labels, models
        )
        saved = checkpoint.load()
        if saved.get("fingerprint") != fingerprint:
            saved = {"provider": self.name, "fingerprint": fingerprint}
        where = getattr(checkpoint, "location", "") or "the run's checkpoint"

        submits = 0
        while True:
            transcript_id = saved.get("transcript_id")
            if not transcript_id and saved.get("sent"):
                self._resolve(saved, checkpoint, where)
                continue
            if not transcript_id:
                submits += 1
                if submits > MAX_SUBMITS:
                    raise TransientError(
                        f"AssemblyAI did not take the transcript after {MAX_SUBMITS} submits",
                        reason="ProviderUnavailable",
                    )
                self._submit(request, models, saved, checkpoint, meter)
                continue
            raw = self._wait(str(transcript_id), meter, where)
            if raw.get("status") == "completed":
                break
            # failed, so not billed: forget it; an audio link AssemblyAI could not fetch is healed once
            saved.pop("transcript_id", None)
            saved.setdefault("failed", []).append(transcript_id)
            reason = redact(str(raw.get("error") or "no reason given"))
            if reason.lower().startswith("download error") and not saved.get("upload_only"):
                saved["upload_only"] = True
                saved.pop("upload_url", None)
                checkpoint.save(saved)
                log.warning("AssemblyAI could not fetch the audio of %s; uploading the file", transcript_id)
                continue
            checkpoint.save(saved)
            raise PermanentError(
                f"AssemblyAI could not transcribe the audio (transcript {transcript_id}): {reason}",
                reason="TranscriptionFailed",
            )

        meter(100)
        if raw.get("text") is None and raw.get("words") is None:
            what = f"transcript {transcript_id}"
            raise bad_response("AssemblyAI", what, "a completed transcript without text")
        return _output(raw, request)

    # --- creating the transcript --------------------------------------------------------------

    def _submit(
        self,
        request: TranscriptionRequest,
        models: list[str],
        saved: dict[str, Any],
        checkpoint: Checkpoint,
        meter: Monotonic,
    ) -> None:
        # a file:// link (a local store) is for the offline provider only: upload the file instead
        given = request.audio_url if _fetchable(request.audio_url) and not saved.get("upload_only") else None
        audio_url = given or saved.get("upload_url")
        if not audio_url:
            audio_url = self._call(
                lambda: self._transcriber.upload_file(request.audio_path), "uploading the audio to AssemblyAI"
            )
            if not isinstance(audio_url, str) or not audio_url:
                raise bad_response("AssemblyAI", "the upload", "no upload_url")
            # the upload URL is readable only by AssemblyAI, with this account's key
            saved["upload_url"] = audio_url
            checkpoint.save(saved)
        meter(10)
        config = aai.TranscriptionConfig(
            speaker_labels=request.speaker_labels,
            language_code=request.language_code or None,
            language_detection=None if request.language_code else True,
            speech_models=models,
        )
        transcript = submit_once(
            self._retry,
            lambda: self._transcriber.submit(audio_url, config=config),
            classify=self._classify_submit,
            what="submitting the audio to AssemblyAI",
            saved=saved,
            checkpoint=checkpoint,
            intent={"audio": _digest(audio_url)},
            at=self._clock(),
            secrets=(self._key,),
        )
        if transcript is not None:
            transcript_id = getattr(transcript, "id", None)
            if accepted(
                saved, checkpoint, "transcript_id", transcript_id, "AssemblyAI named no transcript id"
            ):
                log.info("submitted AssemblyAI transcript %s", transcript_id)

    def _classify_submit(self, exc: Exception) -> ContentgenError | None:
        if isinstance(exc, aai.types.AssemblyAIError) and exc.status_code is not None:
            return self._status_error(exc, billed=True)
        if isinstance(exc, ValueError | KeyError | TypeError):  # a 2xx the SDK could not read
            last = self._client.last_response
            return Ambiguous(f"AssemblyAI answered the submit with {describe_body(last)}")
        return error_for_transport(exc, provider="AssemblyAI", billed=True)

    def _resolve(self, saved: dict[str, Any], checkpoint: Checkpoint, where: str) -> None:
        """Whether the transcript whose answer was lost exists: adopted if the list shows it within
        the window; else ProviderOutcomeUnknown, or forgotten (to be created again) when
        `resubmit_unresolved`."""
        sent = saved["sent"]
        since = datetime.fromisoformat(sent["at"]) - SKEW
        known = set(saved.get("failed") or [])
        why = sent.get("why", "its answer was lost")
        interval = max(self._poll_interval, 5.0)
        waited = 0.0
        while True:
            found = [
                item
                for item in self._recent(since)
                if _digest(item.audio_url) == sent["audio"] and item.id not in known
            ]
            if len(found) > 1:
                ids = ", ".join(item.id for item in found)
                raise PermanentError(
                    f"AssemblyAI may have created a transcript of this audio at {sent['at']} ({why}), and "
                    f"it lists {len(found)} of them since ({ids}). Nothing was submitted again. Check them "
                    f"in AssemblyAI's dashboard; to submit anyway, delete {where} or change the spec",
                    reason="ProviderOutcomeUnknown",
                )
            if found:
                saved.pop("sent", None)
                saved["transcript_id"] = found[0].id
                checkpoint.save(saved)
                log.info("found the lost submit among AssemblyAI's transcripts: %s", found[0].id)
                return
            if waited >= self._resolve_window:
                break
            self._retry.sleep(interval)
            waited += interval
        if not self._resubmit_unresolved:
            raise PermanentError(
                f"AssemblyAI may have created a transcript of this audio at {sent['at']} ({why}), and its "
                f"transcript list has not shown it in {waited:.0f} s; AssemblyAI does not promise the list "
                "shows a new transcript at once, so nothing was submitted again. Check AssemblyAI's "
                f"dashboard; to submit anyway, delete {where} or change the spec (or set "
                "CONTENTGEN_ASSEMBLYAI_UNRESOLVED=resubmit)",
                reason="ProviderOutcomeUnknown",
            )
        log.warning(
            "AssemblyAI lists no transcript of this audio since %s after %.0f s: taking it as not created "
            "and submitting it again (CONTENTGEN_ASSEMBLYAI_UNRESOLVED=resubmit)",
            sent["at"],
            waited,
        )
        saved.pop("sent", None)
        checkpoint.save(saved)

    def _recent(self, since: datetime) -> list[Any]:
        """The account's transcripts created since `since`, newest first."""
        items: list[Any] = []
        before: str | None = None
        for _ in range(MAX_PAGES):
            params = aai.types.ListTranscriptParameters(limit=200, before_id=before)

            def list_page(params: Any = params) -> Any:
                return transcript_api.list_transcripts(self._client.http_client, params)

            page = self._call(list_page, "listing AssemblyAI's transcripts")
            items.extend(page.transcripts)
            oldest = page.transcripts[-1] if page.transcripts else None
            if oldest is None or _latest(oldest.created) < since or not page.page_details.prev_url:
                break
            before = oldest.id
        return [item for item in items if _latest(item.created) >= since]

    # --- waiting ------------------------------------------------------------------------------

    def _wait(self, transcript_id: str, meter: Monotonic, where: str) -> dict[str, Any]:
        """The transcript once completed or failed (as AssemblyAI sent it)."""
        waited = 0.0
        polls = 0
        while True:
            try:
                raw = self._get(transcript_id)
            except aai.types.TranscriptError:  # 400/404: AssemblyAI does not know this id
                raise PermanentError(
                    f"AssemblyAI no longer knows transcript {transcript_id}, which this run created "
                    "(deleted, or another account's key?). If it completed, it was paid for; nothing was "
                    f"submitted again. Check AssemblyAI's dashboard; to submit anyway, delete {where} or "
                    "change the spec",
                    reason="ProviderOutcomeUnknown",
                ) from None
            status = raw.get("status")
            if status in ("completed", "error"):
                return raw
            if status not in ("queued", "processing"):
                raise bad_response("AssemblyAI", f"transcript {transcript_id}", f"the status {status!r}")
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

    def _get(self, transcript_id: str) -> dict[str, Any]:
        """The transcript's JSON exactly as AssemblyAI sent it."""

        def get() -> dict[str, Any]:
            transcript_api.get_transcript(self._client.http_client, transcript_id)
            response = self._client.last_response  # the SDK parses; we keep what was sent
            body = response.json() if response is not None else None
            if not isinstance(body, dict):
                raise bad_response("AssemblyAI", f"transcript {transcript_id}", "something not an object")
            return body

        body: dict[str, Any] = self._call(get, f"transcript {transcript_id}", passthrough=(400, 404))
        return body

    def _call(self, fn: Callable[[], Any], what: str, passthrough: tuple[int, ...] = ()) -> Any:
        """`fn`, an idempotent call, under the retry policy; statuses in `passthrough` come out raw."""

        def classify(exc: Exception) -> ContentgenError | None:
            if isinstance(exc, aai.types.AssemblyAIError) and exc.status_code is not None:
                if exc.status_code in passthrough:
                    return None
                return self._status_error(exc)
            if isinstance(exc, ValueError | KeyError | TypeError | pydantic.ValidationError):
                return bad_response("AssemblyAI", what, describe_body(self._client.last_response))
            return error_for_transport(exc, provider="AssemblyAI")

        return self._retry.call(fn, classify=classify, what=what)

    def _status_error(self, exc: aai.types.AssemblyAIError, billed: bool = False) -> ContentgenError:
        # the SDK's errors keep no headers; its client keeps the last response, which is this one
        last = self._client.last_response
        same = last is not None and last.status_code == exc.status_code
        headers = last.headers if last is not None and same else httpx.Headers()
        return error_for_status(
            int(exc.status_code or 0),
            str(exc),
            provider="AssemblyAI",
            key_env=KEY_ENV,
            retry_after=retry_after(headers),
            secrets=(self._key,),
            billed=billed,
        )


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
        speech_model=str(raw.get("speech_model_used") or ""),
    )


def _fetchable(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("https://", "http://"))


def _latest(created: str) -> datetime:
    """The latest instant `created` may mean: itself with a zone; a time without one may be any
    zone's (the documentation shows none and says nothing of UTC)."""
    when = datetime.fromisoformat(created.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC) + ZONES


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()
