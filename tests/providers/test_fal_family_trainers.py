"""fal's trainers of the newer picture families at the wire (Z-Image-Turbo, Qwen-Image-2512: their
inputs are the base-model table's, providers/fal/provider.py sends them), through fal-client over
HTTP to the fake (fake_fal_family_trainers.py: what their pages document, and every reading of what
they leave open); and a Z-Image LoRA drawn by fal's z-image-turbo app."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from contentgen.api.base_models import QWEN_2512_TRAINER, Z_IMAGE_TURBO_TRAINER
from contentgen.api.lora.plan import plan_for
from contentgen.errors import InvalidInput, PermanentError
from contentgen.providers.base import ImageRequest, LoraWeights, MemoryCheckpoint, TrainingRequest
from contentgen.providers.fal import FalProvider

from . import fake_fal_family_trainers as family
from .fake_fal import FAL_KEY, Z_IMAGE_LORA, FakeFal
from .fakes import Crash, FakeSleep, Progress, jpeg, mocked, retry

BASES = {family.Z_IMAGE_TURBO: "z-image-turbo", family.QWEN_2512: "qwen-image-2512"}


@pytest.fixture
def fal() -> FakeFal:
    return FakeFal()


def provider(sleep: FakeSleep | None = None) -> FalProvider:
    return FalProvider(FAL_KEY, retry=retry(sleep or FakeSleep()), poll_interval=2.0)


def request(
    tmp_path: Path, app: str, captions: int = 6, learning_rate: float | None = 1e-4
) -> TrainingRequest:
    """A picture LoRA's dataset as the pipeline writes it: 0001.jpg with 0001.txt beside it."""
    archive = tmp_path / "dataset.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(1, 7):
            zf.writestr(f"{i:04d}.jpg", jpeg(64, 64))
            if i <= captions:
                zf.writestr(f"{i:04d}.txt", "a photo of dmavatar")
    plan = plan_for(base=BASES[app], app=app, steps=300, provider="fal", learning_rate=learning_rate)
    return TrainingRequest(dataset_zip=archive, trigger_word="dmavatar", plan=plan)


def work(tmp_path: Path, name: str = "work") -> Path:
    (tmp_path / name).mkdir(exist_ok=True)
    return tmp_path / name


@pytest.mark.parametrize("app", family.FAMILY_TRAINERS)
@pytest.mark.parametrize("output", ["diffusers_lora_file", "lora_file"])
@pytest.mark.parametrize("config", [True, False])
@pytest.mark.parametrize("captions", [6, 3])
def test_each_trainer_gets_its_pages_inputs_and_its_lora_is_read_under_either_name(
    tmp_path, fal, app, output, config, captions
):
    fal.variant.family_trainers.output, fal.variant.family_trainers.config = output, config
    with mocked(fal):
        out = provider().train_lora(
            request(tmp_path, app, captions), work(tmp_path), Progress(), MemoryCheckpoint()
        )
    [job] = fal.ours
    assert job.billed and len(job.captions) == 6
    sent = job.arguments
    assert set(sent) == {"image_data_url", "steps", "default_caption", "learning_rate"}
    assert (sent["steps"], sent["default_caption"], sent["learning_rate"]) == (300, "dmavatar", 1e-4)
    assert out.weights.read_bytes() == fal.weights and (out.config is not None) == config
    assert out.details["app"] == app


def test_the_table_prices_each_trainer_as_its_page_does() -> None:
    assert Z_IMAGE_TURBO_TRAINER.price_per_step * 1000 == pytest.approx(0.85)
    assert QWEN_2512_TRAINER.price_per_step * 1000 == pytest.approx(0.95)
    assert QWEN_2512_TRAINER.billed_min_steps == 500


def test_a_z_image_trainer_that_names_its_inputs_otherwise_fails_before_it_bills(tmp_path, fal):
    fal.variant.family_trainers.z_inputs = "trigger_phrase"  # its schema was not read: the other reading
    with mocked(fal), pytest.raises(PermanentError, match="default_caption"):
        provider().train_lora(
            request(tmp_path, family.Z_IMAGE_TURBO), work(tmp_path), Progress(), MemoryCheckpoint()
        )
    assert (fal.accepted, fal.billed) == (1, 0)


def test_a_killed_worker_resumes_the_same_training_and_pays_once(tmp_path, fal):
    checkpoint = MemoryCheckpoint()
    wanted = request(tmp_path, family.QWEN_2512)
    with mocked(fal):
        with pytest.raises(Crash):
            provider(FakeSleep(crash_at=3)).train_lora(wanted, work(tmp_path), Progress(), checkpoint)
        out = provider().train_lora(wanted, work(tmp_path, "again"), Progress(), checkpoint)
        provider().train_lora(wanted, work(tmp_path, "third"), Progress(), checkpoint)
    assert out.request_id == "req-1"
    assert (fal.accepted, fal.billed) == (1, 1) and len(fal.uploads) == 1


def test_a_z_image_lora_is_drawn_by_fals_z_image_app_at_its_steps(tmp_path, fal):
    lora = LoraWeights("https://example.com/z.safetensors", 0.8)
    wanted = ImageRequest("a photo of dmavatar", "z-image-turbo", num_images=2, loras=(lora,))
    with mocked(fal):
        images = provider().generate_images(wanted, work(tmp_path), Progress(), MemoryCheckpoint())
    [job] = fal.ours
    assert job.app == Z_IMAGE_LORA and len(images) == 2
    assert job.arguments["loras"] == [{"path": lora.url, "scale": 0.8}]
    assert job.arguments["num_inference_steps"] == 8


def test_more_loras_than_the_z_image_app_takes_are_refused_before_anything_is_paid(tmp_path, fal):
    loras = tuple(LoraWeights(f"https://example.com/{n}.safetensors", 1.0) for n in range(4))
    with mocked(fal), pytest.raises(InvalidInput, match="at most 3 LoRAs"):
        provider().generate_images(
            ImageRequest("p", "z-image-turbo", loras=loras), work(tmp_path), Progress(), MemoryCheckpoint()
        )
    assert fal.accepted == 0
