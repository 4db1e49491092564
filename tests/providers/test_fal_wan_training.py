"""fal's Wan trainers at the wire (providers/fal/wan_training.py), through fal-client over HTTP to the
fake (fake_fal_trainers.py: what the trainers' pages document, and every reading of what they
leave open): the documented inputs, the dataset's zip read the way each trainer may read it, one
LoRA file or a high- and low-noise pair, and one paid request across a killed worker."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from contentgen.api.lora.plan import plan_for
from contentgen.errors import PermanentError
from contentgen.providers.base import MemoryCheckpoint, TrainingRequest
from contentgen.providers.fal import FalProvider
from contentgen.providers.fal.wan_training import arguments, lora_files

from . import fake_fal_trainers as trainers
from .fake_fal import FAL_KEY, FakeFal
from .fakes import Crash, FakeSleep, Progress, jpeg, mocked, retry


@pytest.fixture
def fal() -> FakeFal:
    return FakeFal()


def provider(sleep: FakeSleep | None = None) -> FalProvider:
    return FalProvider(FAL_KEY, retry=retry(sleep or FakeSleep()), poll_interval=2.0)


def flat_zip(path: Path, stills: int = 6, clips: int = 6, captions: bool = True) -> Path:
    """A video LoRA's dataset as the pipeline writes it: every medium at the top, its caption beside."""
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(1, stills + 1):
            archive.writestr(f"{i:04d}.jpg", jpeg(64, 64))
            if captions:
                archive.writestr(f"{i:04d}.txt", "a photo of dmavatar")
        for i in range(1, clips + 1):
            archive.writestr(f"clip-{i:04d}.mp4", b"\x00\x00\x00\x18ftypisom" + bytes(64))
            if captions:
                archive.writestr(f"clip-{i:04d}.txt", "a video of dmavatar")
    return path


def request(tmp_path: Path, app: str, **zipped: int | bool) -> TrainingRequest:
    return TrainingRequest(
        dataset_zip=flat_zip(tmp_path / "dataset.zip", **zipped),
        trigger_word="dmavatar",
        plan=plan_for(base="wan-2.2-t2v-a14b", app=app, steps=500, provider="fal"),
    )


def work(tmp_path: Path, name: str = "work") -> Path:
    path = tmp_path / name
    path.mkdir(exist_ok=True)
    return path


@pytest.mark.parametrize("app", trainers.WAN_TRAINERS)
@pytest.mark.parametrize("layout", ["recursive", "top"])
@pytest.mark.parametrize("captions", ["optional", "required"])
def test_each_trainer_reads_every_medium_and_caption_however_it_reads_the_zip(
    tmp_path, fal, app, layout, captions
):
    fal.variant.trainers.layout, fal.variant.trainers.captions = layout, captions
    with mocked(fal):
        out = provider().train_lora(request(tmp_path, app), work(tmp_path), Progress(), MemoryCheckpoint())
    [job] = fal.ours
    assert job.billed and job.trained is not None
    assert len(job.trained.stills) == 6
    assert len(job.trained.videos) == (0 if app == trainers.WAN22_IMAGE else 6)
    assert all(caption for caption in {**job.trained.stills, **job.trained.videos}.values())
    assert out.weights.read_bytes() == trainers.wan_lora("diffusers", 1.0)
    # the documented inputs, under each trainer's own names
    sent = job.arguments
    assert sent["trigger_phrase"] == "dmavatar" and sent["number_of_steps"] == 500
    assert sent["training_data_url"].startswith("https://v3.fal.media/")
    assert ("auto_scale_input" in sent) == (app == trainers.WAN_TRAINER)


@pytest.mark.parametrize(
    ("shape", "fields"),
    [
        ("single", ("diffusers_lora_file", None)),
        ("single-lora_file", ("lora_file", None)),
        ("pair", ("high_noise_lora", "low_noise_lora")),
        ("pair-by-name", ("lora_file", "lora_file_2")),
    ],
)
def test_a_wan_22_trainer_returns_one_file_or_the_experts_pair(tmp_path, fal, shape, fields):
    fal.variant.trainers.wan22_output = shape
    with mocked(fal):
        out = provider().train_lora(
            request(tmp_path, trainers.WAN22_T2V), work(tmp_path), Progress(), MemoryCheckpoint()
        )
    main, low = fields
    assert out.details["weights_field"] == main
    assert out.weights.read_bytes() == trainers.wan_lora("diffusers", 1.0)
    if low is None:
        assert out.low_noise_weights is None
    else:
        # the high-noise expert's file is the model, the low-noise one's beside it; never swapped
        assert out.low_noise_weights is not None and out.low_noise_weights.read_bytes() == trainers.wan_lora(
            "diffusers", 2.0
        )
        assert out.details["low_noise_field"] == low


def test_the_image_to_video_trainer_needs_clips_as_its_guide_says(tmp_path, fal):
    with mocked(fal), pytest.raises(PermanentError, match="needs video training data"):
        provider().train_lora(
            request(tmp_path, trainers.WAN22_I2V, clips=0), work(tmp_path), Progress(), MemoryCheckpoint()
        )
    assert (fal.accepted, fal.billed) == (1, 0)  # fal bills successful outputs only


def test_a_killed_worker_resumes_the_same_request_and_pays_once(tmp_path, fal):
    checkpoint = MemoryCheckpoint()
    wanted = request(tmp_path, trainers.WAN_TRAINER)
    with mocked(fal):
        with pytest.raises(Crash):  # the pod dies while the training runs
            provider(FakeSleep(crash_at=3)).train_lora(wanted, work(tmp_path), Progress(), checkpoint)
        assert checkpoint.load()["request_id"] == "req-1"
        out = provider().train_lora(wanted, work(tmp_path, "again"), Progress(), checkpoint)
        # and once more after the result was saved (a store failure later, say): nothing new
        provider().train_lora(wanted, work(tmp_path, "third"), Progress(), checkpoint)
    assert out.request_id == "req-1"
    assert (fal.accepted, fal.billed) == (1, 1) and len(fal.uploads) == 1


def test_a_crash_after_the_submit_left_is_found_in_fals_request_list(tmp_path, fal):
    from .fakes import after

    fal.fail("submit", after(Crash))  # the queue took it; the answer was never saved
    checkpoint = MemoryCheckpoint()
    wanted = request(tmp_path, trainers.WAN22_T2V)
    with mocked(fal):
        with pytest.raises(Crash):
            provider().train_lora(wanted, work(tmp_path), Progress(), checkpoint)
        out = provider().train_lora(wanted, work(tmp_path), Progress(), checkpoint)
    assert out.request_id == "req-1"
    assert fal.count("submit") == 1 and (fal.accepted, fal.billed) == (1, 1)


def test_what_each_trainer_is_sent_is_what_its_page_names() -> None:
    wanted = TrainingRequest(
        Path("d.zip"),
        "dmavatar",
        plan=plan_for(app="fal-ai/wan-trainer", steps=300, learning_rate=0.0003, provider="fal"),
    )
    assert arguments("fal-ai/wan-trainer", wanted, "https://u/d.zip") == {
        "training_data_url": "https://u/d.zip",
        "trigger_phrase": "dmavatar",
        "number_of_steps": 300,
        "learning_rate": 0.0003,
        "auto_scale_input": False,  # our clips are on Wan's frame rule at 16 fps already
    }
    plain = TrainingRequest(
        Path("d.zip"), "dmavatar", plan=plan_for(app="fal-ai/wan-22-image-trainer", steps=300, provider="fal")
    )
    assert set(arguments("fal-ai/wan-22-image-trainer", plain, "u")) == {
        "training_data_url",
        "trigger_phrase",
        "number_of_steps",
    }


def test_a_result_whose_lora_file_is_unclear_fails_naming_its_keys() -> None:
    f = {"url": "https://v3.fal.media/files/a.safetensors"}
    assert lora_files({"lora_file": f, "config_file": f}, "a").main[0] == "lora_file"
    assert lora_files({"weights": f}, "a").main[0] == "weights"  # the one safetensors file
    with pytest.raises(PermanentError, match=r"keys: a, b"):
        lora_files({"a": f, "b": f}, "app")
    with pytest.raises(PermanentError, match="keys: none"):
        lora_files({}, "app")
