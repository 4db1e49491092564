"""An ImageGeneration's memoryPlan (provider cluster, issue 39) on the tiny FLUX: the named plan
reaches the pipeline (an int8 transformer draws on the CPU, another picture than the plain one),
the plan each picture was drawn with is in its record, the run's result and the version (status,
catalog record, `contentgen assets get`); nf4 without a GPU, and a plan that cannot fit the card,
are refused in one line before any load."""

from __future__ import annotations

import hashlib
import json

import pytest

from contentgen.api import RunResult
from contentgen.catalog.kinds.image_generation import ImageVersionInfo
from contentgen.cli.main import main
from contentgen.errors import GpuMemoryTooSmall, InvalidInput
from contentgen.providers.base import ImageRequest, MemoryCheckpoint
from contentgen.providers.cluster import memory
from contentgen.providers.cluster.files import FolderFiles
from contentgen.providers.cluster.generation import flux, pipelines
from contentgen.providers.cluster.provider import ClusterProvider
from contentgen.store import LocalStore
from contentgen.tables import _describe
from tests.harness.cluster import worker_spec

from .conftest import DEVICE

pytestmark = pytest.mark.cluster_models


@pytest.fixture(scope="module")
def provider(models_root) -> ClusterProvider:
    return ClusterProvider(models_root, device=DEVICE, inference_steps=2, sizes={"square": (64, 64)})


def draw(provider: ClusterProvider, tmp_path, name: str, plan: str) -> tuple[str, str]:
    folder = tmp_path / name
    folder.mkdir()
    request = ImageRequest(
        prompt="a photo of sks",
        model="flux-dev",
        image_size="square",
        seed=3,
        memory_plan=plan,
        outputs=FolderFiles(folder / "kept"),
    )
    [out] = provider.generate_images(request, folder, lambda _: None, MemoryCheckpoint())
    return hashlib.sha256(out.path.read_bytes()).hexdigest(), out.memory_plan


def test_the_named_plan_reaches_the_pipeline_and_each_picture_records_it(provider, tmp_path):
    plain, plain_plan = draw(provider, tmp_path, "auto", "auto")
    int8, int8_plan = draw(provider, tmp_path, "int8", "int8")
    assert int8_plan.startswith("int8 (torchao int8 weight-only)")
    assert plain_plan.startswith("bf16") and "torchao" not in plain_plan
    assert int8 != plain  # the quantised transformer drew it
    # the kept pipeline is the int8 one: its linear weights are torchao's tensors, not parameters
    [kept] = pipelines._kept.values()
    assert type(kept.transformer.transformer_blocks[0].attn.to_q.weight).__name__ != "Parameter"
    record = json.loads((tmp_path / "int8" / "kept" / "image-1.json").read_text())
    assert record["memory_plan"] == int8_plan
    offload, offload_plan = draw(provider, tmp_path, "offload", "offload")
    if DEVICE == "cpu":  # offload on the CPU is the weights as they are: the plain picture
        assert offload == plain
    else:  # on a GPU the components take turns: the same weights, moved as each runs
        assert "components offloaded in turn" in offload_plan


def test_nf4_without_a_gpu_is_refused_before_any_load(provider, tmp_path):
    if DEVICE != "cpu":
        pytest.skip("on a GPU nf4 loads")
    loads = pipelines.loads
    with pytest.raises(InvalidInput) as refused:
        draw(provider, tmp_path, "nf4", "nf4")
    assert str(refused.value).startswith("memoryPlan nf4 needs a CUDA GPU") and "\n" not in str(refused.value)
    assert pipelines.loads == loads


def test_a_named_plan_that_cannot_fit_the_card_fails_before_any_load(provider, tmp_path, monkeypatch):
    small = memory.Card(
        free=memory.GIB, total=memory.GIB, capability=(8, 6), name="a 1 GB card"
    )  # all reserve
    monkeypatch.setattr(flux, "card", lambda on: small)
    loads = pipelines.loads
    with pytest.raises(GpuMemoryTooSmall) as refused:
        draw(provider, tmp_path, "bf16", "bf16")
    message = str(refused.value)
    assert "\n" not in message and refused.value.reason == "GpuMemoryTooSmall"
    assert "a 64×64 picture with memory plan bf16 needs about" in message
    assert "a 1 GB card has 1.0 GiB free" in message and "use memoryPlan auto" in message
    assert pipelines.loads == loads


def test_the_plan_is_in_the_version(models_root, tmp_path, monkeypatch):
    store = LocalStore(tmp_path / "store")
    path, log = worker_spec(
        store, models_root, tmp_path, monkeypatch, imageSize="square", seed=5, memoryPlan="int8"
    )
    assert main(["worker", "--spec", str(path), "--termination-log", str(log)]) == 0
    result = RunResult.model_validate_json(log.read_text())
    assert result.memory_plan.startswith("int8 (torchao int8 weight-only)")
    entry = result.version_entry()
    assert entry is not None and entry["memoryPlan"] == result.memory_plan
    assert ImageVersionInfo.model_validate(entry).memory_plan == result.memory_plan  # the catalog's record
    assert f"; memory plan {result.memory_plan}" in _describe(entry)  # contentgen assets get
