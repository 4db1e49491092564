"""The offline provider: no network, no key, deterministic, placeholders that say so."""

from __future__ import annotations

import json
import socket
import struct

import cv2
import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file

from contentgen.api.lora.plan import plan_for
from contentgen.errors import InvalidInput
from contentgen.providers import image_generator, trainer, transcriber
from contentgen.providers.base import (
    ImageRequest,
    MemoryCheckpoint,
    TrainingRequest,
    TranscriptionRequest,
)
from contentgen.providers.offline import IMAGE_SIZES, OfflineProvider
from contentgen.providers.offline_training import write_safetensors

from .fake_fal import SIZES
from .fakes import Progress, audio_file, dataset_zip, mocked


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any socket connection fails the test; so would any httpx request (mocked with no routes)."""

    def refuse(*args, **kwargs):
        raise AssertionError("the offline provider opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.delenv("FAL_KEY", raising=False)
    monkeypatch.delenv("ASSEMBLYAI_API_KEY", raising=False)
    with mocked(lambda request: pytest.fail(f"the offline provider made a request: {request.url}")):
        yield


def training(tmp_path, images=5) -> TrainingRequest:
    return TrainingRequest(
        dataset_zip=dataset_zip(tmp_path / "dataset.zip", images),
        trigger_word="dmavatar",
        frames=images,
        plan=plan_for(
            app="fal-ai/flux-lora-fast-training", steps=1200, learning_rate=0.0002, provider="offline"
        ),
    )


def test_factories_need_no_key():
    assert all(isinstance(f("offline"), OfflineProvider) for f in (trainer, image_generator, transcriber))
    with pytest.raises(InvalidInput, match="no transcriber is called 'fal'"):
        transcriber("fal")
    with pytest.raises(InvalidInput, match="no LoRA trainer is called 'assemblyai'"):
        trainer("assemblyai")


def test_training_writes_a_valid_safetensors_marked_as_placeholder(tmp_path):
    request, progress = training(tmp_path), Progress()
    work = tmp_path / "work"
    work.mkdir()
    out = OfflineProvider().train_lora(request, work, progress, MemoryCheckpoint())

    assert out.placeholder and out.weights == work / "model.safetensors"
    tensors = load_file(out.weights)
    weights = {name: t for name, t in tensors.items() if name.startswith("placeholder.")}
    assert {name: t.shape for name, t in weights.items()} == {
        "placeholder.lora_A.weight": (4, 8),
        "placeholder.lora_B.weight": (8, 4),
    }
    assert all(t.dtype == np.float32 and np.isfinite(t).all() for t in weights.values())
    # and the subject it simulates: the dataset's pictures, as JPEGs in uint8 tensors (offline_subject)
    subject = {name: t for name, t in tensors.items() if name not in weights}
    assert sorted(subject) == [f"contentgen.subject.{n:02d}" for n in range(1, 6)]
    for number, (_, picture) in enumerate(sorted(subject.items()), 1):
        assert picture.dtype == np.uint8 and picture.ndim == 1
        decoded = cv2.imdecode(picture, cv2.IMREAD_COLOR)
        assert decoded.shape == (256, 256, 3) and abs(float(decoded.mean()) - 40 * number) < 3
    with safe_open(out.weights, "np") as f:
        metadata = f.metadata()
    digest = out.details["dataset_sha256"]
    assert metadata == {
        "contentgen.placeholder": "true",
        "contentgen.note": "offline provider: not a trained model",
        "contentgen.provider": "offline",
        "contentgen.base_model": "flux.1",
        "contentgen.trigger_word": "dmavatar",
        "contentgen.steps": "1200",
        "contentgen.training_model": "fal-ai/flux-lora-fast-training",
        "contentgen.dataset_sha256": digest,
        "contentgen.dataset_images": "5",  # the jpgs, not the caption files
    }
    import hashlib

    assert digest == hashlib.sha256(request.dataset_zip.read_bytes()).hexdigest()

    config = json.loads(out.config.read_text())
    assert config["placeholder"] is True and config["note"] == "offline provider: not a trained model"
    assert (config["trigger_word"], config["steps"], config["dataset_images"]) == ("dmavatar", 1200, 5)
    assert out.request_id == f"offline-{digest[:16]}"
    assert progress.monotonic and progress[0] == 0 and progress[-1] == 100 and len(progress) >= 4


def test_training_is_deterministic(tmp_path):
    request = training(tmp_path)
    outputs = []
    for name in ("a", "b"):
        work = tmp_path / name
        work.mkdir()
        outputs.append(OfflineProvider().train_lora(request, work, Progress(), MemoryCheckpoint()))
    assert outputs[0].weights.read_bytes() == outputs[1].weights.read_bytes()
    assert outputs[0].config.read_bytes() == outputs[1].config.read_bytes()


def test_training_reads_the_dataset_for_real(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InvalidInput, match="not a zip file"):
        OfflineProvider().train_lora(
            TrainingRequest(
                dataset_zip=bad, trigger_word="t", plan=plan_for(app="m", steps=100, provider="offline")
            ),
            tmp_path,
            Progress(),
            MemoryCheckpoint(),
        )
    empty = tmp_path / "empty.zip"
    import zipfile

    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("captions/0001.txt", "a photo")
    with pytest.raises(InvalidInput, match="holds no images"):
        OfflineProvider().train_lora(
            TrainingRequest(
                dataset_zip=empty, trigger_word="t", plan=plan_for(app="m", steps=100, provider="offline")
            ),
            tmp_path,
            Progress(),
            MemoryCheckpoint(),
        )


def test_the_safetensors_writer_follows_the_format(tmp_path):
    path = tmp_path / "t.safetensors"
    write_safetensors(path, {"b": ([2], [1.0, 2.0]), "a": ([1, 3], [3.0, 4.0, 5.0])}, {"k": "v"})
    data = path.read_bytes()
    length = struct.unpack("<Q", data[:8])[0]
    assert length % 8 == 0  # padded, as the reference writer does
    header = json.loads(data[8 : 8 + length])
    assert header["a"] == {"dtype": "F32", "shape": [1, 3], "data_offsets": [0, 12]}
    assert header["b"] == {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}
    assert len(data) == 8 + length + 20
    loaded = load_file(path)
    assert loaded["a"].tolist() == [[3.0, 4.0, 5.0]] and loaded["b"].tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="needs 4 values"):
        write_safetensors(path, {"x": ([2, 2], [1.0])}, {})
    write_safetensors(path, {"a": ([1], [3.0])}, {}, {"bytes": b"\x01\x02\x03"})
    loaded = load_file(path)  # read by the reference reader
    assert loaded["bytes"].dtype == np.uint8 and loaded["bytes"].tolist() == [1, 2, 3]
    assert loaded["a"].tolist() == [3.0]


def test_offline_sizes_are_fals_presets():
    assert IMAGE_SIZES == SIZES


@pytest.mark.parametrize("size", sorted(SIZES))
def test_images_are_pngs_of_the_preset_size(tmp_path, size):
    request = ImageRequest(
        prompt="a lighthouse at dusk, oil painting", model="flux-dev", num_images=2, image_size=size, seed=11
    )
    progress = Progress()
    images = OfflineProvider().generate_images(request, tmp_path, progress, MemoryCheckpoint())
    width, height = SIZES[size]
    assert [(i.width, i.height, i.content_type, i.seed) for i in images] == [
        (width, height, "image/png", 11)
    ] * 2
    for image in images:
        assert image.path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        decoded = cv2.imread(str(image.path), cv2.IMREAD_COLOR)
        assert decoded.shape == (height, width, 3)
        # text was drawn: white pixels (the label, the prompt) on a dark-to-mid background
        assert (decoded == 255).all(axis=2).sum() > 500
    assert progress.monotonic and progress[-1] == 100


def test_images_are_deterministic_from_prompt_seed_and_index(tmp_path):
    def render(prompt: str, seed: int | None, folder: str) -> list[bytes]:
        work = tmp_path / folder
        work.mkdir()
        request = ImageRequest(
            prompt=prompt, model="flux-schnell", num_images=2, image_size="square", seed=seed
        )
        return [
            i.path.read_bytes()
            for i in OfflineProvider().generate_images(request, work, Progress(), MemoryCheckpoint())
        ]

    first, again = render("a cat", 5, "a"), render("a cat", 5, "b")
    assert first == again
    assert first[0] != first[1]  # the index matters
    assert render("a cat", 6, "c") != first  # the seed matters
    assert render("a dog", 5, "d") != first  # the prompt matters
    assert render("a cat", None, "e") == render("a cat", None, "f")  # no seed: derived from the prompt


def test_a_long_non_ascii_prompt_still_renders(tmp_path):
    request = ImageRequest(prompt="café " * 400 + "☃", model="flux-dev", image_size="square")
    [image] = OfflineProvider().generate_images(request, tmp_path, Progress(), MemoryCheckpoint())
    assert cv2.imread(str(image.path)).shape == (512, 512, 3)


def test_transcript_says_it_is_a_placeholder_with_the_measured_duration(tmp_path):
    audio = audio_file(tmp_path / "talk.wav", seconds=2.0)
    request = TranscriptionRequest(
        audio_path=audio, language_code="de", speaker_labels=True, duration_seconds=2.0
    )
    out = OfflineProvider().transcribe(request, tmp_path, Progress(), MemoryCheckpoint())
    assert out.placeholder
    assert out.text.startswith("Speaker A: [OFFLINE PLACEHOLDER] This is not a transcript")
    assert "2.0 seconds long" in out.text
    assert (out.duration_seconds, out.speakers, out.language_code) == (2.0, 1, "de")
    assert out.word_count == len(out.text.removeprefix("Speaker A: ").split()) > 20  # its own words
    response = out.response
    assert {
        "id",
        "status",
        "text",
        "words",
        "utterances",
        "audio_duration",
        "language_code",
    } <= response.keys()
    assert response["status"] == "completed" and response["words"] == [] and response["audio_duration"] == 2
    assert response["contentgen_placeholder"] is True and "placeholder" in response["contentgen_note"]
    assert response["utterances"][0]["speaker"] == "A" and response["utterances"][0]["end"] == 2000
    assert out.request_id == response["id"]


def test_transcript_without_speakers_or_duration(tmp_path):
    audio = audio_file(tmp_path / "talk.wav")
    out = OfflineProvider().transcribe(
        TranscriptionRequest(audio_path=audio), tmp_path, Progress(), MemoryCheckpoint()
    )
    assert out.text.startswith("[OFFLINE PLACEHOLDER]") and "unmeasured duration" in out.text
    assert (out.speakers, out.duration_seconds, out.language_code) == (0, 0.0, "")
    assert out.response["utterances"] is None and out.response["audio_duration"] is None
