"""`contentgen run` of a video LoRA on fal (the fake behind the real fal-client): the dataset's flat zip
read by fal's Wan 2.2 trainer whichever way it reads a zip, the pair it returns stored (each expert
and its ComfyUI file), the steps priced per step from fal's pricing API, the estimate shown before;
a run killed after the submit resumes the same request and pays once; a clip made with the pair
sends both experts to fal's Wan 2.2 app."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from safetensors.numpy import load

from contentgen.api import RunResult
from contentgen.cli.main import main
from contentgen.store import open_store
from tests.conftest import EXAMPLES
from tests.providers import fake_fal_trainers as trainers
from tests.providers.fake_fal import FAL_KEY, FakeFal
from tests.providers.fakes import Crash, after, mocked, unslept_retries

SAMPLE = EXAMPLES / "media" / "sample.mp4"
LORA = str(EXAMPLES / "loratraining-video.yaml")  # wan-2.2-t2v-a14b on fal
WALK = str(EXAMPLES / "videogeneration-lora.yaml")


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3: str) -> Path:
    """On the real S3 server: fal fetches a LoRA by an https link, which a local store has not."""
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_CATALOG", "ASSEMBLYAI_API_KEY", "CONTENTGEN_PRICES"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("CONTENTGEN_STORE", f"s3://{s3}/cg")
    monkeypatch.setenv("FAL_KEY", FAL_KEY)
    unslept_retries(monkeypatch)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["run", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


# Each way fal's trainer may read the zip and name what it writes; the run that dies after its
# submit, and the clip made with the pair, once (neither depends on the zip's reading).
@pytest.mark.parametrize(
    ("layout", "names", "whole"),
    [("top", "diffusers", True), ("recursive", "kohya", False), ("top", "wan", False)],
)
def test_a_wan_22_lora_on_fal_is_trained_once_stored_as_a_pair_and_priced_per_step(
    workspace: Path, capsys: pytest.CaptureFixture[str], layout: str, names: str, whole: bool
) -> None:
    fal = FakeFal()
    fal.variant.trainers.layout, fal.variant.trainers.captions = layout, "required"
    fal.variant.trainers.names = names
    fal.variant.trainers.wan22_output = "pair"
    fal.prices[trainers.WAN22_T2V] = (0.004, "step")  # the account's price, from fal's pricing API
    if whole:
        fal.fail("submit", after(Crash))  # the queue took the training; the worker died before saving it
        with mocked(fal), pytest.raises(Crash):
            run(capsys, "--source", str(SAMPLE), LORA)
    with mocked(fal):
        code, out = run(capsys, "--source", str(SAMPLE), "--result", "lora.json", LORA)
    assert code == 0, out
    assert "estimated cost $5.0000 at fal" in out  # 1000 steps at the table's dearest step
    [training] = [job for job in fal.ours if job.app == trainers.WAN22_T2V]
    assert training.billed and fal.count("submit") == 1  # one request, paid once
    assert training.trained is not None and training.trained.videos and training.trained.stills
    result = RunResult.model_validate_json((workspace / "lora.json").read_text())
    lora = result.lora
    assert lora is not None and lora.low_noise_model_uri
    store = open_store(os.environ["CONTENTGEN_STORE"])
    stored = {a.uri.rsplit("/v1/", 1)[-1]: store.get_bytes(store.key_of(a.uri)) for a in result.artifacts}
    assert store.get_bytes(store.key_of(lora.model_uri)) == trainers.wan_lora(names, 1.0)
    assert stored["model-low-noise.safetensors"] == trainers.wan_lora(names, 2.0)
    # and each in ComfyUI's layout, whatever names the trainer wrote
    comfy = load(stored["comfyui/model-low-noise.safetensors"])
    assert all(k.startswith(("diffusion_model.", "lora_unet_")) for k in comfy)
    assert all((v == 2.0).all() for v in comfy.values())
    steps = [line for line in result.usage or [] if line.unit == "step"]
    assert [(s.item, s.quantity, s.price_source) for s in steps] == [
        (trainers.WAN22_T2V, 1000, "fal pricing API")
    ]
    assert steps[0].unit_price_usd == pytest.approx(0.004)

    if not whole:
        return
    # a clip of the person with the pair: both experts, each its own file
    with mocked(fal):
        code, out = run(capsys, "--result", "clip.json", WALK)
    assert code == 0, out
    [(_, sent)] = [(app, args) for app, args in fal.submitted if app.startswith("fal-ai/wan/")]
    assert [
        (entry["transformer"], entry["path"].split("?")[0].rsplit("/", 1)[-1]) for entry in sent["loras"]
    ] == [
        ("high", "model.safetensors"),
        ("low", "model-low-noise.safetensors"),
    ]
    assert json.loads((workspace / "clip.json").read_text())["loras"][0]["baseModel"] == "wan-2.2-t2v-a14b"
