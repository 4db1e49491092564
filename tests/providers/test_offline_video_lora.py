"""The offline provider's simulated training (providers/offline_training.py): a Wan LoRA labelled as
a simulation in every file, two for a Wan 2.2 base model (the experts'), one for Wan 2.1, under
diffusers' Wan layer names (which lora_formats.py places for ComfyUI), the same for the same zip; a
zip without a still or a clip fails as a trainer would; a continue is checked by the cluster's rule
(providers/continuing.py) against the plan its simulated state records."""

from __future__ import annotations

import json
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from safetensors import safe_open

from contentgen.api.lora.plan import plan_for
from contentgen.errors import InvalidInput
from contentgen.pipeline.lora_formats import comfyui_name
from contentgen.providers.base import Continued, MemoryCheckpoint, TrainingRequest
from contentgen.providers.cluster.files import FolderFiles
from contentgen.providers.offline import OfflineProvider
from contentgen.providers.offline_training import NOTE


def dataset(path: Path, names: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in names.items():
            archive.writestr(name, data)
    return path


FLAT = {
    "0001.jpg": b"jpeg",
    "0001.txt": b"a photo of dmavatar",
    "clip-0001.mp4": b"mp4",
    "clip-0001.txt": b"v",
}


def train_video_lora(request: TrainingRequest, work: Path, progress: object) -> Any:
    return OfflineProvider().train_lora(request, work, lambda _: None, MemoryCheckpoint())


def request(zip_path: Path, base: str) -> TrainingRequest:
    return TrainingRequest(
        zip_path,
        "dmavatar",
        plan=plan_for(base=base, app="fal-ai/wan-22-trainer/t2v-a14b", steps=1000, provider="offline"),
    )


@pytest.mark.parametrize(("base", "files"), [("wan-2.2-t2v-a14b", 2), ("wan-2.1-t2v-1.3b", 1)])
def test_a_simulated_wan_lora_says_so_in_every_file(tmp_path: Path, base: str, files: int) -> None:
    zip_path = dataset(tmp_path / "dataset.zip", FLAT)
    out = train_video_lora(request(zip_path, base), tmp_path, lambda _: None)
    made = [p for p in (out.weights, out.low_noise_weights) if p is not None]
    assert len(made) == files and out.placeholder
    for path in made:
        with safe_open(str(path), "np") as lora:
            meta = lora.metadata()
            keys = list(lora.keys())
        assert meta["contentgen.note"] == NOTE and meta["contentgen.base_model"] == base
        assert (meta["contentgen.dataset_stills"], meta["contentgen.dataset_clips"]) == ("1", "1")
        assert all(comfyui_name(k).startswith("diffusion_model.blocks.") for k in keys)
    if files == 2:
        assert out.weights.read_bytes() != out.low_noise_weights.read_bytes()  # type: ignore[union-attr]
    config = json.loads(out.config.read_text())
    assert config["placeholder"] is True and config["base_model"] == base
    (tmp_path / "again").mkdir()
    again = train_video_lora(request(zip_path, base), tmp_path / "again", lambda _: None)
    assert again.weights.read_bytes() == out.weights.read_bytes()  # the same zip, the same files


def test_a_zip_without_stills_or_clips_fails_as_a_trainer_would(tmp_path: Path) -> None:
    empty = dataset(tmp_path / "dataset.zip", {"notes.txt": b"nothing to learn"})
    with pytest.raises(InvalidInput, match="holds no stills and no clips"):
        train_video_lora(request(empty, "wan-2.2-t2v-a14b"), tmp_path, lambda _: None)
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(InvalidInput, match="is not a zip"):
        train_video_lora(request(tmp_path / "bad.zip", "wan-2.2-t2v-a14b"), tmp_path, lambda _: None)


def test_a_continue_is_checked_against_the_plan_its_state_recorded(tmp_path: Path) -> None:
    """As the cluster's trainer: another rank is refused in one line; another learning rate is
    applied, and the version says so."""
    zip_path = dataset(tmp_path / "dataset.zip", FLAT)
    stored = FolderFiles(tmp_path / "v1")

    def trained(work: str, **settings: Any) -> Any:
        plan = plan_for(
            base="wan-2.1-t2v-1.3b", steps=200, checkpoint_every=100, learning_rate=1e-4, provider="offline"
        )
        asked = TrainingRequest(zip_path, "dmavatar", plan=replace(plan, **settings), checkpoints=stored)
        if settings:
            asked = replace(
                asked, checkpoints=FolderFiles(tmp_path / work), continue_from=Continued(1, stored)
            )
        (tmp_path / work).mkdir(exist_ok=True)
        return train_video_lora(asked, tmp_path / work, None)

    first = trained("a")
    assert [c.step for c in first.checkpoints] == [100, 200]
    state = json.loads((tmp_path / "v1" / "step-000200.state.json").read_text())
    assert state["plan"]["rank"] == 16 and state["plan"]["baseModel"] == "wan-2.1-t2v-1.3b"
    with pytest.raises(InvalidInput, match=r"version 1's step 200 was trained with rank 16 \(this spec: 8\)"):
        trained("b", rank=8)
    went_on = trained("c", learning_rate=5e-5)
    assert went_on.continued.changed == ("learningRate 0.0001 -> 5e-05",)
    assert json.loads(went_on.config.read_text())["continue_from"]["changed"] == [
        "learningRate 0.0001 -> 5e-05"
    ]
    assert [c.step for c in went_on.checkpoints] == [300, 400]
