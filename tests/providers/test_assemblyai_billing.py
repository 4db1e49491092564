"""AssemblyAI bills each transcript that completes; these tests count them. Every case goes over
HTTP through the assemblyai SDK against the fake (fake_assemblyai.py)."""

from __future__ import annotations

import json
import logging

import assemblyai as aai
import httpx
import pytest

from contentgen.errors import PermanentError
from contentgen.providers.assemblyai import AssemblyAIProvider
from contentgen.providers.base import MemoryCheckpoint, TranscriptionRequest

from .fake_assemblyai import ASSEMBLYAI_KEY, FakeAssemblyAI
from .fakes import Crash, FakeSleep, Progress, after, audio_file, html, mocked, retry, truncated

SIGNED_AUDIO = "https://bucket.s3.amazonaws.com/sources/talk.mp3?X-Amz-Signature=s3cr3tsig&X-Amz-Expires=3600"


@pytest.fixture
def aai_fake() -> FakeAssemblyAI:
    return FakeAssemblyAI()


@pytest.fixture
def audio(tmp_path):
    return audio_file(tmp_path / "talk.wav")


def provider(sleep: FakeSleep | None = None) -> AssemblyAIProvider:
    return AssemblyAIProvider(ASSEMBLYAI_KEY, retry=retry(sleep or FakeSleep()), poll_interval=3.0)


@pytest.mark.parametrize(
    "lost",
    [
        after(httpx.ReadTimeout),
        after(httpx.RemoteProtocolError),
        after(html(502)),
        after(truncated({"id": "x"})),
    ],
    ids=["read-timeout", "disconnect", "html-502", "truncated-200"],
)
def test_a_created_transcript_whose_answer_is_lost_is_found_not_created_again(
    tmp_path, aai_fake, audio, lost, caplog
):
    caplog.set_level(logging.INFO)
    aai_fake.fail("submit", lost)
    checkpoint = MemoryCheckpoint()
    with mocked(aai_fake):
        out = provider().transcribe(TranscriptionRequest(audio_path=audio), tmp_path, Progress(), checkpoint)
    [transcript_id] = aai_fake.transcripts
    assert aai_fake.count("submit") == 1 and (aai_fake.accepted, aai_fake.billed) == (1, 1)
    assert out.request_id == transcript_id and aai_fake.count("list") >= 1
    assert "found the lost submit among AssemblyAI's transcripts" in caplog.text


def test_a_submit_that_was_not_created_is_created_once_when_resubmitting_is_chosen(tmp_path, aai_fake, audio):
    # the answer to the submit is lost, and AssemblyAI had not created it; the list is watched for
    # the window (20 s: looks at 0, 5, 10, 15 and 20 s), then the create is sent again
    aai_fake.fail("submit", httpx.ReadTimeout)
    resubmitting = AssemblyAIProvider(
        ASSEMBLYAI_KEY,
        retry=retry(FakeSleep()),
        poll_interval=3.0,
        resolve_window=20.0,
        resubmit_unresolved=True,
    )
    with mocked(aai_fake):
        out = resubmitting.transcribe(
            TranscriptionRequest(audio_path=audio), tmp_path, Progress(), MemoryCheckpoint()
        )
    assert aai_fake.count("submit") == 2 and aai_fake.count("list") == 5
    assert (aai_fake.accepted, aai_fake.billed) == (1, 1) and out.word_count == 6


def test_a_crash_after_creating_is_resolved_by_the_next_attempt(tmp_path, aai_fake, audio):
    aai_fake.fail("submit", after(Crash))
    checkpoint = MemoryCheckpoint()
    request = TranscriptionRequest(audio_path=audio, audio_url=SIGNED_AUDIO)
    with mocked(aai_fake):
        with pytest.raises(Crash):
            provider().transcribe(request, tmp_path, Progress(), checkpoint)
        assert "sent" in checkpoint.load()
        # the retried pod presigns the source anew: the intent's digest is of the URL actually sent
        again = TranscriptionRequest(audio_path=audio, audio_url=SIGNED_AUDIO.replace("s3cr3tsig", "other"))
        out = provider().transcribe(again, tmp_path, Progress(), checkpoint)
    assert aai_fake.count("submit") == 1 and (aai_fake.accepted, aai_fake.billed) == (1, 1)
    assert out.request_id == next(iter(aai_fake.transcripts))
    assert "s3cr3tsig" not in json.dumps(checkpoint.load())


def test_the_same_audio_twice_since_the_lost_submit_is_not_guessed_between(tmp_path, aai_fake, audio):
    client = aai.Client(settings=aai.types.Settings(api_key=ASSEMBLYAI_KEY))
    with mocked(aai_fake):
        aai.Transcriber(client=client).submit(SIGNED_AUDIO)  # someone else, the same link
        aai_fake.fail("submit", after(httpx.ReadTimeout))
        with pytest.raises(PermanentError) as raised:
            provider().transcribe(
                TranscriptionRequest(audio_path=audio, audio_url=SIGNED_AUDIO),
                tmp_path,
                Progress(),
                MemoryCheckpoint(),
            )
    assert raised.value.reason == "ProviderOutcomeUnknown" and "lists 2 of them since" in str(raised.value)
    assert "Nothing was submitted again" in str(raised.value) and "s3cr3tsig" not in str(raised.value)
    assert aai_fake.accepted == 2


def test_a_lost_upload_answer_is_uploaded_again_which_costs_nothing(tmp_path, aai_fake, audio):
    aai_fake.fail("upload", after(httpx.ReadTimeout))
    with mocked(aai_fake):
        provider().transcribe(
            TranscriptionRequest(audio_path=audio), tmp_path, Progress(), MemoryCheckpoint()
        )
    assert len(aai_fake.uploads) == 2 and aai_fake.count("upload") == 2
    assert (aai_fake.accepted, aai_fake.billed) == (1, 1)


def test_an_audio_link_assemblyai_cannot_download_is_uploaded_instead_once(tmp_path, aai_fake, audio, caplog):
    caplog.set_level(logging.WARNING)
    aai_fake.kill(SIGNED_AUDIO)  # the presigned link expired before AssemblyAI fetched it
    checkpoint = MemoryCheckpoint()
    with mocked(aai_fake):
        out = provider().transcribe(
            TranscriptionRequest(audio_path=audio, audio_url=SIGNED_AUDIO), tmp_path, Progress(), checkpoint
        )
    assert [s["audio_url"] for s in aai_fake.submitted] == [SIGNED_AUDIO, next(iter(aai_fake.uploads))]
    assert (aai_fake.accepted, aai_fake.billed) == (2, 1)  # the failed one is not billed
    assert "could not fetch the audio" in caplog.text and "s3cr3tsig" not in caplog.text
    assert out.request_id == checkpoint.load()["transcript_id"] and len(checkpoint.load()["failed"]) == 1


def test_an_upload_that_cannot_be_downloaded_twice_fails_without_more(tmp_path, aai_fake, audio):
    original = aai_fake._upload

    def upload_dead(request: httpx.Request) -> httpx.Response:
        response = original(request)
        aai_fake.kill(json.loads(response.content)["upload_url"])
        return response

    aai_fake._upload = upload_dead  # type: ignore[method-assign]
    with mocked(aai_fake), pytest.raises(PermanentError) as raised:
        provider().transcribe(
            TranscriptionRequest(audio_path=audio), tmp_path, Progress(), MemoryCheckpoint()
        )
    assert raised.value.reason == "TranscriptionFailed" and "Download error" in str(raised.value)
    assert (aai_fake.accepted, aai_fake.billed) == (2, 0) and len(aai_fake.uploads) == 2


@pytest.mark.parametrize(
    ("answer", "words"),
    [(html(200), "text/html"), (truncated({"id": "x", "status": "queued"}), "application/json")],
    ids=["html", "truncated"],
)
def test_a_poll_answered_with_nonsense_fails_clearly_once(tmp_path, aai_fake, audio, answer, words):
    aai_fake.fail("poll", answer)
    sleep = FakeSleep()
    checkpoint = MemoryCheckpoint()
    with mocked(aai_fake), pytest.raises(PermanentError) as raised:
        provider(sleep).transcribe(TranscriptionRequest(audio_path=audio), tmp_path, Progress(), checkpoint)
    assert raised.value.reason == "ProviderBadResponse"
    assert str(raised.value).startswith("AssemblyAI answered transcript") and words in str(raised.value)
    assert aai_fake.count("poll") == 1 and sleep.waits == []  # not retried
    assert aai_fake.accepted == 1 and checkpoint.load()["transcript_id"]  # kept for a later attempt


def test_a_completed_transcript_without_text_is_a_clear_failure(tmp_path, aai_fake, audio):
    aai_fake.outcome = {"audio_duration": 3, "text": None, "words": None}
    with mocked(aai_fake), pytest.raises(PermanentError) as raised:
        provider().transcribe(
            TranscriptionRequest(audio_path=audio), tmp_path, Progress(), MemoryCheckpoint()
        )
    assert raised.value.reason == "ProviderBadResponse" and "a completed transcript without text" in str(
        raised.value
    )
    assert aai_fake.accepted == 1


def test_keys_stay_out_of_checkpoints_logs_and_messages(tmp_path, aai_fake, audio, caplog):
    caplog.set_level(logging.DEBUG)
    aai_fake.fail("submit", after(httpx.ReadTimeout))
    checkpoint = MemoryCheckpoint()
    with mocked(aai_fake):
        provider().transcribe(TranscriptionRequest(audio_path=audio), tmp_path, Progress(), checkpoint)
    assert ASSEMBLYAI_KEY not in json.dumps(checkpoint.load()) and ASSEMBLYAI_KEY not in caplog.text
