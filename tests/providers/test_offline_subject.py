"""The offline provider's simulated likeness (providers/offline_subject.py): a LoRA it trains carries
the dataset's pictures, and a picture drawn with it shows the subject's face as far as the LoRA's
step had learned it, labelled as simulated; nothing else is read, and nothing over a network."""

from __future__ import annotations

import socket
import struct
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from contentgen.api.lora.plan import plan_for
from contentgen.providers import offline_subject
from contentgen.providers.base import ImageRequest, LoraWeights, MemoryCheckpoint, TrainingRequest
from contentgen.providers.offline import OfflineProvider
from contentgen.providers.offline_training import write_safetensors

from .fakes import Progress, safetensors_bytes


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the offline provider opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def _dataset(path: Path) -> Path:
    """Three pictures told apart by their colour, as images/NNNN.jpg with their captions."""
    with zipfile.ZipFile(path, "w") as archive:
        for number, colour in enumerate(((200, 40, 40), (40, 200, 40), (40, 40, 200)), 1):
            picture = np.zeros((512, 512, 3), np.uint8)
            picture[:] = colour
            cv2.circle(picture, (256, 230), 120, (220, 220, 220), -1)  # something with edges
            ok, jpeg = cv2.imencode(".jpg", picture)
            assert ok
            archive.writestr(f"images/{number:04d}.jpg", jpeg.tobytes())
            archive.writestr(f"captions/{number:04d}.txt", "a photo of dmavatar")
    return path


def _trained(tmp_path: Path, checkpoint_every: int = 0) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    request = TrainingRequest(
        dataset_zip=_dataset(tmp_path / "dataset.zip"),
        trigger_word="dmavatar",
        plan=plan_for(app="m", steps=1000, provider="offline"),
    )
    return OfflineProvider().train_lora(request, work, Progress(), MemoryCheckpoint()).weights


def test_a_trained_lora_carries_the_datasets_pictures_and_its_step(tmp_path: Path) -> None:
    subject = offline_subject.read(_trained(tmp_path))
    assert subject is not None and (subject.step, subject.steps) == (1000, 1000)
    assert [p.shape for p in subject.pictures] == [(256, 256, 3)] * 3
    # in the dataset's order: red, green, blue (BGR)
    assert [int(np.argmax(p[10, 10])) for p in subject.pictures] == [0, 1, 2]


def test_the_stages_of_a_simulated_training() -> None:
    picture = np.zeros((8, 8, 3), np.uint8)
    stages = {step: offline_subject.Subject((picture,), step, 1000) for step in (0, 250, 600, 750, 1000)}
    assert [round(s.learned, 2) for s in stages.values()] == [0.0, 0.42, 1.0, 1.0, 1.0]
    assert [round(s.overdone, 2) for s in stages.values()] == [0.0, 0.0, 0.0, 0.38, 1.0]
    words = {step: s.words() for step, s in stages.items()}
    assert words[250] == "SIMULATED LIKENESS: a training picture, step 250 of 1000 (under-trained: faint)"
    assert words[600].endswith("(learned)") and words[1000].endswith(
        "(over-trained: one training picture, burnt)"
    )


def test_only_the_offline_providers_own_local_loras_are_read(tmp_path: Path) -> None:
    real = tmp_path / "real.safetensors"
    real.write_bytes(safetensors_bytes())  # a LoRA of someone else's: no subject
    unmarked = tmp_path / "unmarked.safetensors"
    write_safetensors(unmarked, {"a": ([1], [1.0])}, {}, offline_subject.tensors([b"\xff\xd8"]))
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    ours = _trained(tmp_path)
    assert offline_subject.read(real) is None and offline_subject.read(unmarked) is None
    assert offline_subject.read(broken) is None and offline_subject.read(tmp_path / "none") is None
    # a link it would have to fetch is not read (no network), whatever it names
    assert offline_subject.of_loras([f"https://example.com/{ours.name}", "s3://bucket/lora"]) is None
    found = offline_subject.of_loras([real.as_uri(), ours.as_uri()])
    assert found is not None and found.step == 1000


def _picture(tmp_path: Path, lora: Path | None, name: str, seed: int = 1) -> np.ndarray:
    folder = tmp_path / name
    folder.mkdir()
    loras = (LoraWeights(url=lora.as_uri()),) if lora is not None else ()
    request = ImageRequest(
        prompt="a photo of dmavatar", model="flux-lora", image_size="square", seed=seed, loras=loras
    )
    [image] = OfflineProvider().generate_images(request, folder, Progress(), MemoryCheckpoint())
    picture = cv2.imread(str(image.path))
    assert picture is not None
    return picture


def test_a_picture_drawn_with_the_lora_shows_its_subject_as_far_as_its_step_learned_it(
    tmp_path: Path,
) -> None:
    weights = _trained(tmp_path)
    plain = _picture(tmp_path, None, "plain")
    at_steps = {}
    for step in (250, 600, 1000):
        lora = tmp_path / f"step-{step}.safetensors"
        subject = offline_subject.read(weights)
        assert subject is not None
        write_safetensors(
            lora,
            {"a": ([1], [1.0])},
            {"contentgen.placeholder": "true", "contentgen.step": str(step), "contentgen.steps": "1000"},
            offline_subject.tensors([cv2.imencode(".jpg", p)[1].tobytes() for p in subject.pictures]),
        )
        at_steps[step] = _picture(tmp_path, lora, f"s{step}")
    middle = (slice(200, 330), slice(200, 330))  # where the face is drawn
    # the dataset's pale disc shows in the middle, clearer once learned than under-trained
    brightness = {step: float(p[middle].mean()) for step, p in at_steps.items()}
    assert brightness[600] > brightness[250] > float(plain[middle].mean())

    def pictures_drawn(step: int) -> set[int]:
        """Which of the dataset's pictures (by their colour) six seeds draw at `step`."""
        corner = (slice(150, 170), slice(200, 330))  # the picture's own colour, above the disc
        return {
            int(
                np.argmax(
                    _picture(tmp_path, tmp_path / f"step-{step}.safetensors", f"{step}-{seed}", seed)[
                        corner
                    ].mean(axis=(0, 1))
                )
            )
            for seed in range(1, 7)
        }

    # learned: each seed draws one of the pictures; over-trained: the same one whatever the seed
    assert len(pictures_drawn(600)) > 1 and len(pictures_drawn(1000)) == 1
    assert OfflineProvider().draws_subject(LoraWeights(url=weights.as_uri()))
    assert not OfflineProvider().draws_subject(LoraWeights(url=weights.as_uri(), scale=0.0))
