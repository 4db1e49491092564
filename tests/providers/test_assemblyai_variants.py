"""Every billing path on AssemblyAI (the upload, then the transcript create; a create from a URL
AssemblyAI fetches itself) against what its documentation leaves open (fake_assemblyai.py): a
list that shows a new transcript only later, `created` without a time zone (in UTC or another
zone) or with one, and speech_models required or not. Whatever the variant: a transcript is
created once and billed at most once, and the run delivers it or ends in ProviderOutcomeUnknown."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from contentgen.pricing import PriceTable, priced, transcription_usage
from contentgen.providers.assemblyai import AssemblyAIProvider
from contentgen.providers.base import MemoryCheckpoint, TranscriptionRequest

from .fake_assemblyai import ASSEMBLYAI_KEY, FakeAssemblyAI
from .fakes import (
    DELIVERED,
    UNKNOWN,
    Crash,
    FakeSleep,
    Progress,
    after,
    audio_file,
    mocked,
    retry,
    run_to_the_end,
)

SIGNED = "https://bucket.s3.amazonaws.com/talk.wav?X-Amz-Signature=sig"

VARIANTS: dict[str, tuple[dict[str, Any], str]] = {
    "listed-at-once": ({}, DELIVERED),
    "listed-after-a-while": ({"lag": 6}, DELIVERED),  # within the 120 s window
    "listed-too-late": ({"lag": 1000}, UNKNOWN),
    "naive-utc": ({"zone": timedelta(0)}, DELIVERED),
    "naive-pacific": ({"zone": timedelta(hours=-8)}, DELIVERED),
    "naive-tokyo": ({"zone": timedelta(hours=9)}, DELIVERED),
    "with-zone": ({"zone": None}, DELIVERED),
    "speech-models-required": ({"requires_speech_models": True}, DELIVERED),
    "all-at-once": ({"lag": 4, "zone": timedelta(hours=-10), "requires_speech_models": True}, DELIVERED),
}
PATHS = {"upload-then-create": None, "create-from-url": SIGNED}
LOST = {
    "lost-answer": after(httpx.ReadTimeout),
    "crash": after(Crash),
    "server-error": after(httpx.Response(502)),
}


def run(fake: FakeAssemblyAI, request: TranscriptionRequest, tmp_path) -> tuple[str, Any]:  # type: ignore[no-untyped-def]
    def transcribe(checkpoint: MemoryCheckpoint) -> Any:
        provider = AssemblyAIProvider(ASSEMBLYAI_KEY, retry=retry(FakeSleep()), poll_interval=3.0)
        return provider.transcribe(request, tmp_path, Progress(), checkpoint)

    return run_to_the_end(transcribe)


@pytest.mark.parametrize("lost", list(LOST), ids=list(LOST))
@pytest.mark.parametrize("variant", list(VARIANTS), ids=list(VARIANTS))
@pytest.mark.parametrize("path", list(PATHS), ids=list(PATHS))
def test_a_lost_create_is_paid_once_and_delivered_or_unknown(tmp_path, path, variant, lost):
    fake = FakeAssemblyAI()
    options, expected = VARIANTS[variant]
    for name, value in options.items():
        setattr(fake, name, value)
    fake.fail("submit", LOST[lost])
    request = TranscriptionRequest(audio_path=audio_file(tmp_path / "talk.wav"), audio_url=PATHS[path])
    with mocked(fake):
        outcome, out = run(fake, request, tmp_path)
    assert outcome == expected
    assert fake.count("submit") == fake.accepted == 1  # created once, never sent again
    assert fake.billed <= 1
    if outcome == DELIVERED:
        assert fake.billed == 1 and out.request_id == next(iter(fake.transcripts))
        assert out.speech_model == "universal-3-5-pro"


@pytest.mark.parametrize("variant", list(VARIANTS), ids=list(VARIANTS))
def test_a_lost_upload_is_uploaded_again_for_free_and_created_once(tmp_path, variant):
    fake = FakeAssemblyAI()
    for name, value in VARIANTS[variant][0].items():
        setattr(fake, name, value)
    fake.fail("upload", after(httpx.ReadTimeout))
    request = TranscriptionRequest(audio_path=audio_file(tmp_path / "talk.wav"))
    with mocked(fake):
        outcome, _ = run(fake, request, tmp_path)
    assert outcome == DELIVERED and fake.count("upload") == 2  # uploads are not billed
    assert (fake.accepted, fake.billed) == (1, 1)


@pytest.mark.parametrize(
    ("language", "used", "per_hour"),
    [("en", "universal-3-5-pro", 0.21), ("ja", "universal-2", 0.15)],
)
def test_the_cost_is_the_price_of_the_model_that_ran(tmp_path, language, used, per_hour):
    fake = FakeAssemblyAI()
    request = TranscriptionRequest(audio_path=audio_file(tmp_path / "talk.wav"), language_code=language)
    with mocked(fake):
        _, out = run(fake, request, tmp_path)
    assert fake.submitted[0]["speech_models"] == ["universal-3-5-pro", "universal-2"]
    assert out.speech_model == used
    usage = transcription_usage("assemblyai", 3600.0, False, out.request_id, model=out.speech_model)
    usd, detail = priced(usage, PriceTable())
    assert usd == pytest.approx(per_hour) and used in detail


def test_the_speech_models_asked_for_are_sent(tmp_path):
    fake = FakeAssemblyAI()
    request = TranscriptionRequest(
        audio_path=audio_file(tmp_path / "talk.wav"), speech_models=("universal-2",)
    )
    with mocked(fake):
        _, out = run(fake, request, tmp_path)
    assert fake.submitted[0]["speech_models"] == ["universal-2"] and out.speech_model == "universal-2"
