"""Contract tests of the AssemblyAI provider: the real assemblyai SDK against a local fake of its API."""

from __future__ import annotations

import logging

import httpx
import pytest

from contentgen.errors import MissingCredentials, PermanentError, TransientError
from contentgen.providers import transcriber
from contentgen.providers.assemblyai import AssemblyAIProvider
from contentgen.providers.base import MemoryCheckpoint, TranscriptionRequest

from .fake_assemblyai import ASSEMBLYAI_KEY, COMPLETED_TRANSCRIPT, FakeAssemblyAI
from .fakes import Crash, FakeSleep, Progress, audio_file, failure, mocked, retry

SIGNED_AUDIO = "https://bucket.s3.amazonaws.com/sources/talk.mp3?X-Amz-Signature=s3cr3tsig&X-Amz-Expires=3600"


@pytest.fixture
def aai() -> FakeAssemblyAI:
    return FakeAssemblyAI()


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def audio(tmp_path):
    return audio_file(tmp_path / "talk.wav")


def provider(sleep: FakeSleep, key: str = ASSEMBLYAI_KEY) -> AssemblyAIProvider:
    return AssemblyAIProvider(key, retry=retry(sleep), poll_interval=3.0)


def test_uploads_submits_with_speaker_labels_and_returns_speaker_turns(tmp_path, aai, sleep, audio):
    progress, checkpoint = Progress(), MemoryCheckpoint()
    request = TranscriptionRequest(
        audio_path=audio, language_code="en", speaker_labels=True, duration_seconds=2.9
    )
    with mocked(aai):
        out = provider(sleep).transcribe(request, tmp_path, progress, checkpoint)

    assert list(aai.uploads.values()) == [audio.read_bytes()]
    [submitted] = aai.submitted
    assert submitted["audio_url"] == next(iter(aai.uploads))
    assert submitted["speaker_labels"] is True and submitted["language_code"] == "en"
    assert "language_detection" not in submitted
    assert aai.unauthorized == 0  # every call carried the key

    assert out.text == "Speaker A: Hello there.\nSpeaker B: Hi, how are you?"
    assert (out.word_count, out.duration_seconds, out.speakers, out.language_code) == (6, 3.0, 2, "en")
    [transcript_id] = aai.transcripts
    assert out.request_id == transcript_id and not out.placeholder
    # the full response, exactly as AssemblyAI sent it
    assert out.response["status"] == "completed" and out.response["id"] == transcript_id
    assert out.response["utterances"] == COMPLETED_TRANSCRIPT["utterances"]
    assert out.response["words"] == COMPLETED_TRANSCRIPT["words"]

    assert progress.monotonic and progress[-1] == 100
    assert sleep.waits == [3.0] * 3  # queued, processing, processing
    assert checkpoint.load()["transcript_id"] == transcript_id
    assert (aai.accepted, aai.billed) == (1, 1)


def test_language_is_detected_when_unset_and_text_is_plain_without_speakers(tmp_path, aai, sleep, audio):
    with mocked(aai):
        out = provider(sleep).transcribe(
            TranscriptionRequest(audio_path=audio), tmp_path, Progress(), MemoryCheckpoint()
        )
    [submitted] = aai.submitted
    assert submitted["language_detection"] is True and "language_code" not in submitted
    assert not submitted.get("speaker_labels")  # the SDK leaves out the API default (false)
    assert out.text == "Hello there. Hi, how are you?"
    assert (out.speakers, out.word_count, out.language_code) == (0, 6, "en_us")


def test_an_audio_url_is_used_instead_of_an_upload(tmp_path, aai, sleep, audio, caplog):
    caplog.set_level(logging.DEBUG)
    with mocked(aai):
        provider(sleep).transcribe(
            TranscriptionRequest(audio_path=audio, audio_url=SIGNED_AUDIO),
            tmp_path,
            Progress(),
            MemoryCheckpoint(),
        )
    assert not aai.uploads
    assert aai.submitted[0]["audio_url"] == SIGNED_AUDIO  # sent whole to AssemblyAI...
    assert "s3cr3tsig" not in caplog.text  # ...and never logged


def test_a_file_link_is_not_handed_to_assemblyai(tmp_path, aai, sleep, audio):
    with mocked(aai):
        provider(sleep).transcribe(
            TranscriptionRequest(audio_path=audio, audio_url="file:///store/talk.wav"),
            tmp_path,
            Progress(),
            MemoryCheckpoint(),
        )
    assert len(aai.uploads) == 1
    assert aai.submitted[0]["audio_url"].startswith("https://cdn.assemblyai.com/upload/")


def test_a_transcript_in_error_is_permanent_with_assemblyais_reason(tmp_path, aai, sleep, audio, caplog):
    aai.script = ["queued", "error"]
    aai.outcome["error"] = (
        f"Download error, unable to download {SIGNED_AUDIO}. Please make sure the file exists."
    )
    checkpoint = MemoryCheckpoint()
    with mocked(aai), pytest.raises(PermanentError) as raised:
        provider(sleep).transcribe(
            TranscriptionRequest(audio_path=audio, audio_url=SIGNED_AUDIO), tmp_path, Progress(), checkpoint
        )
    message = str(raised.value)
    assert raised.value.reason == "TranscriptionFailed"
    assert (
        "Download error, unable to download https://bucket.s3.amazonaws.com/sources/talk.mp3?<redacted>"
        in message
    )
    assert "s3cr3tsig" not in message and "s3cr3tsig" not in caplog.text
    assert "transcript_id" not in checkpoint.load()  # a new attempt submits anew


def test_a_rejected_submit_never_shows_the_presigned_signature(tmp_path, aai, sleep, audio, caplog):
    caplog.set_level(logging.DEBUG)
    aai.fail("submit", failure(400, {"error": "Invalid audio_url"}))
    with mocked(aai), pytest.raises(PermanentError) as raised:
        provider(sleep).transcribe(
            TranscriptionRequest(audio_path=audio, audio_url=SIGNED_AUDIO),
            tmp_path,
            Progress(),
            MemoryCheckpoint(),
        )
    assert raised.value.reason == "ProviderRejected" and "Invalid audio_url" in str(raised.value)
    assert "s3cr3tsig" not in str(raised.value) and "s3cr3tsig" not in caplog.text
    assert raised.value.__cause__ is None
    assert sleep.waits == []


def test_a_rejected_key_names_the_variable(tmp_path, aai, sleep, audio, caplog):
    caplog.set_level(logging.DEBUG)
    with mocked(aai), pytest.raises(MissingCredentials) as raised:
        provider(sleep, key="wrong-key").transcribe(
            TranscriptionRequest(audio_path=audio), tmp_path, Progress(), MemoryCheckpoint()
        )
    message = str(raised.value)
    assert "ASSEMBLYAI_API_KEY" in message and "--offline" in message and "401" in message
    assert "wrong-key" not in message and "wrong-key" not in caplog.text
    assert sleep.waits == []


def test_rate_limit_honours_retry_after_then_succeeds(tmp_path, aai, sleep, audio):
    aai.fail("upload", failure(429, {"error": "Too many requests"}, retry_after="11"))
    with mocked(aai):
        out = provider(sleep).transcribe(
            TranscriptionRequest(audio_path=audio), tmp_path, Progress(), MemoryCheckpoint()
        )
    assert sleep.waits[0] == 11.0
    assert aai.count("upload") == 2 and len(aai.uploads) == 1
    assert out.word_count == 6


def test_server_errors_and_timeouts_are_retried(tmp_path, aai, sleep, audio):
    aai.fail("submit", failure(503, {"error": "Service unavailable"}))
    aai.fail("poll", httpx.ReadTimeout, failure(500, {"error": "An error occurred"}))
    resubmitting = AssemblyAIProvider(
        ASSEMBLYAI_KEY, retry=retry(sleep), poll_interval=3.0, resolve_window=10.0, resubmit_unresolved=True
    )
    with mocked(aai):
        out = resubmitting.transcribe(
            TranscriptionRequest(audio_path=audio), tmp_path, Progress(), MemoryCheckpoint()
        )
    # a 503 after the submit left is ambiguous: the list is watched for the window (three looks,
    # 5 s apart) and shows no such transcript, so with resubmit_unresolved it is sent again
    assert aai.count("list") == 3 and aai.count("submit") == 2
    assert (aai.accepted, aai.billed) == (1, 1) and out.request_id == next(iter(aai.transcripts))
    assert sleep.waits[:4] == [5.0, 5.0, 0.5, 1.0]  # the window; then the first poll's two retries


def test_by_default_a_create_the_list_never_shows_is_not_sent_again(tmp_path, aai, sleep, audio):
    aai.fail("submit", failure(503, {"error": "Service unavailable"}))
    with mocked(aai), pytest.raises(PermanentError) as raised:
        provider(sleep).transcribe(
            TranscriptionRequest(audio_path=audio), tmp_path, Progress(), MemoryCheckpoint()
        )
    assert raised.value.reason == "ProviderOutcomeUnknown" and "CONTENTGEN_ASSEMBLYAI_UNRESOLVED" in str(
        raised.value
    )
    assert aai.count("submit") == 1 and sum(sleep.waits) >= 120  # watched for the whole window


def test_persistent_server_errors_are_transient_and_keep_the_transcript(tmp_path, aai, sleep, audio):
    aai.fail("poll", *[failure(502, {"error": "Bad gateway"})] * 3)
    checkpoint = MemoryCheckpoint()
    with mocked(aai), pytest.raises(TransientError) as raised:
        provider(sleep).transcribe(TranscriptionRequest(audio_path=audio), tmp_path, Progress(), checkpoint)
    assert "gave up after 3 attempts" in str(raised.value) and raised.value.reason == "ProviderUnavailable"
    assert checkpoint.load()["transcript_id"] == next(iter(aai.transcripts))


def test_persistent_timeouts_are_transient(tmp_path, aai, sleep, audio):
    aai.fail("upload", *[httpx.WriteTimeout] * 3)
    with mocked(aai), pytest.raises(TransientError) as raised:
        provider(sleep).transcribe(
            TranscriptionRequest(audio_path=audio), tmp_path, Progress(), MemoryCheckpoint()
        )
    assert raised.value.reason == "ProviderTimeout"
    assert aai.submitted == []


def test_resumes_after_a_crash_mid_poll_without_a_second_submit(tmp_path, aai, audio):
    checkpoint = MemoryCheckpoint()
    request = TranscriptionRequest(audio_path=audio, speaker_labels=True)
    with mocked(aai):
        with pytest.raises(Crash):
            provider(FakeSleep(crash_at=2)).transcribe(request, tmp_path, Progress(), checkpoint)
        [transcript_id] = aai.transcripts
        assert checkpoint.load()["transcript_id"] == transcript_id
        polls = aai.polls(transcript_id)
        out = provider(FakeSleep()).transcribe(request, tmp_path, Progress(), checkpoint)
    assert len(aai.submitted) == 1 and len(aai.uploads) == 1
    assert aai.polls(transcript_id) > polls
    assert out.request_id == transcript_id and out.speakers == 2


def test_a_transcript_assemblyai_no_longer_knows_is_not_submitted_again(tmp_path, aai, sleep, audio):
    checkpoint = MemoryCheckpoint()
    request = TranscriptionRequest(audio_path=audio)
    with mocked(aai):
        with pytest.raises(Crash):
            provider(FakeSleep(crash_at=1)).transcribe(request, tmp_path, Progress(), checkpoint)
        [transcript_id] = aai.transcripts
        aai.transcripts[transcript_id].deleted = True  # its GET is now a 400
        with pytest.raises(PermanentError) as raised:
            provider(sleep).transcribe(request, tmp_path, Progress(), checkpoint)
    assert raised.value.reason == "ProviderOutcomeUnknown"
    assert f"AssemblyAI no longer knows transcript {transcript_id}" in str(raised.value)
    assert aai.accepted == 1 and aai.count("submit") == 1


def test_a_missing_key_fails_at_once(monkeypatch):
    monkeypatch.delenv("ASSEMBLYAI_API_KEY", raising=False)
    with pytest.raises(MissingCredentials) as raised:
        transcriber("assemblyai")
    assert str(raised.value) == (
        "ASSEMBLYAI_API_KEY is not set: set it (in the cluster, through the chart's "
        "assemblyai.existingSecret) or run with --offline"
    )
    assert isinstance(transcriber("assemblyai", env={"ASSEMBLYAI_API_KEY": "k"}), AssemblyAIProvider)
