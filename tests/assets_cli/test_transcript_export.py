"""`contentgen assets transcript`: subtitles and timed text from the stored transcript, for a
transcription run here (`contentgen run --offline`: the labelled placeholder) and for one whose
stored response is AssemblyAI's (the documented example)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contentgen.catalog.embedded import EmbeddedCatalog
from contentgen.cli.main import main
from contentgen.store import LocalStore
from tests.catalog.factory import T0, lora_doc, transcript_doc
from tests.conftest import EXAMPLES
from tests.providers.fake_assemblyai import COMPLETED_TRANSCRIPT


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONTENTGEN_CATALOG", f"file://{tmp_path}/catalog")
    monkeypatch.setenv("CONTENTGEN_STORE", str(tmp_path / "store"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_an_offline_run_exports_its_placeholder_over_the_audio(
    where: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = EXAMPLES / "media" / "sample.mp4"
    assert main(["run", "--offline", "--source", str(source), str(EXAMPLES / "transcription.yaml")]) == 0
    capsys.readouterr()
    assert main(["assets", "transcript", "demo-interview", "--format", "vtt"]) == 0
    vtt = capsys.readouterr().out
    assert vtt.startswith("WEBVTT\n") and "NOTE made by the offline provider" in vtt
    assert main(["assets", "get", "demo-interview", "-o", "json"]) == 0
    seconds = json.loads(capsys.readouterr().out)["durationSeconds"]
    times = [line for line in vtt.splitlines() if " --> " in line]
    # The placeholder, in speaker A's voice (speakerLabels), over the whole sample.
    assert times[0].startswith("00:00:00.000 --> ") and times[-1].endswith(f"00:00:{seconds:06.3f}")
    assert "<v Speaker A>[OFFLINE PLACEHOLDER]" in vtt
    out = where / "interview.srt"
    assert main(["assets", "transcript", "demo-interview", "--out", str(out)]) == 0
    assert out.read_text().startswith("1\n00:00:00,000 --> ")
    assert main(["assets", "transcript", "demo-interview", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["placeholder"] is True and data["speakers"] == ["A"]
    assert [(s["start"], s["speaker"]) for s in data["segments"]] == [(0.0, "A")]


def test_a_stored_assemblyai_response_and_the_errors(where: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = LocalStore(where / "store")
    catalog = EmbeddedCatalog(where / "catalog")
    catalog.upsert(transcript_doc("tr-1", created=T0, uri_of=store.uri))
    catalog.upsert(lora_doc("lora-1", name="avatar", uri_of=store.uri))
    catalog.close()
    store.put_bytes(
        "transcripts/alice/tr-1/v1/transcript.json",
        json.dumps(COMPLETED_TRANSCRIPT).encode(),
        "application/json",
    )
    assert main(["assets", "transcript", "default/podcast"]) == 0
    assert capsys.readouterr().out == (
        "1\n00:00:00,000 --> 00:00:01,000\nSpeaker A: Hello there.\n\n"
        "2\n00:00:01,200 --> 00:00:02,200\nSpeaker B: Hi, how are you?\n"
    )
    assert main(["assets", "transcript", "tr-1", "--format", "txt"]) == 0
    assert "[00:00:01] Speaker B: Hi, how are you?" in capsys.readouterr().out
    # Not a transcription; a version that does not exist; a transcript gone from the store.
    assert main(["assets", "transcript", "lora-1"]) == 1
    assert "is a LoraTraining, not a Transcription" in capsys.readouterr().err
    assert main(["assets", "transcript", "tr-1", "--version", "7"]) == 1
    assert "has no version 7 (usable versions: v1)" in capsys.readouterr().err
    store.delete("transcripts/alice/tr-1/v1/transcript.json")
    assert main(["assets", "transcript", "tr-1"]) == 1
    assert "missing from the store" in capsys.readouterr().err
