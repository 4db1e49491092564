"""`contentgen run` on provider cluster with CONTENTGEN_CLUSTER_DEVICE naming a GPU this machine
lacks (issue 39), for the kinds that run on torch (a Transcription's, on CTranslate2, is in
test_cluster_transcription.py): a LoraTraining of a real video on the tiny FLUX and an
ImageGeneration on it end in one line naming the setting (no traceback), the failure in
--result, and the catalog's record Failed with its reason, not left Running; nothing was spent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from contentgen.catalog import open_catalog
from contentgen.cli.main import main
from contentgen.pipeline.local_run import local_uid
from tests.cluster.tiny_flux import session_cache, tiny_flux
from tests.providers.cluster_models import refuse_hubs
from tests.run.checkpoint_pictures import manifest as lora_manifest
from tests.run.checkpoint_pictures import subject_video

pytestmark = pytest.mark.cluster_models

SAID = "DeviceUnavailable: CONTENTGEN_CLUSTER_DEVICE is 'cuda', and torch sees no GPU on this machine"


@pytest.fixture(scope="module")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny FLUX staged as FLUX.1-dev (built once per session, shared with tests/cluster)."""
    import torch

    torch.set_num_threads(1)  # 2 shared cores
    root = tmp_path_factory.mktemp("models")
    (root / "FLUX.1-dev").symlink_to(tiny_flux(session_cache(tmp_path_factory)), target_is_directory=True)
    return root


@pytest.fixture
def on_a_missing_gpu(workspace: Path, models_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the unavailable device is checked where there is none")
    refuse_hubs(monkeypatch)
    monkeypatch.delenv("CONTENTGEN_PRICES", raising=False)
    monkeypatch.setenv("CONTENTGEN_CLUSTER_MODELS_DIR", str(models_root))
    monkeypatch.setenv("CONTENTGEN_CLUSTER_INFERENCE_STEPS", "2")
    monkeypatch.setenv("CONTENTGEN_CLUSTER_DEVICE", "cuda")
    return workspace


def ended_in_one_line(code: int, err: str, result: Path, kind: str, name: str) -> None:
    """The run's end as a user and the catalog see it."""
    assert code == 1 and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert SAID in last and "unset CONTENTGEN_CLUSTER_DEVICE" in last, err
    failed = json.loads(result.read_text())
    assert failed["reason"] == "DeviceUnavailable" and not failed["transient"], failed
    assert failed["usage"] == [], failed  # no GPU time, nothing billed
    record = open_catalog().get(local_uid(kind, "default", name))
    assert record is not None and record["status"] == "Failed", record
    assert record["latestRun"]["phase"] == "Failed"
    assert record["latestRun"]["error"]["reason"] == "DeviceUnavailable"


def test_a_lora_training_on_a_missing_gpu_ends_in_one_line_and_ends_the_record(
    on_a_missing_gpu: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The dataset is made from the video (CPU work, kept for a retry), then the training is
    refused before the model is loaded."""
    source = subject_video(on_a_missing_gpu / "subject.mp4", monkeypatch)
    spec = lora_manifest(on_a_missing_gpu / "lora.yaml")
    code = main(["run", "--source", str(source), "--result", "r.json", str(spec)])
    err = capsys.readouterr().err
    ended_in_one_line(code, err, on_a_missing_gpu / "r.json", "LoraTraining", "jx")


def test_an_image_generation_on_a_missing_gpu_ends_in_one_line_and_ends_the_record(
    on_a_missing_gpu: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "ImageGeneration",
        "metadata": {"name": "fox"},
        "spec": {"owner": "demo", "prompt": "a red fox", "provider": "cluster", "imageSize": "square"},
    }
    (on_a_missing_gpu / "image.yaml").write_text(yaml.safe_dump(spec))
    code = main(["run", "--result", "r.json", "image.yaml"])
    err = capsys.readouterr().err
    ended_in_one_line(code, err, on_a_missing_gpu / "r.json", "ImageGeneration", "fox")
    assert not list(on_a_missing_gpu.rglob("picture-*.png"))  # nothing drawn
