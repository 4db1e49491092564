"""A new model family is one module and a row of the base-model table (training/family.py): the tests'
toy family (toy_family.py) trained by provider cluster with nothing else written, its checkpoints
stored once and a retry finding them; a family that trains on one GPU refused under torchrun; and
every family of the table found by its row, spreading as its row says."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from contentgen.api import base_models
from contentgen.api.base_models import BASE_MODELS, BaseModelInfo
from contentgen.api.lora.plan import plan_for
from contentgen.errors import InvalidInput
from contentgen.providers.base import MemoryCheckpoint, TrainingRequest
from contentgen.providers.cluster.families import family_of
from contentgen.providers.cluster.files import FolderFiles
from contentgen.providers.cluster.generation import lora_files
from contentgen.providers.cluster.provider import ClusterProvider
from contentgen.providers.cluster.training import distributed

from .toy_family import staged

pytestmark = pytest.mark.cluster_models
TOY = BaseModelInfo(
    "toy-1",
    "Toy 1",
    "Toy",
    loads_on=(),
    cluster_dir="Toy-1",
    offered_on_cluster=True,
    spreads=False,
    cluster_family="tests.cluster.toy_family",
)


def test_a_new_family_is_one_module_and_a_table_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(base_models.BASE_MODELS, TOY.name, TOY)
    staged(tmp_path / "models" / TOY.cluster_dir)
    archive = tmp_path / "dataset.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for n, grey in enumerate((60, 200), 1):
            zf.writestr(
                f"images/{n:04d}.jpg", cv2.imencode(".jpg", np.full((8, 8, 3), grey, np.uint8))[1].tobytes()
            )
    plan = plan_for(base=TOY.name, steps=6, checkpoint_every=3, rank=2, learning_rate=5e-2)
    request = TrainingRequest(archive, "toy", plan=plan, checkpoints=FolderFiles(tmp_path / "stored"))
    provider = ClusterProvider(tmp_path / "models", device="cpu")
    out = provider.train_lora(request, tmp_path / "a", lambda _: None, MemoryCheckpoint())
    assert [c.step for c in out.checkpoints] == [3, 6] and out.gpu_seconds is not None
    assert FolderFiles(tmp_path / "stored").names() == [
        f"step-00000{n}.{e}" for n in (3, 6) for e in ("pt", "safetensors")
    ]
    tensors = lora_files.load(out.weights)
    assert sorted(tensors) == [f"transformer.blocks.{b}.lora_{p}.weight" for b in (0, 1) for p in "AB"]
    losses = [v for _, v in json.loads(out.loss.read_text())["steps"]]
    assert len(losses) == 6 and losses[-1] < losses[0]  # it learnt
    again = provider.train_lora(request, tmp_path / "b", lambda _: None, MemoryCheckpoint())
    assert again.details["stepsRun"] == 0 and again.request_id == out.request_id  # a retry: nothing again
    # it trains on one GPU: under torchrun (a team of two) it is refused before anything is loaded
    team = distributed.Team(distributed.World(rank=0, size=2))
    with distributed.joined(team), pytest.raises(InvalidInput, match="trains on one GPU"):
        provider.train_lora(request, tmp_path / "c", lambda _: None, MemoryCheckpoint())


def test_each_row_of_the_table_names_the_family_that_trains_it() -> None:
    trained = [m for m in BASE_MODELS.values() if m.offered_on_cluster]
    assert trained and all(family_of(m).spreads == m.spreads for m in trained)
    assert {family_of(m).name for m in trained} == {
        "FLUX.1",
        "Wan",
        "Z-Image",
        "FLUX.2 [klein]",
        "Qwen-Image",
        "LTX-2",
    }
    with pytest.raises(InvalidInput, match=r"training\.baseModel 'sd-1\.5' is not a base model"):
        base_models.base_model("sd-1.5")  # never taken for FLUX.1
