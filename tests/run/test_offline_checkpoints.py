"""The checkpoint workflow offline (docs/likeness.md#checkpoints): the offline provider simulates a
checkpoint every training.checkpointEvery steps, marked simulated, so that `make demo` and the
getting-started page show the checkpoints scored, their side-by-side grid, the choice, and a
promotion that a later loraRef uses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors import safe_open

from contentgen.api import RunResult
from contentgen.cli.main import main
from contentgen.pipeline.likeness.checkpoints import SIMULATED
from contentgen.providers.offline import checkpoint_steps
from contentgen.store import LocalStore
from tests.conftest import ROOT


def test_the_steps_are_every_checkpoint_every_and_the_last() -> None:
    assert checkpoint_steps(1000, 250) == [250, 500, 750, 1000]
    assert checkpoint_steps(1000, 300) == [300, 600, 900, 1000]
    assert checkpoint_steps(1000, 0) == [] and checkpoint_steps(1000, 1000) == []  # only the last: none


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "FAL_KEY", "CONTENTGEN_PRICES"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("CONTENTGEN_WORK_DIR", str(tmp_path / "work"))
    return tmp_path


def test_the_example_lora_offline_has_simulated_checkpoints_to_choose_from(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample, lora = ROOT / "examples/media/sample.mp4", ROOT / "examples/loratraining.yaml"
    code = main(["run", "--offline", "--source", str(sample), "--result", "r.json", str(lora)])
    assert code == 0, capsys.readouterr().err
    result = RunResult.model_validate_json((workspace / "r.json").read_text())
    assert result.lora is not None and result.lora.likeness is not None
    likeness, store = result.lora.likeness, LocalStore(workspace / "contentgen-data" / "store")
    prefix = f"loras/demo-user/{result.uid}/v1/"

    # four checkpoints (1000 steps, one every 250), each a placeholder LoRA that says it is simulated
    assert [p.step for p in likeness.checkpoints] == [250, 500, 750, 1000]
    for point in likeness.checkpoints:
        assert point.model_uri == store.uri(f"{prefix}checkpoints/step-{point.step:06d}.safetensors")
        copy = store.get_file(f"{prefix}checkpoints/step-{point.step:06d}.safetensors", workspace / "c")
        with safe_open(str(copy), "np") as opened:
            meta = opened.metadata()
        assert (meta["contentgen.step"], meta["contentgen.simulated"]) == (str(point.step), "true")
        assert point.verdict == "no-faces" and point.median is None  # placeholders show no face
        assert store.exists(f"{prefix}likeness/step-{point.step:06d}/likeness-grid.jpg")
    # nothing measured: the last step is the model, and the choice says the checkpoints are simulated
    assert (likeness.chosen_step, likeness.final_step) == (1000, 1000)
    assert likeness.choice.endswith(f"({SIMULATED})")
    assert likeness.checkpoints_grid_uri == store.uri(f"{prefix}likeness-checkpoints.jpg")
    assert store.get_bytes(f"{prefix}model.safetensors") == store.get_bytes(
        f"{prefix}checkpoints/step-001000.safetensors"
    )
    curve = json.loads(store.get_bytes(f"{prefix}likeness-curve.json"))
    assert [p["step"] for p in curve["checkpoints"]] == [250, 500, 750, 1000]

    # the figures `make demo` prints, then a promotion, which the record and `assets get` show
    capsys.readouterr()
    assert main(["assets", "get", "demo-avatar", "-o", "table"]) == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert lines[lines.index("* step 1000: no-faces") - 3 :][:3] == [
        "step 250: no-faces",
        "step 500: no-faces",
        "step 750: no-faces",
    ]
    assert any(line.startswith("checkpoints scored:") and SIMULATED in line for line in lines)
    assert main(["assets", "promote", "demo-avatar", "--step", "500", "--note", "sharper eyes"]) == 0
    promotion = json.loads(capsys.readouterr().out)
    assert (promotion["step"], promotion["automaticStep"]) == (500, 1000)
    assert main(["assets", "get", "demo-avatar", "-o", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["latestModelUri"] == store.uri(f"{prefix}checkpoints/step-000500.safetensors")
    assert shown["versions"][0]["promotion"]["note"] == "sharper eyes"
    assert main(["assets", "get", "demo-avatar", "-o", "table"]) == 0
    table = capsys.readouterr().out
    assert "> step 500: no-faces" in table and "* step 1000: no-faces" in table
