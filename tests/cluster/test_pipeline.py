"""provider: cluster through the worker (`contentgen worker`): an ImageGeneration on the tiny
FLUX stores its pictures and records the GPU time it held as its usage (gpu-hour lines)."""

from __future__ import annotations

import json

import pytest

from contentgen.api import SpecSnapshot
from contentgen.cli.main import main
from contentgen.store import LocalStore

from .conftest import DEVICE

pytestmark = pytest.mark.cluster_models


def test_an_image_generation_on_the_cluster_records_its_gpu_time(models_root, tmp_path, monkeypatch):
    store = LocalStore(tmp_path / "store")
    monkeypatch.setattr("contentgen.store.open_store", lambda url, **_: store)
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "FAL_KEY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("CONTENTGEN_CLUSTER_MODELS_DIR", str(models_root))
    monkeypatch.setenv("CONTENTGEN_CLUSTER_DEVICE", DEVICE)
    monkeypatch.setenv("CONTENTGEN_CLUSTER_INFERENCE_STEPS", "2")
    monkeypatch.setenv("CONTENTGEN_GPU_COUNT", "2")
    spec = {"owner": "alice", "prompt": "a red fox", "provider": "cluster", "imageSize": "square", "seed": 5}
    snapshot = SpecSnapshot(
        kind="ImageGeneration", name="fox", namespace="ns", uid="uid-1", version=1, spec=spec
    )
    path, log = tmp_path / "spec.json", tmp_path / "log"
    path.write_text(snapshot.model_dump_json(by_alias=True))
    assert main(["worker", "--spec", str(path), "--termination-log", str(log)]) == 0
    result = json.loads(log.read_text())
    [image] = result["images"]
    assert (image["width"], image["height"], image["seed"]) == (512, 512, 5)
    assert result["provider"] == "cluster"
    [usage] = result["usage"]  # the seconds it held the device (× GPUs on a GPU), in GPU-hours
    assert (usage["provider"], usage["item"], usage["unit"]) == ("cluster", "image-generation", "gpu-hour")
    assert 0 < usage["quantity"] * 3600 < 600
