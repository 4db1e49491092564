"""`assets delete` erases the provider's copies where an API exists (AssemblyAI's transcripts and
the uploads that go with them) and says what it could not erase (fal's payloads and CDN files)."""

from __future__ import annotations

from contentgen.providers.assemblyai import AssemblyAIProvider
from contentgen.providers.base import MemoryCheckpoint, TranscriptionRequest
from contentgen.providers.erase import erase_provider_copies

from .fake_assemblyai import ASSEMBLYAI_KEY, FakeAssemblyAI
from .fakes import FakeSleep, Progress, audio_file, failure, mocked, retry


def transcribed(tmp_path, fake: FakeAssemblyAI) -> str:  # type: ignore[no-untyped-def]
    provider = AssemblyAIProvider(ASSEMBLYAI_KEY, retry=retry(FakeSleep()), poll_interval=3.0)
    request = TranscriptionRequest(audio_path=audio_file(tmp_path / "talk.wav"))
    return provider.transcribe(request, tmp_path, Progress(), MemoryCheckpoint()).request_id


def record(*ids: str, provider: str = "assemblyai") -> dict:  # type: ignore[type-arg]
    return {"provider": provider, "cost": {"countedRequests": list(ids)}}


def test_the_transcript_and_its_upload_are_deleted_at_assemblyai(tmp_path):
    fake = FakeAssemblyAI()
    with mocked(fake):
        transcript_id = transcribed(tmp_path, fake)
        assert fake.uploads
        erased = erase_provider_copies(record(transcript_id), {"ASSEMBLYAI_API_KEY": ASSEMBLYAI_KEY})
    assert erased.erased == [f"AssemblyAI transcript {transcript_id}"] and erased.kept == []
    assert fake.transcripts[transcript_id].deleted and not fake.uploads


def test_one_already_gone_counts_as_erased_and_a_failure_is_reported(tmp_path):
    fake = FakeAssemblyAI()
    with mocked(fake):
        transcript_id = transcribed(tmp_path, fake)
        fake.fail("delete", failure(503, {"error": "Service unavailable"}))
        first = erase_provider_copies(
            record(transcript_id, "gone-long-ago"), {"ASSEMBLYAI_API_KEY": ASSEMBLYAI_KEY}
        )
    assert first.kept == [
        f"AssemblyAI transcript {transcript_id}: AssemblyAI answered HTTP 503; run the delete again"
    ]
    assert first.erased == ["AssemblyAI transcript gone-long-ago"]


def test_without_a_key_nothing_is_sent_and_the_report_says_why():
    erased = erase_provider_copies(record("t-1"), {})
    assert erased.kept == ["AssemblyAI transcript t-1: ASSEMBLYAI_API_KEY is not set"]


def test_what_fal_keeps_is_reported_not_claimed_erased():
    erased = erase_provider_copies(record("req-1", "req-2", provider="fal"), {})
    assert erased.erased == [] and "req-1, req-2" in erased.kept[0] and "fal.ai/dashboard" in erased.kept[0]
    assert erase_provider_copies(record(provider="offline"), {}).kept == []
