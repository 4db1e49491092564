"""`assets delete` erases the provider's copies where an API exists (AssemblyAI's transcripts and
the uploads that go with them; fal's payloads and output files) and says what it could not erase
(fal's input uploads, which its API keeps, and whatever a failure or a missing scope left)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from contentgen.providers.assemblyai import AssemblyAIProvider
from contentgen.providers.base import ImageRequest, MemoryCheckpoint, TranscriptionRequest
from contentgen.providers.erase import FAL_INPUTS_KEPT, Erasure, erase_provider_copies, request_ids
from contentgen.providers.fal import FalProvider
from contentgen.providers.fal.history import History

from .fake_assemblyai import ASSEMBLYAI_KEY, FakeAssemblyAI
from .fake_fal import FAL_KEY, FakeFal
from .fakes import FakeSleep, Progress, audio_file, failure, json_response, mocked, retry


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


def test_fal_without_a_key_erases_nothing_and_says_so():
    erased = erase_provider_copies(record("req-1", "req-2", provider="fal"), {})
    assert erased.erased == [] and len(erased.kept) == 3
    assert all("FAL_KEY is not set" in line for line in erased.kept[:2]) and FAL_INPUTS_KEPT in erased.kept
    assert erase_provider_copies(record(provider="offline"), {}) == Erasure()


# --- fal: DELETE /v1/models/requests/{id}/payloads -----------------------------------------------------


def generated(tmp_path: Path, fal: FakeFal) -> tuple[str, list[str]]:
    """A paid image request: its id and its output files on fal's CDN."""
    tmp_path.mkdir(exist_ok=True)
    provider = FalProvider(FAL_KEY, retry=retry(FakeSleep()), poll_interval=0.0)
    request = ImageRequest(prompt="a fox", model="flux-dev", num_images=2, image_size="square")
    outputs = provider.generate_images(request, tmp_path, Progress(), MemoryCheckpoint())
    request_id = outputs[0].request_id
    return request_id, [url for url in fal.files if f"/out/{request_id}/" in url]


def test_fal_payloads_and_output_files_of_every_request_are_deleted(tmp_path):
    fal = FakeFal()
    with mocked(fal):
        request_id, files = generated(tmp_path, fal)
        assert len(files) == 2
        erased = erase_provider_copies(record(request_id, provider="fal"), {"FAL_KEY": FAL_KEY})
        listed = History(FAL_KEY, retry(FakeSleep())).find("fal-ai/flux/dev", request_id)
    assert erased.erased == [f"fal request {request_id}: its payloads and 2 output files"]
    assert erased.kept == [FAL_INPUTS_KEPT]  # inputs it uploaded stay, as fal says
    assert fal.erased == [request_id] and set(files) <= fal.dead
    assert listed is not None and listed["json_input"] is None and listed["json_output"] is None
    (delete,) = [r for kind, r in fal.requests if kind == "erase"]
    assert delete.headers["authorization"] == f"Key {FAL_KEY}" and delete.headers["idempotency-key"]


def test_every_request_the_runs_used_is_found_not_only_the_counted_ones():
    documents = [
        {"usage": [{"provider": "fal", "request": "cap-1"}, {"provider": "fal", "request": "train-1"}]},
        {  # captions checkpoint: parts, one of them failed once and was sent again
            "0000": {"provider": "fal", "request_id": "cap-1", "result": {}},
            "0001": {"provider": "fal", "request_id": "cap-2", "failed": ["cap-0"]},
        },
        {"provider": "fal", "app": "fal-ai/flux-lora-fast-training", "failed": ["train-0"]},
        {"provider": "offline", "request_id": "offline-1"},
        ["not", "a", "document"],
    ]
    found = request_ids(record("train-1", "old-9", provider="fal"), documents)
    assert found == [("fal", r) for r in ("cap-1", "train-1", "cap-2", "cap-0", "train-0", "old-9")]


@pytest.mark.parametrize("unknown", ["404", "empty"])
def test_a_request_fal_no_longer_knows_is_not_reported_as_kept(unknown):
    fal = FakeFal()
    fal.variant.unknown_payloads = unknown
    with mocked(fal):
        erased = erase_provider_copies(record("gone-1", provider="fal"), {"FAL_KEY": FAL_KEY})
    assert len(erased.erased) == 1 and erased.erased[0].startswith("fal request gone-1")
    assert erased.kept == [FAL_INPUTS_KEPT]


def test_a_key_without_the_admin_scope_is_reported_with_what_to_do(tmp_path):
    fal = FakeFal()
    with mocked(fal):
        request_id, files = generated(tmp_path, fal)
        fal.admin_key = False
        erased = erase_provider_copies(record(request_id, provider="fal"), {"FAL_KEY": FAL_KEY})
    assert (
        erased.erased == [] and "ADMIN scope" in erased.kept[0] and "fal.ai/dashboard/keys" in erased.kept[0]
    )
    assert not set(files) & fal.dead and FAL_KEY not in " ".join(erased.kept)


def test_passing_failures_are_retried_and_lasting_ones_reported(tmp_path):
    fal, sleep = FakeFal(), FakeSleep()
    with mocked(fal):
        first, _ = generated(tmp_path / "a", fal)
        second, _ = generated(tmp_path / "b", fal)
        fal.fail("erase", failure(503), httpx.ConnectError)
        erased = erase_provider_copies(
            record(first, provider="fal"), {"FAL_KEY": FAL_KEY}, retry=retry(sleep)
        )
        fal.fail("erase", *[failure(500)] * 3)
        later = erase_provider_copies(
            record(second, provider="fal"), {"FAL_KEY": FAL_KEY}, retry=retry(sleep)
        )
    assert erased.erased == [f"fal request {first}: its payloads and 2 output files"]
    assert later.erased == [] and later.kept[0].startswith(f"fal request {second}: ")
    assert "run the delete again" in later.kept[0]
    assert fal.erased == [first]
    # a retry sends the same Idempotency-Key, so fal answers it from its record
    keys = [r.headers["idempotency-key"] for kind, r in fal.requests if kind == "erase"]
    assert keys[:3] == [f"contentgen-erase-{first}"] * 3


def test_a_file_fal_could_not_delete_is_reported(tmp_path):
    fal = FakeFal()
    with mocked(fal):
        request_id, files = generated(tmp_path, fal)
        fal.fail(
            "erase",
            json_response(
                200,
                {
                    "cdn_delete_results": [
                        {"link": files[0], "exception": None},
                        {"link": files[1], "exception": "StorageError: timed out"},
                    ]
                },
            ),
        )
        erased = erase_provider_copies(record(request_id, provider="fal"), {"FAL_KEY": FAL_KEY})
    assert erased.erased == [f"fal request {request_id}: its payloads and 1 output file"]
    assert f"could not delete {files[1]} (StorageError: timed out)" in erased.kept[0]
