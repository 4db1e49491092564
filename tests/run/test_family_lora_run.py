"""`contentgen run --offline` of a LoRA of a newer picture family (Z-Image-Turbo: the base-model
table's row, the offline provider's labelled simulation): its version says the base and the trainer
it stands for, its likeness is drawn with the family's own model (z-image-turbo), an ImageGeneration
of z-image-turbo takes it by loraRef, and flux-lora refuses it as LoraIncompatible naming the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from contentgen.api import RunResult
from contentgen.cli.main import main
from tests.conftest import EXAMPLES

SAMPLE = EXAMPLES / "media" / "sample.mp4"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out + out.err


def test_a_z_image_lora_trained_offline_then_drawn_by_its_own_model(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = yaml.safe_load((EXAMPLES / "loratraining.yaml").read_text())
    manifest["metadata"]["name"] = "demo-avatar-z"
    manifest["spec"]["dataset"]["captioning"] = "template"
    manifest["spec"]["training"] = {"steps": 1000, "baseModel": "z-image-turbo", "checkpointEvery": 500}
    (workspace / "z.yaml").write_text(yaml.safe_dump(manifest))
    code, out = run(capsys, "run", "--offline", "--source", str(SAMPLE), "--result", "z.json", "z.yaml")
    assert code == 0, out
    lora = RunResult.model_validate_json((workspace / "z.json").read_text()).lora
    assert lora is not None
    assert (lora.base_model, lora.training_model) == ("z-image-turbo", "fal-ai/z-image-turbo-trainer-v2")
    assert lora.likeness is not None and lora.likeness.verdict in ("good", "poor")
    baselines = workspace / "contentgen-data" / "store" / "likeness" / "baselines" / "offline"
    assert [p.name for p in baselines.iterdir()] == ["z-image-turbo"]  # drawn by its family's model

    picture = yaml.safe_load((EXAMPLES / "imagegeneration-lora.yaml").read_text())
    picture["spec"]["loras"] = [{"loraRef": {"name": "demo-avatar-z"}}]
    picture["spec"]["model"] = "z-image-turbo"
    (workspace / "picture.yaml").write_text(yaml.safe_dump(picture))
    code, out = run(capsys, "run", "--offline", "--result", "p.json", "picture.yaml")
    assert code == 0, out
    [used] = RunResult.model_validate_json((workspace / "p.json").read_text()).loras or []
    assert (used.name, used.base_model) == ("demo-avatar-z", "z-image-turbo")

    picture["spec"]["model"] = "flux-lora"
    (workspace / "flux.yaml").write_text(yaml.safe_dump(picture))
    code, out = run(capsys, "run", "--offline", "flux.yaml")
    [said] = [line for line in out.splitlines() if "LoraIncompatible" in line]
    assert code != 0 and "is a Z-Image-Turbo LoRA" in said and "use model z-image-turbo" in said
